"""The errors agentbox raises to its callers; each carries the CLI exit code it maps to.

Library callers catch `AgentboxError`; the CLI shows one as one line (`agentbox: ...`) with
its exit code and no traceback. (No Click here: only the CLI layer knows about Click.)
"""

from agentbox.exit_codes import ExitCode


class AgentboxError(Exception):
    """Base class: a failure of agentbox or of its input, never of the sandboxed script."""

    exit_code: int = ExitCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(AgentboxError):
    """Bad options or unreadable input given by the caller."""

    exit_code = ExitCode.USAGE


class GuestNotBuiltError(AgentboxError):
    """The packaged guest is missing: run `make guest` (source checkouts only)."""


class ImageError(AgentboxError):
    """A guest image cannot be installed, built or loaded: the download failed, a sha256 does not
    match its pin, or an installed file changed since it was installed."""

    exit_code = ExitCode.IMAGE


class ImageNotInstalledError(ImageError):
    """The image asked for is not installed (it is never downloaded silently)."""
