"""Runs whose caller stopped waiting while their worker is still inside a host call.

The watchdog reports a run blocked in a host call (a slow skill, a raw WASI sleep) as timed out
at its deadline, but the worker thread stays in that call, and its Store (up to the run's memory
limit) stays alive until the call returns. A one-shot CLI run exits its process, which ends it;
a long-lived server must not pile them up, so it asks this registry how many are held (see
`agentbox.server.admission`). An abandoned run leaves the registry as soon as its worker returns.
"""

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class Held:
    """What the abandoned runs of this process hold now."""

    runs: int
    memory: int
    """The sum of their memory limits, in bytes."""


class AbandonedRuns:
    """The process's abandoned runs, counted by `RunWatch`es (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs = 0
        self._memory = 0

    def watch(self, memory: int) -> "RunWatch":
        """A watch for one run about to start, whose Store may hold up to `memory` bytes."""
        return RunWatch(self, memory)

    def held(self) -> Held:
        with self._lock:
            return Held(self._runs, self._memory)

    def _change(self, runs: int, memory: int) -> None:
        with self._lock:
            self._runs += runs
            self._memory += memory


class RunWatch:
    """One run: the caller calls `abandon` when it stops waiting, the worker `returned` when its
    call is over, in either order; the run counts as abandoned only in between."""

    def __init__(self, home: AbandonedRuns, memory: int) -> None:
        self._home = home
        self._memory = memory
        self._lock = threading.Lock()
        self._abandoned = False
        self._returned = False

    def abandon(self) -> None:
        with self._lock:
            if not (self._abandoned or self._returned):
                self._abandoned = True
                self._home._change(1, self._memory)

    def returned(self) -> None:
        with self._lock:
            if not self._returned:
                self._returned = True
                if self._abandoned:
                    self._home._change(-1, -self._memory)


abandoned_runs = AbandonedRuns()
