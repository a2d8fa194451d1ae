"""How the long-lived commands (`mcp`, `serve`) stop: the first SIGINT or SIGTERM ends them
cleanly, with exit code 130 or 143 (docs/mcp.md)."""

import signal
import sys
from types import FrameType

from agentbox.exit_codes import ExitCode


def _terminated(number: int, frame: FrameType | None) -> None:
    raise SystemExit(ExitCode.TERMINATED)


def exit_on_sigterm_while_starting() -> None:
    """Until the server's own handlers take over, SIGTERM exits 143 like Ctrl-C exits 130
    (KeyboardInterrupt), not killed by the signal with nothing cleaned up."""
    if sys.platform != "win32":
        signal.signal(signal.SIGTERM, _terminated)
