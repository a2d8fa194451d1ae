"""Local batch workers: one process per core, each holding a warm `TaskRunner`.

Processes, not threads: a run holds the GIL while it instantiates and while it copies results,
and the memory-map work of instances contends inside one process (see README: Performance).
Workers are new interpreters (never `fork`: the parent may hold wasmtime threads), ignore
Ctrl-C (the parent decides what an interrupt means), and exit when the parent's end of their
pipe closes, so they never outlive it. A worker that dies mid-task is replaced and the task is
retried once on another worker; a task that kills two workers becomes an error result.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable
from typing import Any

from agentbox.batch.channel import Channel, wait
from agentbox.batch.runner import BatchSettings, TaskRunner, WorkerStuck
from agentbox.batch.tasks import Task, TaskResult
from agentbox.limits import Limits

# How often the dispatcher wakes without news, to notice a stop request.
_POLL_SECONDS = 0.25
# A task is tried on at most this many workers before it becomes an error result.
MAX_ATTEMPTS = 2

Work = tuple[Task, Limits]


def default_workers() -> int:
    """One worker per core this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def serve(connection: Channel) -> None:
    """A worker process's life: build the runner, then run tasks until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        settings: BatchSettings = connection.recv()
        runner = TaskRunner(settings, progress=lambda text: connection.send(("progress", text)))
    except (EOFError, OSError):
        return
    except Exception as error:  # noqa: BLE001 - reported to the parent as one line
        message = getattr(error, "message", None) or f"{type(error).__name__}: {error}"
        connection.send(("failed", message))
        return
    connection.send(("ready", os.getpid()))
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        task, limits = message
        try:
            result = runner.run(task, limits)
        except WorkerStuck:
            os._exit(1)  # the parent replaces this worker and runs the task on another
        except Exception as error:  # noqa: BLE001 - an agentbox bug: one result, not a crash
            result = TaskResult.failure(
                task.id, f"agentbox failed: {type(error).__name__}: {error}"
            )
        connection.send(("result", result))


class WorkerStartError(RuntimeError):
    """A worker could not build its sandbox (a bad skills file, say): the batch cannot run."""


def _package_root() -> str:
    import agentbox

    return os.path.dirname(os.path.dirname(os.path.abspath(agentbox.__file__)))


# A frozen binary has no `-m`: its entry script (packaging/entry.py) calls `serve` on seeing this.
FROZEN_WORKER_ARGUMENT = "--agentbox-batch-worker"


def worker_command(descriptor: int) -> tuple[list[str], dict[str, str]]:
    """How to start a worker serving the socket `descriptor`: this Python with the package on
    its path, or the frozen binary itself."""
    env = dict(os.environ)
    if getattr(sys, "frozen", False):
        return [sys.executable, FROZEN_WORKER_ARGUMENT, str(descriptor)], env
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_package_root(), env.get("PYTHONPATH", "")]))
    return [sys.executable, "-m", "agentbox.batch.worker", str(descriptor)], env


class _Worker:
    """A worker process, started as `python -m agentbox.batch.worker FD` with one end of a
    socket pair: never through multiprocessing's spawn, which would re-import the caller's
    main module in every worker (an eval script without a main guard would run again)."""

    def __init__(self, settings: BatchSettings) -> None:
        parent, child = socket.socketpair()
        command, env = worker_command(child.fileno())
        self.process = subprocess.Popen(
            command,
            pass_fds=[child.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            env=env,
        )
        child.close()
        self.connection = Channel(parent)
        self.connection.send(settings)
        self.ready = False
        self.work: tuple[Work, int] | None = None

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.connection.close()
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class LocalPool:
    """`workers` processes; `run` streams results in the order tasks finish."""

    def __init__(
        self,
        settings: BatchSettings,
        workers: int | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings.with_absolute_paths()
        self.size = workers or default_workers()
        if self.size < 1:
            raise ValueError("a batch needs at least one worker")
        self._progress = progress
        self._workers: list[_Worker] = []

    def close(self) -> None:
        workers, self._workers = self._workers, []
        for worker in workers:
            with contextlib.suppress(OSError):
                worker.connection.send(None)
        for worker in workers:
            worker.stop()

    def _start(self) -> _Worker:
        worker = _Worker(self.settings)
        self._workers.append(worker)
        return worker

    def _replace(self, worker: _Worker) -> None:
        self._workers.remove(worker)
        worker.stop()
        self._start()

    def _receive(self, worker: _Worker) -> tuple[str, Any] | None:
        """The worker's next message, or None if it died."""
        try:
            message: tuple[str, Any] = worker.connection.recv()
        except (EOFError, OSError):
            return None
        if message[0] == "progress":
            if self._progress is not None:
                self._progress(message[1])
        elif message[0] == "failed":
            raise WorkerStartError(message[1])
        return message

    def _first_worker(self, stop: threading.Event | None) -> None:
        """Start every worker, and wait for the first to be ready, so a worker that cannot
        start (a bad skills file) is one clear error. They load the guest at once; if the
        cache lacks it, one compiles it (with progress) and the others wait for it and load
        it (see `agentbox.batch.runner`)."""
        worker = self._start()
        while len(self._workers) < self.size:
            self._start()
        while not worker.ready:
            if stop is not None and stop.is_set():
                return
            if not wait([worker.connection], _POLL_SECONDS):
                continue
            message = self._receive(worker)
            if message is None:
                code = worker.process.wait()
                raise WorkerStartError(f"a batch worker exited while starting (exit code {code})")
            worker.ready = message[0] == "ready"

    def run(
        self, items: Iterable[Work | TaskResult], stop: threading.Event | None = None
    ) -> Generator[TaskResult, None, None]:
        """Run the tasks; error results among `items` are passed through as they come.

        Each worker has one task at a time: the next task is read from `items` only when a
        worker frees up (back-pressure), and a dead worker's task is known exactly."""
        pending = iter(items)
        retries: deque[tuple[Work, int]] = deque()
        exhausted = False

        def next_job() -> tuple[Work, int] | TaskResult | None:
            nonlocal exhausted
            if retries:
                return retries.popleft()
            item = None if exhausted else next(pending, None)
            if item is None:
                exhausted = True
                return None
            return item if isinstance(item, TaskResult) else (item, 1)

        try:
            first = next_job()
            while isinstance(first, TaskResult):  # no worker starts before there is work
                yield first
                first = next_job()
            if first is None:
                return
            retries.append(first)
            self._first_worker(stop)
            while stop is None or not stop.is_set():
                idle = [worker for worker in self._workers if worker.work is None]
                while idle:
                    job = next_job()
                    if job is None:
                        break
                    if isinstance(job, TaskResult):
                        yield job
                        continue
                    worker = idle.pop()
                    worker.work = job
                    with contextlib.suppress(OSError):  # died: its pipe reports the end below
                        worker.connection.send(job[0])
                busy = {worker.connection: worker for worker in self._workers if worker.work}
                if not busy and exhausted and not retries:
                    return
                for connection in wait(list(busy), _POLL_SECONDS):
                    worker = busy[connection]
                    message = self._receive(worker)
                    if message is None:
                        lost = worker.work
                        assert lost is not None
                        self._replace(worker)
                        result = self._retry(lost, retries)
                        if result is not None:
                            yield result
                    elif message[0] == "result":
                        worker.work = None
                        yield message[1]
        finally:
            self.close()

    @staticmethod
    def _retry(job: tuple[Work, int], retries: deque[tuple[Work, int]]) -> TaskResult | None:
        (task, limits), attempts = job
        if attempts < MAX_ATTEMPTS:
            retries.append(((task, limits), attempts + 1))
            return None
        return TaskResult.failure(
            task.id, f"a batch worker process died running this task ({attempts} attempts)"
        )
