"""Captured stdout/stderr with a byte cap: a flooding script cannot grow host memory."""

import threading

from agentbox.result import LimitName, RunResult, SkillCall


class CappedOutput:
    """Keeps the first `limit` bytes written; counts (and drops) the rest."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._chunks: list[bytes] = []
        self._kept = 0
        self.dropped = 0
        self._lock = threading.Lock()

    def write(self, data: bytes) -> None:
        with self._lock:
            room = self._limit - self._kept
            if room >= len(data):
                self._chunks.append(bytes(data))
                self._kept += len(data)
                return
            if room > 0:
                self._chunks.append(bytes(data[:room]))
                self._kept += room
            self.dropped += len(data) - max(room, 0)

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
