"""The `agentbox` command line. Each command lives in its own module and is imported only when
invoked, so `agentbox run` never pays for the imports of `agentbox mcp`."""

import contextlib
import importlib
import os
import sys
from typing import Any

import click

from agentbox._version import __version__
from agentbox.errors import AgentboxError
from agentbox.exit_codes import ExitCode
from agentbox.log import DEBUG_VARIABLE

COMMANDS = {
    "run": ("agentbox.cli.run", "run", "Run a Python script in the sandbox."),
    "batch": ("agentbox.cli.batch", "batch", "Run a JSON Lines file of tasks, each in a sandbox."),
    "warmup": ("agentbox.cli.warmup", "warmup", "Compile and cache the sandbox ahead of time."),
    "info": ("agentbox.cli.info", "info", "Show versions, the guest and the cache."),
    "cache": ("agentbox.cli.cache", "cache", "Manage the compiled-sandbox cache."),
    "mcp": ("agentbox.cli.mcp", "mcp", "Serve run_python over the Model Context Protocol (stdio)."),
    "serve": ("agentbox.cli.serve", "serve", "Serve runs over HTTP on 127.0.0.1 (bearer token)."),
    "licenses": ("agentbox.cli.licenses", "licenses", "Show the third-party licenses."),
    "image": ("agentbox.cli.image", "image", "List, install and remove guest images (data)."),
}


class LazyGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AgentboxError as error:  # expected: one line and its documented exit code
            click.echo(f"agentbox: {error.message}", err=True)
            sys.exit(error.exit_code)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module_name, attribute, _ = COMMANDS[cmd_name]
        command: click.Command = getattr(importlib.import_module(module_name), attribute)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="agentbox")
def cli() -> None:
    """Run untrusted Python in a WebAssembly sandbox that starts in milliseconds.

    \b
      agentbox run - < script.py
      agentbox run script.py arg1 arg2
      echo 'print(1+1)' | agentbox run --json -

    Set AGENTBOX_DEBUG=1 to see agentbox's own tracebacks on internal errors.
    """


def _exit_code() -> int:
    """Run the CLI; expected failures are one line on stderr with a documented exit code."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as exit_request:
        return exit_request.exit_code
    except SystemExit as exit_request:
        code = exit_request.code
        return code if isinstance(code, int) else (0 if code is None else ExitCode.INTERNAL)
    except click.UsageError as error:  # one line, like every other error (`--help` has more)
        click.echo(f"agentbox: {error.format_message()}", err=True)
        return error.exit_code
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except click.Abort as abort:
        if isinstance(abort.__context__, KeyboardInterrupt):  # Ctrl-C while Click parsed
            return ExitCode.INTERRUPTED
        click.echo("agentbox: aborted", err=True)
        return ExitCode.USAGE
    except BrokenPipeError:
        return ExitCode.OK
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    except Exception as error:
        if os.environ.get(DEBUG_VARIABLE):
            raise
        click.echo(
            f"agentbox: internal error: {type(error).__name__}: {error} "
            f"(set {DEBUG_VARIABLE}=1 for a traceback)",
            err=True,
        )
        return ExitCode.INTERNAL
    return ExitCode.OK


def main() -> None:
    """The `agentbox` command. Ends with `os._exit` once output is flushed: wasmtime's WASI
    runtime may still be closing a freed sandbox's streams on its worker threads, and a normal
    interpreter shutdown racing with them can abort with a Rust panic."""
    code = _exit_code()
    # `os._exit` skips atexit, whose hook ends command skills a timeout or Ctrl-C abandoned.
    commands = sys.modules.get("agentbox.skills.command")  # loaded only if a skill is one
    if commands is not None:
        commands.end_running_commands()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing left to say
            stream.flush()
    os._exit(code & 0xFF)  # what the OS keeps of `sys.exit(code)` anyway
