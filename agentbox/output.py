"""Captured stdout/stderr with a byte cap: a flooding script cannot grow host memory.

What is kept can also be passed on while the run goes on (`on_output`): the caller sees each
piece of output as the script flushes it, and still gets the whole capture in the result.
"""

import threading
from collections.abc import Callable
from typing import Literal

from agentbox.result import LimitName, RunResult, SkillCall

StreamName = Literal["stdout", "stderr"]
OutputCallback = Callable[[StreamName, bytes], None]
"""`on_output(stream, data)`: called with each piece of output the run keeps, in the order the
script wrote it (both streams interleaved), on the thread that runs the script."""


class LiveOutput:
    """Passes kept output to the caller's callback. A callback that raises is not called again
    for the rest of the run (the script goes on); the run then raises its error when it returns,
    so a broken consumer is never silent."""

    def __init__(self, callback: OutputCallback) -> None:
        self._callback = callback
        self.error: BaseException | None = None

    def __call__(self, stream: StreamName, data: bytes) -> None:
        if self.error is not None or not data:
            return
        try:
            self._callback(stream, data)
        except Exception as error:  # noqa: BLE001 - raised to the run's caller afterwards
            self.error = error

    def raise_error(self) -> None:
        """After the run: re-raise what the callback raised, if anything."""
        if self.error is not None:
            error, self.error = self.error, None
            raise error


class CappedOutput:
    """Keeps the first `limit` bytes written; counts (and drops) the rest. What is kept is also
    passed to `live`, if given, as it arrives (so the cap holds for live output too)."""

    def __init__(
        self, limit: int, stream: StreamName = "stdout", live: LiveOutput | None = None
    ) -> None:
        self._limit = limit
        self._stream: StreamName = stream
        self._live = live
        self._chunks: list[bytes] = []
        self._kept = 0
        self.dropped = 0
        self._lock = threading.Lock()

    def write(self, data: bytes) -> None:
        with self._lock:
            room = self._limit - self._kept
            if room >= len(data):
                kept = bytes(data)
            else:
                kept = bytes(data[: max(room, 0)])
                self.dropped += len(data) - len(kept)
            if kept:
                self._chunks.append(kept)
                self._kept += len(kept)
                # Under the lock, so this stream's pieces reach `live` in order (the two streams
                # are written from one thread, so their relative order holds too).
                if self._live is not None:
                    self._live(self._stream, kept)

    @property
    def truncated(self) -> bool:
        return self.dropped > 0

    def getvalue(self) -> bytes:
        with self._lock:
            return b"".join(self._chunks)


def captured_result(
    stdout: CappedOutput,
    stderr: CappedOutput,
    max_output: int,
    *,
    exit_code: int,
    limit: LimitName | None,
    message: str | None,
    duration_ms: float,
    skill_calls: list[SkillCall],
    engine: str,
    skill_calls_unrecorded: int = 0,
) -> RunResult:
    """The result of a run from what it captured; output beyond the cap and skill calls beyond
    the log's are reported in the message, so nothing is dropped silently (one place for every
    engine)."""
    messages = [message] if message else []
    for stream_name, stream in (("stdout", stdout), ("stderr", stderr)):
        if stream.truncated:
            messages.append(
                f"{stream_name} truncated: {stream.dropped} bytes beyond the "
                f"{max_output}-byte limit (--max-output) were dropped"
            )
    if skill_calls_unrecorded:
        messages.append(
            f"{skill_calls_unrecorded} skill calls after the first {len(skill_calls)} "
            "were not recorded in skill_calls"
        )
    return RunResult(
        stdout_bytes=stdout.getvalue(),
        stderr_bytes=stderr.getvalue(),
        exit_code=exit_code,
        duration_ms=duration_ms,
        limit=limit,
        message="; ".join(messages) or None,
        truncated=stdout.truncated or stderr.truncated,
        skill_calls=skill_calls,
        skill_calls_unrecorded=skill_calls_unrecorded,
        engine=engine,
    )
