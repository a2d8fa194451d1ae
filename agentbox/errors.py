"""The errors agentbox raises to its callers; each carries the CLI exit code it maps to.

They are Click exceptions so the CLI shows them as one line (`agentbox: ...`) with their exit
code and no traceback; library callers catch `AgentboxError`.
"""

from typing import IO, Any

import click

from agentbox.exit_codes import ExitCode


class AgentboxError(click.ClickException):
    """Base class: a failure of agentbox or of its input, never of the sandboxed script."""

    exit_code = ExitCode.INTERNAL

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"agentbox: {self.format_message()}", file=file, err=file is None)


class UsageError(AgentboxError):
    """Bad options or unreadable input given by the caller."""

    exit_code = ExitCode.USAGE


class GuestNotBuiltError(AgentboxError):
    """The packaged guest is missing: run `make guest` (source checkouts only)."""
