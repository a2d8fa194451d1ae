"""The batch API: results for an iterable of tasks, streamed as they finish (sync and async).

    from agentbox.batch import run_batch

    tasks = [{"id": n, "code": program} for n, program in enumerate(programs)]
    for result in run_batch(tasks, timeout=10):
        scores[result.id] = result.ok

Each task runs in a fresh sandbox on a pool of worker processes (or of Ray actors with
`ray=ADDRESS`). A task that cannot run (bad fields, a repeated id) is an error result, never
an exception; the iterator raises only if the workers themselves cannot start.
"""

import threading
from collections.abc import AsyncIterator, Generator, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from agentbox.batch.runner import BatchSettings
from agentbox.batch.tasks import Task, TaskError, TaskResult, id_key
from agentbox.limits import (
    DEFAULT_MAX_OUTPUT_BYTES,
    DEFAULT_MEMORY_BYTES,
    DEFAULT_TIMEOUT_SECONDS,
    Limits,
    parse_size,
)

TaskLike = Task | Mapping[str, Any] | TaskResult
Work = tuple[Task, Limits]


class Pool(Protocol):
    size: int

    def run(
        self, items: Iterable[Work | TaskResult], stop: threading.Event | None = None
    ) -> Generator[TaskResult, None, None]: ...


def prepare(tasks: Iterable[TaskLike], caps: Limits) -> Iterator[Work | TaskResult]:
    """Validated tasks with their capped limits; what cannot run becomes an error result.

    A `TaskResult` among `tasks` (the CLI's stand-in for a malformed line) passes through."""
    seen: set[str] = set()
    for item in tasks:
        if isinstance(item, TaskResult):
            yield item
            continue
        try:
            task = Task.from_json(item)
        except TaskError as error:
            raw_id = item.get("id") if isinstance(item, Mapping) else None
            task_id = (
                raw_id if isinstance(raw_id, str | int) and not isinstance(raw_id, bool) else None
            )
            yield TaskResult.failure(task_id, str(error))
            continue
        key = id_key(task.id)
        if key in seen:
            yield TaskResult.failure(task.id, f"duplicate id {task.id!r}: not run again")
            continue
        seen.add(key)
        try:
            limits = task.limits_within(caps)
        except TaskError as error:
            yield TaskResult.failure(task.id, str(error))
            continue
        yield task, limits


def make_pool(
    settings: BatchSettings,
    workers: int | None = None,
    ray: str | bool | None = None,
    progress: Any = None,
) -> Pool:
    """Local worker processes, or Ray actors when `ray` is an address (True: `ray.init()`'s
    default: RAY_ADDRESS, a running local cluster, else a new local one)."""
    if ray is not None and ray is not False:
        from agentbox.batch.ray_pool import RayPool

        address = None if ray is True else str(ray)
        ray_pool: Pool = RayPool(settings, workers, address=address, progress=progress)
        return ray_pool
    from agentbox.batch.local import LocalPool

    return LocalPool(settings, workers, progress=progress)


def settings_from(
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    memory: int | str = DEFAULT_MEMORY_BYTES,
    max_output: int | str = DEFAULT_MAX_OUTPUT_BYTES,
    fuel: int | None = None,
    mounts: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    skill_files: Sequence[str] = (),
    skill_commands: Sequence[str] = (),
    config_path: str | None = None,
    engine: str = "wasm",
    image: str = "default",
) -> BatchSettings:
    limits = Limits(
        timeout=timeout, memory=parse_size(memory), max_output=parse_size(max_output), fuel=fuel
    )
    return BatchSettings(
        limits=limits,
        engine=engine,
        image=image,
        mounts=tuple(mounts),
        env=tuple((env or {}).items()),
        skill_files=tuple(skill_files),
        skill_commands=tuple(skill_commands),
        config_path=config_path,
    )


def run_batch(
    tasks: Iterable[TaskLike],
    *,
    workers: int | None = None,
    ray: str | bool | None = None,
    stop: threading.Event | None = None,
    **options: Any,
) -> Iterator[TaskResult]:
    """Run every task in a fresh sandbox; yield each result as it finishes.

    `options` are the batch's limits and sandbox settings (`timeout`, `memory`, `max_output`,
    `fuel`, `mounts`, `env`, `skill_files`, `skill_commands`, `config_path`, `engine`,
    `image`): caps that a task's own limits cannot exceed. Tasks are read from `tasks` only as
    workers free up, so a generator of a million tasks is fine. Closing the iterator stops the
    workers."""
    settings = options.pop("settings", None) or settings_from(**options)
    pool = make_pool(settings, workers, ray, progress=options.get("progress"))
    yield from pool.run(prepare(tasks, settings.limits), stop)


async def run_batch_async(
    tasks: Iterable[TaskLike], *, workers: int | None = None, **options: Any
) -> AsyncIterator[TaskResult]:
    """`run_batch` for asyncio: `async for result in run_batch_async(tasks): ...`.

    The dispatcher runs on a thread of its own, so the event loop is never blocked; leaving
    the loop early (break, cancellation) stops the workers."""
    import asyncio

    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    stop = threading.Event()

    def produce() -> None:
        try:
            for result in run_batch(tasks, workers=workers, stop=stop, **options):
                loop.call_soon_threadsafe(queue.put_nowait, ("result", result))
                if stop.is_set():
                    break
        except BaseException as error:  # noqa: BLE001 - re-raised in the consumer
            loop.call_soon_threadsafe(queue.put_nowait, ("error", error))
        else:
            loop.call_soon_threadsafe(queue.put_nowait, ("done", None))

    thread = threading.Thread(target=produce, name="agentbox-batch", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = await queue.get()
            if kind == "done":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        await asyncio.to_thread(thread.join)
