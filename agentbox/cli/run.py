"""`agentbox run`: run one script in a fresh sandbox; the process exits with the script's code.

Behaves like `python SCRIPT` for whoever started it: output is written as the script produces
it, the script reads the host's stdin only if and when it asks (a caller that leaves stdin open
gets its answer at once), and Ctrl-C / SIGTERM exit 130 / 143 after what was printed.
"""

import functools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from agentbox.cli import live
from agentbox.cli.options import build_sandbox, echo_progress, sandbox_options
from agentbox.cli.output_dir import output_dir_options, report
from agentbox.engines.base import DEFAULT_FILENAME, StdinReader, read_all_within
from agentbox.errors import AgentboxError, UsageError
from agentbox.exit_codes import ExitCode
from agentbox.result import RunResult


class InputTimeoutError(AgentboxError):
    """The host's stdin stayed open past the deadline: the run never started."""

    exit_code = ExitCode.TIMEOUT


def _read_stdin(timeout: float, what: str) -> bytes:
    """All of the host's stdin, within the run's `--timeout` (a pipe may never be closed)."""
    try:
        # Raw reads on the descriptor: a thread left blocked in BufferedReader.read() would
        # hold its lock and abort the interpreter's shutdown.
        read: StdinReader = functools.partial(os.read, sys.stdin.fileno())
    except (OSError, ValueError):  # no descriptor: stdin was replaced (embedded, tests)
        read = sys.stdin.buffer.read
    data, ended, error = read_all_within(read, timeout)
    if not ended:
        raise InputTimeoutError(
            f"timed out after {timeout:g} s waiting for stdin to close ({what}; --timeout)"
        )
    if error is not None:
        raise UsageError(f"cannot read {what} from stdin: {error.strerror or error}")
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


def _script_stdin(script: str) -> "bytes | live.HostStdin":
    """What the script's `sys.stdin` reads: the host's stdin, on demand (the fallback engines
    on Windows read it whole first). Empty after `-` took the script."""
    if script == "-":
        return b""
    return live.host_stdin() or b""


def _echo_json(payload: dict[str, Any]) -> None:
    click.echo(json.dumps(payload, ensure_ascii=False))


def _error_json(code: int, message: str) -> dict[str, Any]:
    """`--json`'s object for a run that never started: its exit code, the kind and the line."""
    kind = ExitCode(code).name.lower() if code in set(ExitCode) else "error"
    return {"exit_code": code, "error": kind, "message": message}


class RunCommand(click.Command):
    """`run`, whose command-line errors are a JSON object (on stdout) when `--json` is given,
    like everything else `run --json` reports."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        wants_json = self._json_requested(args)
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.ClickException as error:
            if not wants_json:
                raise
            _echo_json(_error_json(ExitCode.USAGE, error.format_message()))
            sys.exit(ExitCode.USAGE)

    def _json_requested(self, args: list[str]) -> bool:
        """Whether `--json` is among the options before SCRIPT (parsed as Click would: the
        value of an option that takes one is skipped, SCRIPT ends the options)."""
        takes_value = {
            name
            for param in self.params
            if isinstance(param, click.Option) and not param.is_flag and not param.count
            for name in param.opts
        }
        words = iter(args)
        for word in words:
            if word == "--json":
                return True
            if word == "--" or word == "-" or not word.startswith("-"):
                return False
            if word in takes_value:
                next(words, None)
        return False


@click.command(
    cls=RunCommand,
    context_settings={"allow_interspersed_args": False},
)
@click.argument("script", metavar="SCRIPT|-")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@sandbox_options
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON object instead of the output (command-line errors too).",
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
    options. Output is written as the script prints it; the script reads stdin only when it
    asks for it. The exit code is the script's own; limits, errors, Ctrl-C (130) and SIGTERM
    (143) have fixed codes (see README: "Exit codes").
    """
    writer = live.LiveWriter(collect=as_json)
    started = time.perf_counter()
    with live.interrupts_raised():
        try:
            result = _run(ctx, script, args, writer, options)
        except AgentboxError as error:
            if not as_json:
                raise
            _echo_json(_error_json(error.exit_code, error.message))
            sys.exit(error.exit_code)
        except live.Interrupted as interruption:
            writer.stop()
            result = RunResult(
                stdout_bytes=writer.text("stdout"),
                stderr_bytes=writer.text("stderr"),
                exit_code=interruption.exit_code,
                duration_ms=(time.perf_counter() - started) * 1000,
                message=f"interrupted by {interruption.name}",
            )
        report(result.files, output_dir, overwrite, as_json)
        _report(result, as_json, json_file_contents)
    sys.exit(result.exit_code)


def _run(
    ctx: click.Context,
    script: str,
    args: tuple[str, ...],
    writer: live.LiveWriter,
    options: dict[str, Any],
) -> RunResult:
    sandbox = build_sandbox(ctx, progress=echo_progress, **options)
    timeout = sandbox.limits.timeout
    source, filename = _read_script(script, timeout)
    stdin = _script_stdin(script)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # what agentbox said so far comes before the script's output
    return sandbox.run(
        source,
        args=args,
        stdin=stdin,
        filename=filename,
        argv0="-" if script == "-" else None,
        on_output=writer,
    )


def _report(result: RunResult, as_json: bool, json_file_contents: bool) -> None:
    """The end of a run: the JSON object, or (the output having been written live) the line
    that says why the run ended, if a limit or a signal ended it."""
    if as_json:
        _echo_json(result.to_json(json_file_contents))
        return
    if result.message:
        sys.stderr.write(f"agentbox: {result.message}\n")
        sys.stderr.flush()
