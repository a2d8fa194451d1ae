"""Sessions: one interpreter kept across runs, so variables, imports and definitions carry over.

A session's interpreter lives in its own Store; other sessions and one-shot runs never see it.
When a run ends it for good (timeout, crash, fuel), the result says `session_reset=True` and the
next run starts a fresh interpreter.
"""

import asyncio
import dataclasses
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from agentbox.engines.wasm import GuestInstance
from agentbox.result import RunResult

if TYPE_CHECKING:
    from agentbox.sandbox import Sandbox


class SessionClosedError(RuntimeError):
    """The session was closed; open a new one with `Sandbox.session()`."""


class Session:
    """Created by `Sandbox.session()`; use as a context manager or call `close()`."""

    def __init__(self, sandbox: "Sandbox") -> None:
        self._sandbox = sandbox
        self._instance: GuestInstance | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.runs = 0

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._drop_instance()

    def _drop_instance(self) -> None:
        if self._instance is not None:
            self._instance.discard()
            self._instance = None

    def run(
        self,
        code: str | bytes,
        *,
        args: Sequence[str] = (),
        stdin: bytes | str = b"",
        filename: str = "<stdin>",
        timeout: float | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> RunResult:
        """Run `code` in this session's interpreter (calls are serialised)."""
        request = self._sandbox._request(code, args, stdin, filename)
        skills = self._sandbox.skills.bind_run(loop)
        with self._lock:
            if self._closed:
                raise SessionClosedError("this session is closed")
            if self._instance is None:
                self._instance = self._sandbox._instance()
            result = self._instance.run(request, skills, keep_globals=True, timeout=timeout)
            self.runs += 1
            if not self._instance.usable:
                self._drop_instance()
                result = dataclasses.replace(result, session_reset=True)
            return result

    async def run_async(
        self,
        code: str | bytes,
        *,
        args: Sequence[str] = (),
        stdin: bytes | str = b"",
        filename: str = "<stdin>",
        timeout: float | None = None,
    ) -> RunResult:
        """`run` off the event loop; `async def` skills run on this loop."""
        from agentbox.sandbox import run_off_loop

        return await run_off_loop(
            self.run, code, args=args, stdin=stdin, filename=filename, timeout=timeout
        )
