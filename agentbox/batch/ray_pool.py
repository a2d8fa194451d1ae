"""Batch workers on a Ray cluster: a pool of actors, one per CPU, each holding a warm sandbox.

Only `agentbox batch --ray` and `run_batch(..., ray=...)` import this module, and only this
module imports Ray (the `ray` extra). The driver feeds tasks with back-pressure (at most
`IN_FLIGHT` per actor), writes each result once, and when an actor is lost (its node died,
its process was killed) it starts a replacement wherever Ray can place one and runs the lost
tasks again on live actors: a task is never lost, and its result is never written twice.
Each actor runs the same `TaskRunner` as a local worker, so results are the same. All actors
start at once, each loading the guest in its constructor while the driver reads tasks; the
guest is compiled once per node, into that node's cache, by the first actor there to take the
node's compile lock (with a progress line, forwarded to the driver's stderr by Ray), and the
node's other actors, waiting for that lock, load it (see `agentbox.batch.runner`).
"""

import contextlib
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from agentbox._version import DISTRIBUTION
from agentbox.batch.runner import BatchSettings, TaskRunner, WorkerStuck
from agentbox.batch.tasks import Task, TaskResult, id_key
from agentbox.errors import UsageError
from agentbox.limits import Limits

Work = tuple[Task, Limits]

# Calls queued on one actor: the next one is already there when a run ends (hides the round
# trip), and few enough that a lost actor takes little work with it.
IN_FLIGHT = 2
# Tasks per call: a Ray call costs the driver ~1 ms of CPU, as much as a task costs its actor,
# so tasks go in small groups (their results come back together).
TASKS_PER_CALL = 8
# A task is tried on at most this many actors before it becomes an error result.
MAX_ATTEMPTS = 3
_POLL_SECONDS = 0.25
# How long the actors of a batch that ended wait, warm, for this process's next batch with the
# same settings on the same cluster (an eval or RL loop calls `run_batch` again and again)
# before they are killed and free their CPUs.
LINGER_SECONDS = 30.0


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError(
            f"--ray needs Ray: pip install '{DISTRIBUTION}[ray]' (on every node of the cluster)"
        ) from None
    return ray


class _Actor:
    """Runs in a Ray worker process: a warm TaskRunner."""

    def __init__(self, settings: BatchSettings) -> None:
        import sys

        def progress(message: str) -> None:
            print(message, file=sys.stderr, flush=True)

        self.runner = TaskRunner(settings, progress=progress)

    def ready(self) -> bool:
        return True

    def run(self, works: list[Work]) -> list[TaskResult]:
        return [self._run_one(task, limits) for task, limits in works]

    def _run_one(self, task: Task, limits: Limits) -> TaskResult:
        try:
            return self.runner.run(task, limits)
        except WorkerStuck:
            import os

            os._exit(1)  # the driver replaces this actor and runs its tasks on others
        except Exception as error:  # noqa: BLE001 - an agentbox bug: one result, not a crash
            text = f"agentbox failed: {type(error).__name__}: {error}"
            return TaskResult.failure(task.id, text)


@dataclass
class _Member:
    handle: Any
    ready: bool = False
    calls: dict[Any, list[tuple[Work, int]] | None] = field(default_factory=dict)
    """Calls in flight, each with its tasks and their attempts: None marks the `ready` call of
    an actor still starting."""


class _Parking:
    """Actors of finished batches, kept for LINGER_SECONDS for the next batch of this process
    that asks for the same settings on the same cluster (Ray job), then killed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._parked: dict[Any, list[Any]] = {}

    def take(self, key: Any) -> list[Any]:
        """The actors parked for `key`; any parked for other settings are killed, so their
        CPUs are free for this batch's new actors."""
        with self._lock:
            taken = self._parked.pop(key, [])
            others, self._parked = list(self._parked.values()), {}
        for handles in others:
            self.kill(handles)
        return taken

    def park(self, key: Any, handles: list[Any]) -> None:
        with self._lock:
            self.kill(self._parked.pop(key, []))  # never two sets for one key
            self._parked[key] = handles
        timer = threading.Timer(LINGER_SECONDS, self._expire, (key, handles))
        timer.daemon = True
        timer.start()

    def _expire(self, key: Any, handles: list[Any]) -> None:
        with self._lock:
            if self._parked.get(key) is not handles:
                return  # taken by a later batch (or replaced)
            del self._parked[key]
        self.kill(handles)

    @staticmethod
    def kill(handles: list[Any]) -> None:
        ray = _ray()
        for handle in handles:
            with contextlib.suppress(Exception):
                ray.kill(handle)


_parking = _Parking()


