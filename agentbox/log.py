"""agentbox's loggers, imported on first use: `logging` costs ~4 ms of every `agentbox run`
start, and a run that logs nothing never needs it."""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import logging


def logger(name: str = "agentbox") -> "logging.Logger":
    import logging

    return logging.getLogger(name)
