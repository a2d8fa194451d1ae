"""agentbox's loggers, imported on first use: `logging` costs ~4 ms of every `agentbox run`
start, and a run that logs nothing never needs it."""

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import logging


def logger(name: str = "agentbox") -> "logging.Logger":
    import logging

    return logging.getLogger(name)


# Set to 1 for agentbox's own tracebacks (internal errors, skills that raise).
DEBUG_VARIABLE = "AGENTBOX_DEBUG"


def debug_enabled() -> bool:
    return bool(os.environ.get(DEBUG_VARIABLE))
