"""`agentbox run`: run one script in a fresh sandbox; the process exits with the script's code."""

import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

import click

from agentbox.cli.options import build_sandbox, echo_progress, sandbox_options
from agentbox.cli.output_dir import output_dir_options, report
from agentbox.engines.base import DEFAULT_FILENAME
from agentbox.errors import AgentboxError, UsageError
from agentbox.exit_codes import ExitCode


class InputTimeoutError(AgentboxError):
    """The host's stdin stayed open past the deadline: the run never started."""

    exit_code = ExitCode.TIMEOUT


def _read_stdin(timeout: float, what: str) -> bytes:
    """All of the host's stdin, within the run's `--timeout` (a pipe may never be closed)."""
    box: dict[str, bytes | OSError] = {}

    def read() -> None:
        # Raw reads on the descriptor: a thread left blocked in BufferedReader.read() would
        # hold its lock and abort the interpreter's shutdown.
        try:
            descriptor = sys.stdin.fileno()
        except (OSError, ValueError):  # no descriptor: stdin was replaced (embedded, tests)
            box["data"] = sys.stdin.buffer.read()
            return
        chunks = []
        try:
            while chunk := os.read(descriptor, 1 << 20):
                chunks.append(chunk)
        except OSError as error:
            box["error"] = error
            return
        box["data"] = b"".join(chunks)

    reader = threading.Thread(target=read, name="agentbox-stdin", daemon=True)
    reader.start()
    reader.join(timeout)
    if reader.is_alive():
        raise InputTimeoutError(
            f"timed out after {timeout:g} s waiting for stdin to close ({what}; --timeout)"
        )
    if "error" in box:
        error = box["error"]
        assert isinstance(error, OSError)
        raise UsageError(f"cannot read {what} from stdin: {error.strerror or error}")
    data = box["data"]
    assert isinstance(data, bytes)
    return data


def _read_script(script: str, timeout: float) -> tuple[bytes, str]:
    """The script's bytes and the filename tracebacks show (as `python` names them)."""
    if script == "-":
        if sys.stdin is None or sys.stdin.closed:
            raise UsageError("cannot read the script from stdin: stdin is closed")
        return _read_stdin(timeout, "the script"), DEFAULT_FILENAME
    path = Path(script)
    if path.is_dir():
        raise UsageError(f"cannot run {script!r}: it is a directory")
    try:
        return path.read_bytes(), script
    except FileNotFoundError:
        raise UsageError(f"cannot run {script!r}: no such file") from None
    except OSError as error:
        raise UsageError(f"cannot read {script!r}: {error.strerror or error}") from None


def _script_stdin(script: str, timeout: float) -> bytes:
    """A script given as a file reads the host's stdin when it is piped (never a terminal)."""
    if script == "-" or sys.stdin is None or sys.stdin.closed or sys.stdin.isatty():
        return b""
    return _read_stdin(timeout, "the script's input")


@click.command(
    context_settings={"allow_interspersed_args": False},
)
@click.argument("script", metavar="SCRIPT|-")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@sandbox_options
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object instead of the output."
)
@output_dir_options
@click.pass_context
def run(
    ctx: click.Context,
    /,
    script: str,
    args: tuple[str, ...],
    as_json: bool,
    output_dir: Path | None,
    overwrite: bool,
    json_file_contents: bool,
    **options: Any,
) -> None:
    """Run SCRIPT (a file, or - for stdin) in the sandbox, as `python SCRIPT ARGS...` would.

    Everything after SCRIPT is passed to the script's sys.argv, even words that look like
    options. The exit code is the script's own; limits and errors have fixed codes (see
    README: "Exit codes").
    """
    sandbox = build_sandbox(ctx, progress=echo_progress, **options)
    timeout = sandbox.limits.timeout
    source, filename = _read_script(script, timeout)
    stdin = _script_stdin(script, timeout)
    result = sandbox.run(source, args=args, stdin=stdin, filename=filename)
    report(result.files, output_dir, overwrite, as_json)
    if as_json:
        click.echo(json.dumps(result.to_json(json_file_contents), ensure_ascii=False))
    else:
        sys.stdout.buffer.write(result.stdout_bytes)
        sys.stdout.flush()
        sys.stderr.buffer.write(result.stderr_bytes)
        if result.message:
            sys.stderr.write(f"agentbox: {result.message}\n")
        sys.stderr.flush()
    sys.exit(result.exit_code)
