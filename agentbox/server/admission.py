"""What a long-lived server (`agentbox mcp`, `agentbox serve`) lets in: one gate for every run.

A run is refused with `ServerBusyError`, one line saying why, while

- the process's abandoned runs (`agentbox.engines.wasm.abandoned`) hold `MAX_ABANDONED_RUNS`
  Stores or `MAX_ABANDONED_MEMORY_BYTES` of memory limits between them: each keeps its memory
  until its worker returns, so admitting more could pin memory without bound. Refusals end by
  themselves as those workers return;
- `MAX_ONE_SHOT_RUNS` runs without a session are in progress (sessions are capped by
  `SessionManager`, whose `SessionLimitError` is a `ServerBusyError` too).

The servers answer it as an MCP tool error or an HTTP 503; the server itself goes on serving.
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from agentbox.engines.wasm.abandoned import AbandonedRuns, abandoned_runs
from agentbox.limits import (
    MAX_ABANDONED_MEMORY_BYTES,
    MAX_ABANDONED_RUNS,
    MAX_ONE_SHOT_RUNS,
    MIB,
)


class ServerBusyError(RuntimeError):
    """A run is refused for now: the server is at one of its caps (try again later)."""


class Admission:
    """The gate; thread-safe, shared by every request of one server."""

    def __init__(
        self,
        abandoned: AbandonedRuns = abandoned_runs,
        *,
        max_abandoned_runs: int = MAX_ABANDONED_RUNS,
        max_abandoned_memory: int = MAX_ABANDONED_MEMORY_BYTES,
        max_one_shot_runs: int = MAX_ONE_SHOT_RUNS,
    ) -> None:
        self._abandoned = abandoned
        self.max_abandoned_runs = max_abandoned_runs
        self.max_abandoned_memory = max_abandoned_memory
        self.max_one_shot_runs = max_one_shot_runs
        self._lock = threading.Lock()
        self._one_shot_runs = 0

    @contextmanager
    def admitted(self, *, one_shot: bool) -> Iterator[None]:
        """Hold a place for one run for the block (a one-shot run also counts against its cap)."""
        self._refuse_while_abandoned_runs_hold_too_much()
        if not one_shot:
            yield
            return
        with self._lock:
            if self._one_shot_runs >= self.max_one_shot_runs:
                raise ServerBusyError(
                    f"{self._one_shot_runs} runs without a session are already in progress "
                    f"(at most {self.max_one_shot_runs}); try again when one finishes"
                )
            self._one_shot_runs += 1
        try:
            yield
        finally:
            with self._lock:
                self._one_shot_runs -= 1

    def _refuse_while_abandoned_runs_hold_too_much(self) -> None:
        held = self._abandoned.held()
        if held.runs >= self.max_abandoned_runs or held.memory >= self.max_abandoned_memory:
            raise ServerBusyError(
                f"new runs are refused for now: {held.runs} timed-out runs are still blocked in "
                f"host calls and hold up to {held.memory // MIB} MiB (at most "
                f"{self.max_abandoned_runs} runs or {self.max_abandoned_memory // MIB} MiB); "
                "try again when they return"
            )
