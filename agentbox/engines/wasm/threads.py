"""Long-lived helper threads that keep thread start-up and memory release off a run's hot path.

A guest call runs on a thread of its own so the caller can abandon it at the deadline (a guest
blocked inside a host call cannot be interrupted). Starting a new thread per run cost ~0.3 ms:
the thread itself plus wasmtime's per-thread set-up on its first call into WebAssembly. Freeing
a used instance's memory costs ~0.4 ms, and several ms once the machine has idled (freed pages
come back slowly on a virtual machine). Both now happen on threads that outlive the run.
"""

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from agentbox import log

if TYPE_CHECKING:
    import asyncio


# Idle run threads kept for reuse; more are started when more runs are in flight at once.
MAX_IDLE_RUN_THREADS = 8


class _RunThread:
    def __init__(self, home: "RunThreads") -> None:
        self._home = home
        self._jobs: queue.SimpleQueue[tuple[Callable[[], None], Callable[[], None]]] = (
            queue.SimpleQueue()
        )
        threading.Thread(target=self._serve, name="agentbox-run", daemon=True).start()

    def submit(self, work: Callable[[], None], on_done: Callable[[], None]) -> None:
        self._jobs.put((work, on_done))

    def _serve(self) -> None:
        while True:
            work, on_done = self._jobs.get()
            try:
                work()
            except BaseException:  # noqa: BLE001 - logged; the work reports its own errors
                log.logger().exception("a run thread's work raised")
            # Parked before the caller hears of it, so a caller that runs again at once finds it.
            keep = self._home._park(self)
            on_done()
            del work, on_done
            if not keep:
                return


class RunThreads:
    """Runs `work` on a reused thread; a caller that stops waiting simply abandons it.

    An abandoned thread rejoins the idle set if its work ever returns, so a guest stuck in a
    host call costs one thread for as long as it stays stuck, never a wrong reuse.
    """

    def __init__(self) -> None:
        self._idle: list[_RunThread] = []
        self._lock = threading.Lock()

    @property
    def idle_threads(self) -> int:
        return len(self._idle)

    def run(self, work: Callable[[], None], timeout: float) -> bool:
        """Run `work`; True if it finished within `timeout` seconds."""
        done = threading.Event()
        self._thread().submit(work, done.set)
        return done.wait(timeout)

    async def run_async(self, work: Callable[[], None], timeout: float) -> bool:
        """`run` for an event loop: the loop awaits the run thread directly, no other hop."""
        import asyncio  # here, not at the top: `agentbox run` never pays for importing it

        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def wake() -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed after abandoning the run
                loop.call_soon_threadsafe(_resolve, done)

        self._thread().submit(work, wake)
        finished, _ = await asyncio.wait({done}, timeout=timeout)
        return bool(finished)

    def _thread(self) -> _RunThread:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return _RunThread(self)

    def _park(self, thread: _RunThread) -> bool:
        with self._lock:
            if len(self._idle) >= MAX_IDLE_RUN_THREADS:
                return False
            self._idle.append(thread)
            return True


def _resolve(future: "asyncio.Future[None]") -> None:
    if not future.done():
        future.set_result(None)


class _Releaser:
    """Drops references on its own thread, so freeing what they hold is not the caller's cost.

    Each item is dropped RELEASE_DELAY_SECONDS after it was handed over: the run that used it
    is still sending its reply then, and freeing memory beside it would slow that reply down.
    """

    RELEASE_DELAY_SECONDS = 0.005

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[float, object]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._drained = threading.Condition(self._lock)
        self.pending = 0
        """Items handed over and not yet dropped."""

    def release(self, item: object) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._drain, name="agentbox-release", daemon=True
                )
                self._thread.start()
            self.pending += 1
        self._queue.put((time.monotonic() + self.RELEASE_DELAY_SECONDS, item))

    def wait_until_pending(self, at_most: int, timeout: float) -> bool:
        """Wait until at most `at_most` items are still to be dropped; False on timeout."""
        with self._drained:
            return self._drained.wait_for(lambda: self.pending <= at_most, timeout)

    def _drain(self) -> None:
        while True:
            due, item = self._queue.get()
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            del item  # the release
            with self._drained:
                self.pending -= 1
                self._drained.notify_all()


run_threads = RunThreads()
_releaser = _Releaser()


def release_later(item: object) -> None:
    """Hand over the last reference to `item`; it is freed on a background thread."""
    _releaser.release(item)


def wait_for_releases(at_most: int, timeout: float) -> bool:
    """Wait until at most `at_most` handed-over items are still to be freed (a process whose
    instances come from a fixed pool of slots must not let frees fall behind); False if that
    took longer than `timeout` seconds."""
    return _releaser.wait_until_pending(at_most, timeout)
