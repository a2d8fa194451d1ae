"""Progress of a long call, for clients that asked for it (MCP `progressToken`, HTTP streaming).

A call reports the seconds it has run every PROGRESS_INTERVAL_SECONDS, from the moment it starts
waiting (for the guest to compile, or for its run). A run's output so far can join the message
once the Python API offers it while the run goes on: `with_progress` is the one place to add it.
"""

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

T = TypeVar("T")

# How often a waiting caller hears how long it has waited.
PROGRESS_INTERVAL_SECONDS = 1.0

ProgressReport = Callable[[float, str], Awaitable[None]]
"""`await report(elapsed_seconds, message)`: one progress event."""


async def with_progress(
    work: Callable[[], Awaitable[T]], report: ProgressReport | None, message: str
) -> T:
    """`await work()`, calling `report(elapsed, message)` every PROGRESS_INTERVAL_SECONDS while
    it runs (no reports without `report`, and none once the work is done)."""
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
            await report(time.monotonic() - started, message)
    if failure:
        raise failure[0]
    return outcome[0]
