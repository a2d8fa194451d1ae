"""How the long-lived commands (`mcp`, `serve`) stop: the first SIGINT or SIGTERM ends them
cleanly, with exit code 130 or 143 (docs/mcp.md)."""

import signal
import sys
from types import FrameType

from agentbox.exit_codes import for_stop_signal


def _stop(number: int, frame: FrameType | None) -> None:
    raise SystemExit(for_stop_signal(number))


def exit_on_signals_while_starting() -> None:
    """Until the server's own handlers take over (and again once they are gone), SIGINT exits
    130 and SIGTERM 143 through the `finally` blocks: not Click's "aborted" (exit 2), not killed
    by the signal with nothing cleaned up."""
    if sys.platform != "win32":
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, _stop)
