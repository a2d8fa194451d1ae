"""Sessions: one interpreter kept across runs, so variables, imports and definitions carry over.

A session's interpreter lives in its own Store; other sessions and one-shot runs never see it.
When a run ends it for good (timeout, crash, fuel), the result says `session_reset=True` and the
next run starts a fresh interpreter.
"""

import asyncio
import dataclasses
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from agentbox.engines.base import DEFAULT_FILENAME, ScriptRequest, SupportsRead
from agentbox.input_files import FilesArgument
from agentbox.output import OutputCallback
from agentbox.result import RunResult
from agentbox.skills import SkillSet

if TYPE_CHECKING:  # the wasm engine imports wasmtime, which `--engine auto` probes for lazily
    from agentbox.engines.wasm.engine import BaseInstance
    from agentbox.streaming import RunStream

# How often an async run re-checks a session another run is using (rare: one agent's calls to
# one session usually come one at a time).
_BUSY_POLL_SECONDS = 0.005


class SessionHost(Protocol):
    """What a session needs of the `Sandbox` that opened it (a protocol, so this module does
    not import `agentbox.sandbox`, which imports it)."""

    skills: SkillSet

    def _request(
        self,
        code: str | bytes,
        args: Sequence[str],
        stdin: "bytes | str | SupportsRead",
        filename: str,
        on_output: OutputCallback | None = None,
        argv0: str | None = None,
        files: FilesArgument = None,
    ) -> ScriptRequest: ...

    def _instance(self) -> "BaseInstance": ...


def _reraise_output_error(request: ScriptRequest, result: RunResult) -> RunResult:
    if request.on_output is not None:
        request.on_output.raise_error()
    return result


class SessionClosedError(RuntimeError):
    """The session was closed; open a new one with `Sandbox.session()`."""


class Session:
    """Created by `Sandbox.session()`; use as a context manager or call `close()`."""

    def __init__(self, sandbox: SessionHost) -> None:
        self._sandbox = sandbox
        self._instance: BaseInstance | None = None
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
        """Close without waiting: a run in progress finishes, then its interpreter is freed."""
        self._closed = True
        self._drop_if_idle()

    def run(
        self,
        code: str | bytes,
        *,
        args: Sequence[str] = (),
        stdin: "bytes | str | SupportsRead" = b"",
        filename: str = DEFAULT_FILENAME,
        timeout: float | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        on_output: OutputCallback | None = None,
        files: FilesArgument = None,
    ) -> RunResult:
        """Run `code` in this session's interpreter (calls are serialised). `stdin`,
        `on_output` and `files` as for `Sandbox.run` (/input holds this call's files and the
        sandbox's). A result returns the files of /output that are new or changed since the
        session's previous result."""
        request = self._sandbox._request(code, args, stdin, filename, on_output, files=files)
        skills = self._sandbox.skills.bind_run(loop)
        with self._lock:
            self._refuse_if_closed()
            if self._instance is None:
                self._instance = self._sandbox._instance()
            result = self._instance.run(request, skills, keep_globals=True, timeout=timeout)
            result = self._after_run(result)
        self._drop_if_idle()
        return _reraise_output_error(request, result)

    async def run_async(
        self,
        code: str | bytes,
        *,
        args: Sequence[str] = (),
        stdin: "bytes | str | SupportsRead" = b"",
        filename: str = DEFAULT_FILENAME,
        timeout: float | None = None,
        on_output: OutputCallback | None = None,
        files: FilesArgument = None,
    ) -> RunResult:
        """`run` for asyncio hosts, awaited without blocking the loop; `async def` skills run
        on this loop. A call that finds another run of this session in progress waits for it."""
        request = self._sandbox._request(code, args, stdin, filename, on_output, files=files)
        skills = self._sandbox.skills.bind_run(asyncio.get_running_loop())
        while not self._lock.acquire(blocking=False):
            await asyncio.sleep(_BUSY_POLL_SECONDS)
        try:
            self._refuse_if_closed()
            if self._instance is None:
                self._instance = self._sandbox._instance()
            result = await self._instance.run_async(
                request, skills, keep_globals=True, timeout=timeout
            )
            result = self._after_run(result)
        finally:
            self._lock.release()
        self._drop_if_idle()
        return _reraise_output_error(request, result)

    def stream(self, code: str | bytes, **options: Any) -> "RunStream":
        """`run_async` as an async iterator of `(stream, data)`, as `Sandbox.stream`."""
        from agentbox.streaming import RunStream

        return RunStream(lambda on_output: self.run_async(code, on_output=on_output, **options))

    def _refuse_if_closed(self) -> None:
        if self._closed:
            raise SessionClosedError("this session is closed")
        if self._instance is not None and not self._instance.usable:
            self._drop_instance()  # left by a cancelled async run: the next run starts afresh

    def _after_run(self, result: RunResult) -> RunResult:
        self.runs += 1
        assert self._instance is not None
        if not self._instance.usable:
            self._drop_instance()
            result = dataclasses.replace(result, session_reset=True)
        return result

    def _drop_if_idle(self) -> None:
        """After close: free the interpreter unless a run holds it (that run frees it after).

        `close` sets `_closed` before trying the lock and a run releases the lock before
        checking `_closed`, so one of the two always gets here with the lock free."""
        if self._closed and self._lock.acquire(blocking=False):
            try:
                self._drop_instance()
            finally:
                self._lock.release()

    def _drop_instance(self) -> None:
        if self._instance is not None:
            self._instance.discard()
            self._instance = None
