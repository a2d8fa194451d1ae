"""A warm pool: guest instances created ahead of time, so a run does not pay instantiation.

Each pooled instance is used for exactly one run (or one session) and then dropped: pooling
never lets two runs share an interpreter. A background thread refills the pool off the hot path,
once no instance has been taken for a moment, and pauses between instances while takes go on:
building the next instance beside the runs that take them competes for the CPU, the GIL and the
process's memory map (measured: a paced run's round trip halved; back to back, the CPU per run
doubled while the caller built instances too).
"""

import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


# How long the refill waits after the latest take, so the runs (and replies) finish first.
REFILL_DELAY_SECONDS = 0.01


class WarmPool(Generic[T]):
    def __init__(self, factory: Callable[[], T], size: int) -> None:
        if size < 1:
            raise ValueError("a warm pool needs a size of at least 1")
        self._factory = factory
        self._ready: queue.Queue[T] = queue.Queue(maxsize=size)
        self._wanted = threading.Event()
        self._taken = threading.Event()
        self._closed = False
        self._wanted.set()
        self._thread = threading.Thread(target=self._refill, name="agentbox-pool", daemon=True)
        self._thread.start()

    def take_ready(self) -> T | None:
        """A ready instance, or None at once if the pool is empty (either way, it refills)."""
        self._taken.set()
        self._wanted.set()
        try:
            return self._ready.get_nowait()
        except queue.Empty:
            return None

    def close(self) -> None:
        self._closed = True
        self._wanted.set()
        self._taken.set()

    def _refill(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            while not self._closed and not self._ready.full():
                self._wait_for_a_lull()
                if self._closed:
                    break
                try:
                    self._ready.put_nowait(self._factory())
                except queue.Full:
                    break
                except Exception:  # noqa: BLE001 - a failed pre-instantiation is retried on demand
                    break
            if self._closed:
                return

    def _wait_for_a_lull(self) -> None:
        """Until REFILL_DELAY_SECONDS pass without a take (at once if none came since the last
        instance was built)."""
        while self._taken.is_set() and not self._closed:
            self._taken.clear()
            self._taken.wait(REFILL_DELAY_SECONDS)
