"""`RepeatSummary`: a flood of one kind of log record becomes one line per window plus a count."""

import io
import logging

from agentbox.server.log_summary import RepeatSummary


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_repeats_are_counted_and_reported_with_the_next_line_shown() -> None:
    clock = FakeClock()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RepeatSummary(window=60, clock=clock))
    logger = logging.getLogger("tests.log_summary")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        for number in range(1000):
            logger.warning("bad request %d", number)
        logger.warning("another kind")
        clock.now += 61
        logger.warning("bad request %d", 1000)
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue().splitlines() == [
        "bad request 0",
        "another kind",
        "bad request 1000 (999 more like this since the last one shown were not shown)",
    ]