class RayPool:
    """`workers` actors (default: one per CPU of the cluster) on the cluster at `address`."""

    def __init__(
        self,
        settings: BatchSettings,
        workers: int | None = None,
        address: str | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings.with_absolute_paths()
        self._progress = progress
        self.address = address
        self.size = workers or 0
        self._members: list[_Member] = []
        self._actor_class: Any = None

    def _connect(self) -> Any:
        ray = _ray()
        if not ray.is_initialized():
            try:
                ray.init(
                    address=self.address,
                    logging_level="warning",
                    log_to_driver=True,
                    configure_logging=True,
                )
            except ConnectionError as error:
                where = self.address or "RAY_ADDRESS"
                raise UsageError(f"cannot reach a Ray cluster at {where}: {error}") from None
        if not self.size:
            self.size = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._actor_class = ray.remote(num_cpus=1, max_restarts=0)(_Actor)
        return ray

    def _start(self) -> _Member:
        member = _Member(self._actor_class.remote(self.settings))
        member.calls[member.handle.ready.remote()] = None
        self._members.append(member)
        return member

    def close(self, park_key: Any = None) -> None:
        """Kill the actors, or with `park_key` (a batch that ended: no task in flight) park
        them for this process's next batch."""
        members, self._members = self._members, []
        handles = [member.handle for member in members]
        if park_key is not None:
            _parking.park(park_key, handles)
        else:
            _parking.kill(handles)

    def _park_key(self, ray: Any) -> Any:
        return (ray.get_runtime_context().get_job_id(), self.settings, self.size)

    def run(
        self, items: Iterable[Work | TaskResult], stop: threading.Event | None = None
    ) -> Generator[TaskResult, None, None]:
        ray = self._connect()
        pending: Iterator[Work | TaskResult] = iter(items)
        retries: deque[tuple[Work, int]] = deque()
        written: set[str] = set()
        exhausted = False
        start_failures = 0
        park_key = self._park_key(ray)
        finished = False
        try:
            for handle in _parking.take(park_key):
                member = _Member(handle)  # warm, but checked like a new one: it may have died
                member.calls[handle.ready.remote()] = None
                self._members.append(member)
            while len(self._members) < self.size:
                self._start()
            while stop is None or not stop.is_set():
                for member in self._members:
                    while member.ready and len(member.calls) < IN_FLIGHT:
                        feeds: list[tuple[Work, int]] = []
                        while len(feeds) < TASKS_PER_CALL:
                            if retries:
                                feeds.append(retries.popleft())
                                continue
                            item = None if exhausted else next(pending, None)
                            if item is None:
                                exhausted = True
                                break
                            if isinstance(item, TaskResult):
                                yield item
                                continue
                            feeds.append((item, 1))
                        if not feeds:
                            break
                        works = [work for work, _ in feeds]
                        member.calls[member.handle.run.remote(works)] = feeds
                running = any(c for member in self._members for c in member.calls.values())
                if exhausted and not retries and not running:
                    finished = True
                    return
                owner = {ref: member for member in self._members for ref in member.calls}
                done, _ = ray.wait(list(owner), num_returns=1, timeout=_POLL_SECONDS)
                for ref in done:
                    member = owner[ref]
                    if member not in self._members:
                        continue  # lost in this round already
                    call = member.calls.pop(ref)
                    try:
                        values = ray.get(ref)
                    except ray.exceptions.RayError as error:
                        if call is None and not any(m.ready for m in self._members):
                            start_failures += 1
                            if start_failures > self.size + 2:
                                first = (str(error).strip().splitlines() or ["?"])[0]
                                raise UsageError(
                                    f"Ray actors cannot start (is {DISTRIBUTION}[ray] "
                                    f"installed on every node?): {first}"
                                ) from None
                        yield from self._lose(member, call, retries)
                        continue
                    if call is None:
                        member.ready = True
                        continue
                    for value in values:
                        key = id_key(value.id)
                        if key not in written:  # a result reaches the output once
                            written.add(key)
                            yield value
        finally:
            self.close(park_key if finished else None)

    def _lose(
        self,
        member: _Member,
        call: list[tuple[Work, int]] | None,
        retries: deque[tuple[Work, int]],
    ) -> Iterator[TaskResult]:
        """`member` is gone (its node died, its process was killed): its tasks go back to the
        queue for another actor, and a replacement starts wherever Ray can place it."""
        self._members.remove(member)
        calls = [call, *member.calls.values()]
        jobs = [lost for feeds in calls if feeds is not None for lost in feeds]
        if self._progress is not None and jobs:
            self._progress(
                f"a Ray actor was lost (its node or process died): {len(jobs)} of its "
                "tasks run again on another"
            )
        for lost in jobs:
            (task, limits), attempts = lost
            if attempts < MAX_ATTEMPTS:
                retries.append(((task, limits), attempts + 1))
            else:
                yield TaskResult.failure(
                    task.id, f"lost with its Ray actor {attempts} times (nodes died)"
                )
        member.calls.clear()
        self._start()
