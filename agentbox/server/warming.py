"""Load the guest in the background, so a long-lived server answers its clients at once.

With an empty cache, loading the guest compiles it (tens of seconds). `agentbox mcp` must still
answer `initialize` at once (clients give up on slow servers) and `agentbox serve` listen at
once: the compile runs on a thread of its own, and a run waits for it, reporting the seconds
waited so far to whoever asked for progress.
"""

import threading

import anyio

from agentbox.sandbox import Sandbox
from agentbox.server.progress import ProgressReport, with_progress

COMPILING_MESSAGE = "compiling the sandbox for this machine (first start only)"


class Warming:
    """`sandbox.warmup()` on a background thread, started at once; `wait` awaits its end."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox
        self._done = threading.Event()
        self.error: BaseException | None = None
        if sandbox.ready:
            self._done.set()
            return
        threading.Thread(target=self._warm, name="agentbox-warmup", daemon=True).start()

    def _warm(self) -> None:
        try:
            self._sandbox.warmup()
        except BaseException as error:  # noqa: BLE001 - the first run reports it, compiling again
            self.error = error
        finally:
            self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait_blocking(self) -> None:
        """For worker threads: until the guest is loaded (or failed to load)."""
        self._done.wait()

    async def wait(self, report: ProgressReport | None = None) -> None:
        """Until the guest is loaded (or failed to: the run then says why), reporting the
        seconds waited to `report` while it compiles."""
        if self._done.is_set():
            return
        await with_progress(
            lambda: anyio.to_thread.run_sync(self._done.wait, abandon_on_cancel=True),
            report,
            COMPILING_MESSAGE,
        )
