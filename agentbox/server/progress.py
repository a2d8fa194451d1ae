"""Progress of a long call, for clients that asked for it (MCP `progressToken`, HTTP streaming).

A call reports the seconds it has run every PROGRESS_INTERVAL_SECONDS, from the moment it starts
waiting (for the guest to compile, or for its run), with the output the run produced since the
previous report (`OutputSoFar`, fed by the run's `on_output`).
"""

import codecs
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

T = TypeVar("T")

# How often a waiting caller hears how long it has waited.
PROGRESS_INTERVAL_SECONDS = 1.0

# The most output one progress message carries; the rest is counted, not shown (the result
# has all of it).
PROGRESS_OUTPUT_CHARS = 2000

ProgressReport = Callable[[float, str], Awaitable[None]]
"""`await report(elapsed_seconds, message)`: one progress event."""


class OutputSoFar:
    """What a run printed since the last progress report: filled on the run's thread by
    `on_output`, taken by the reporter on the event loop."""

    def __init__(self, limit: int = PROGRESS_OUTPUT_CHARS) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._decoders = {
            stream: codecs.getincrementaldecoder("utf-8")("replace")
            for stream in ("stdout", "stderr")
        }
        self._text: list[str] = []
        self._kept = 0
        self._left_out = 0

    def add(self, stream: str, data: bytes) -> None:
        """`on_output`: keeps up to the limit, counts the characters past it."""
        text = self._decoders[stream].decode(data)
        with self._lock:
            room = max(0, self._limit - self._kept)
            self._text.append(text[:room])
            self._kept += min(room, len(text))
            self._left_out += len(text) - min(room, len(text))

    def take(self) -> str:
        """The output since the last call ('' if none), with a note of what was left out."""
        with self._lock:
            text, left_out = "".join(self._text), self._left_out
            self._text, self._kept, self._left_out = [], 0, 0
        if left_out:
            text += f"[agentbox: {left_out} more characters in the result]"
        return text


async def with_progress(
    work: Callable[[], Awaitable[T]],
    report: ProgressReport | None,
    message: str,
    output: OutputSoFar | None = None,
) -> T:
    """`await work()`, calling `report(elapsed, message)` every PROGRESS_INTERVAL_SECONDS while
    it runs (no reports without `report`, and none once the work is done); the message gets
    the run's new `output` on lines of its own."""
    if report is None:
        return await work()
    started = time.monotonic()
    outcome: list[T] = []
    failure: list[Exception] = []

    async def run_work(scope: anyio.CancelScope) -> None:
        try:
            outcome.append(await work())
        except Exception as error:  # noqa: BLE001 - raised as is below, not in a group
            failure.append(error)
        scope.cancel()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(run_work, tasks.cancel_scope)
        while True:
            await anyio.sleep(PROGRESS_INTERVAL_SECONDS)
            new_output = output.take() if output is not None else ""
            text = f"{message}\n{new_output}" if new_output else message
            await report(time.monotonic() - started, text)
    if failure:
        raise failure[0]
    return outcome[0]
