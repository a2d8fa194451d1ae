"""Quiet logs for long-lived servers: a flood of one kind of message becomes one line a minute.

A local process that opens connections and sends junk (or exhausts descriptors) made
`agentbox serve` log a line or a traceback per attempt: ~600k lines. With `RepeatSummary`, the
first record of each kind in a window is shown; the rest are counted, and the count rides on
the next record of that kind shown after the window.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

# How long one kind of message stays quiet after it was shown.
SUMMARY_WINDOW_SECONDS = 60.0
# Kinds remembered at once (a kind is a logger and the first line of a message's template).
_MAX_KINDS = 256


@dataclass
class _Kind:
    shown_at: float
    suppressed: int = 0


class RepeatSummary(logging.Filter):
    """Shows a kind of record at most once per window, with a count of the ones not shown."""

    def __init__(
        self,
        window: float = SUMMARY_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._window = window
        self._clock = clock
        self._kinds: dict[tuple[str, str], _Kind] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg).partition("\n")[0][:200])
        now = self._clock()
        kind = self._kinds.get(key)
        if kind is not None and now - kind.shown_at < self._window:
            kind.suppressed += 1
            return False
        if kind is not None and kind.suppressed:
            record.msg = (
                f"{record.getMessage()} ({kind.suppressed} more like this since the last one "
                "shown were not shown)"
            )
            record.args = None
        if len(self._kinds) >= _MAX_KINDS and key not in self._kinds:
            self._kinds.clear()
        self._kinds[key] = _Kind(now)
        return True


def quiet_server_logs(prefix: str, *names: str) -> None:
    """Send the named loggers' warnings and errors to stderr as `PREFIX: message`, summarised."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(f"{prefix}: %(message)s"))
    handler.addFilter(RepeatSummary())
    for name in names:
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(logging.WARNING)
        logger.propagate = False
