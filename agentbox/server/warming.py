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


# How often a waiting call looks whether the guest is loaded (polling ties up no thread, however
# many calls wait).
POLL_SECONDS = 0.05


class Warming:
    """`sandbox.warmup()` on a background thread, started at once; `wait` awaits its end."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox
        self._done = threading.Event()
        if sandbox.ready:
            self._done.set()
            return
        threading.Thread(target=self._warm, name="agentbox-warmup", daemon=True).start()

    def _warm(self) -> None:
        try:
            self._sandbox.warmup()
        except Exception:  # noqa: BLE001 - the first run compiles again and reports it
            pass
        finally:
            self._done.set()

    async def wait(self, report: ProgressReport | None = None) -> None:
        """Until the guest is loaded (or failed to: the run then says why), reporting the
        seconds waited to `report` while it compiles."""
        if self._done.is_set():
            return

        async def loaded() -> None:
            while not self._done.is_set():
                await anyio.sleep(POLL_SECONDS)

        await with_progress(loaded, report, COMPILING_MESSAGE)
