"""`agentbox run`: run one script in a fresh sandbox; the process exits with the script's code."""

import json
import sys
from pathlib import Path
from typing import Any

import click

from agentbox.cli.options import build_sandbox, sandbox_options
from agentbox.errors import UsageError


def _read_script(script: str) -> tuple[bytes, str]:
    """The script's bytes and the filename tracebacks show (as `python` names them)."""
    if script == "-":
        if sys.stdin is None or sys.stdin.closed:
            raise UsageError("cannot read the script from stdin: stdin is closed")
        try:
            return sys.stdin.buffer.read(), "<stdin>"
        except OSError as error:
            raise UsageError(f"cannot read the script from stdin: {error.strerror}") from None
    path = Path(script)
    if path.is_dir():
        raise UsageError(f"cannot run {script!r}: it is a directory")
    try:
        return path.read_bytes(), script
    except FileNotFoundError:
        raise UsageError(f"cannot run {script!r}: no such file") from None
    except OSError as error:
        raise UsageError(f"cannot read {script!r}: {error.strerror or error}") from None


def _script_stdin(script: str) -> bytes:
    """A script given as a file reads the host's stdin when it is piped (never a terminal)."""
    if script == "-" or sys.stdin is None or sys.stdin.closed or sys.stdin.isatty():
        return b""
    try:
        return sys.stdin.buffer.read()
    except OSError:
        return b""


def _progress(message: str) -> None:
    click.echo(message, err=True)


@click.command(
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.argument("script", metavar="SCRIPT|-")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@sandbox_options
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object instead of the output."
)
@click.pass_context
def run(
    ctx: click.Context, script: str, args: tuple[str, ...], as_json: bool, **options: Any
) -> None:
    """Run SCRIPT (a file, or - for stdin) in the sandbox, as `python SCRIPT ARGS...` would.

    Everything after SCRIPT is passed to the script's sys.argv, even words that look like
    options. The exit code is the script's own; limits and errors have fixed codes (see
    README: "Exit codes").
    """
    source, filename = _read_script(script)
    sandbox = build_sandbox(ctx, progress=_progress, **options)
    result = sandbox.run(source, args=args, stdin=_script_stdin(script), filename=filename)
    if as_json:
        click.echo(json.dumps(result.to_json(), ensure_ascii=False))
    else:
        sys.stdout.buffer.write(result.stdout_bytes)
        sys.stdout.flush()
        sys.stderr.buffer.write(result.stderr_bytes)
        if result.message:
            sys.stderr.write(f"agentbox: {result.message}\n")
        sys.stderr.flush()
    sys.exit(result.exit_code)
