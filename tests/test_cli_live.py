"""`agentbox run` started as harnesses start `python` (issue 13): Popen with stdin left open as
a pipe (Node's `spawn` default), a terminal (a pty), and signals sent mid-run. Every wait is a
line the test reads, never a sleep; hangs are bounded by the process guard."""

import json
import os
import pty
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from agentbox.exit_codes import ExitCode
from tests.helpers import PROCESS_HANG_GUARD_SECONDS

AGENTBOX = [sys.executable, "-m", "agentbox"]


@contextmanager
def spawned(*args: str) -> Iterator[subprocess.Popen[bytes]]:
    """`agentbox ARGS` with stdin, stdout and stderr pipes, stdin never closed by the caller."""
    process = subprocess.Popen(
        [*AGENTBOX, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(PROCESS_HANG_GUARD_SECONDS)
        for stream in (process.stdin, process.stdout, process.stderr):
            assert stream is not None
            stream.close()


def finish(process: subprocess.Popen[bytes]) -> tuple[int, bytes, bytes]:
    """Exit code and the rest of stdout and stderr, without closing stdin first (reading the
    two pipes on threads, as `communicate` does, but leaving stdin open)."""
    stdout, stderr = process.stdout, process.stderr
    assert stdout is not None and stderr is not None
    errors: list[bytes] = []
    reader = threading.Thread(target=lambda: errors.append(stderr.read()), daemon=True)
    reader.start()
    out = stdout.read()
    reader.join(PROCESS_HANG_GUARD_SECONDS)
    return process.wait(PROCESS_HANG_GUARD_SECONDS), out, errors[0]


def script(tmp_path: Path, text: str) -> str:
    path = tmp_path / "script.py"
    path.write_text(text)
    return str(path)


ENGINES = ["wasm", "restricted", "asteval"]


@pytest.mark.parametrize("engine", ENGINES)
def test_open_stdin_pipe_does_not_delay_a_script_that_never_reads_it(
    tmp_path: Path, engine: str
) -> None:
    # Before: the CLI read stdin to its end first, so this waited for the whole --timeout and
    # exited 124 (the fallback engines: forever). A 10-minute timeout makes the old behaviour a
    # hang the guard catches.
    command = ("run", "--engine", engine, "--timeout", "600", script(tmp_path, "print('done')"))
    with spawned(*command) as process:
        code, out, err = finish(process)
    assert (code, out, err) == (0, b"done\n", b"")


# asteval has `sys` without an import, and no `input()`.
_IMPORT_SYS = {"asteval": ""}
_INPUT = {"asteval": "sys.stdin.readline().rstrip()"}


@pytest.mark.parametrize("engine", ENGINES)
def test_script_reads_stdin_on_demand_line_by_line(tmp_path: Path, engine: str) -> None:
    """Each line the caller writes is read by the script as it arrives, while stdin stays
    open: the script answers a line before the next one is sent."""
    source = (
        _IMPORT_SYS.get(engine, "import sys\n") + "print('name?', flush=True)\n"
        f"print('hello', {_INPUT.get(engine, 'input()')}, flush=True)\n"
        "print(sys.stdin.readline().upper().rstrip(), flush=True)\n"
        "print(sys.stdin.buffer.read(3), flush=True)\n"
        "print([line for line in sys.stdin])\n"
    )
    with spawned("run", "--engine", engine, script(tmp_path, source)) as process:
        assert process.stdin is not None and process.stdout is not None
        assert process.stdout.readline() == b"name?\n"
        process.stdin.write(b"bob\n")
        process.stdin.flush()
        assert process.stdout.readline() == b"hello bob\n"
        process.stdin.write(b"second\n")
        process.stdin.flush()
        assert process.stdout.readline() == b"SECOND\n"
        process.stdin.write(b"abc")
        process.stdin.flush()
        assert process.stdout.readline() == b"b'abc'\n"
        process.stdin.write(b"x\ny\n")
        process.stdin.close()
        code, out, err = finish(process)
    assert (code, out, err) == (0, b"['x\\n', 'y\\n']\n", b"")


@pytest.mark.parametrize("engine", ENGINES)
def test_a_read_blocked_on_a_silent_pipe_ends_at_the_timeout(tmp_path: Path, engine: str) -> None:
    text = f"print('waiting', flush=True)\n{_INPUT.get(engine, 'input()')}"
    source = script(tmp_path, text)
    with spawned("run", "--engine", engine, "--timeout", "2", source) as process:
        code, out, err = finish(process)
    assert code == ExitCode.TIMEOUT
    assert out == b"waiting\n"
    assert err == b"agentbox: timed out after 2 s (--timeout)\n"


def test_stdin_larger_than_one_host_read_arrives_whole(tmp_path: Path) -> None:
    """The host hands over at most 64 KiB per read; a script reading to the end gets it all."""
    data = bytes(range(256)) * 4096  # 1 MiB, every byte value
    source = "import sys, hashlib\nprint(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())"
    result = subprocess.run(
        [*AGENTBOX, "run", script(tmp_path, source)],
        input=data,
        capture_output=True,
        timeout=PROCESS_HANG_GUARD_SECONDS,
    )
    import hashlib

    assert result.stdout.decode().strip() == hashlib.sha256(data).hexdigest()


def test_script_from_stdin_gets_argv0_dash_and_tracebacks_say_stdin() -> None:
    result = subprocess.run(
        [*AGENTBOX, "run", "-", "a"],
        input=b"import sys\nprint(sys.argv)\n1/0\n",
        capture_output=True,
        timeout=PROCESS_HANG_GUARD_SECONDS,
    )
    assert result.stdout == b"['-', 'a']\n"
    assert b'File "<stdin>", line 3' in result.stderr
    assert result.returncode == ExitCode.SCRIPT_ERROR


def test_output_is_written_while_the_script_runs(tmp_path: Path) -> None:
    """Each line reaches the caller's pipe before the script goes on: it waits for the caller
    to answer the line it printed (no flush in the script)."""
    source = (
        "import sys\nprint('out 1')\nprint('err 1', file=sys.stderr)\ninput()\nprint('out 2')\n"
    )
    with spawned("run", script(tmp_path, source)) as process:
        assert process.stdin and process.stdout and process.stderr
        assert process.stdout.readline() == b"out 1\n"
        assert process.stderr.readline() == b"err 1\n"
        process.stdin.write(b"go\n")
        process.stdin.flush()
        code, out, err = finish(process)
    assert (code, out, err) == (0, b"out 2\n", b"")


def test_output_cap_still_holds_for_live_output(tmp_path: Path) -> None:
    source = "import sys\nsys.stdout.write('x' * 5000)\n"
    result = subprocess.run(
        [*AGENTBOX, "run", "--max-output", "1000", script(tmp_path, source)],
        capture_output=True,
        timeout=PROCESS_HANG_GUARD_SECONDS,
    )
    assert result.stdout == b"x" * 1000
    assert b"stdout truncated: 4000 bytes beyond the 1000-byte limit" in result.stderr


def test_output_before_a_crash_is_kept(tmp_path: Path) -> None:
    source = "print('before', flush=True)\nimport sys\nsys.setrecursionlimit(10**9)\n" + (
        "def f(): f()\nf()\n"
    )
    result = subprocess.run(
        [*AGENTBOX, "run", script(tmp_path, source)],
        capture_output=True,
        timeout=PROCESS_HANG_GUARD_SECONDS,
    )
    assert result.stdout.startswith(b"before\n")
    assert result.returncode in (ExitCode.CRASH, ExitCode.SCRIPT_ERROR)


PRINT_THEN_SLEEP = (
    "import sys, time\n"
    "print('line 1')\n"
    "print('warning', file=sys.stderr)\n"
    "print('line 2')\n"
    "time.sleep(600)\n"
    "print('never')\n"
)


@pytest.mark.parametrize(
    ("signum", "code"),
    [(signal.SIGINT, ExitCode.INTERRUPTED), (signal.SIGTERM, ExitCode.TERMINATED)],
)
def test_signal_mid_run_keeps_what_was_printed(
    tmp_path: Path, signum: signal.Signals, code: ExitCode
) -> None:
    with spawned("run", script(tmp_path, PRINT_THEN_SLEEP)) as process:
        assert process.stdout and process.stderr
        assert process.stdout.readline() == b"line 1\n"
        assert process.stderr.readline() == b"warning\n"
        assert process.stdout.readline() == b"line 2\n"
        process.send_signal(signum)
        exit_code, out, err = finish(process)
    assert exit_code == code
    assert out == b""
    assert err == f"agentbox: interrupted by {signum.name}\n".encode()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_mid_run_with_json_reports_the_output_so_far(
    tmp_path: Path, signum: signal.Signals
) -> None:
    # The script says it has printed both lines on stderr... which --json collects: so it
    # announces itself through a file the test waits for instead.
    marker = tmp_path / "printed"
    source = (
        "import sys, time\nprint('line 1')\nprint('warning', file=sys.stderr)\n"
        "open('/work/printed', 'w').close()\ntime.sleep(600)\n"
    )
    with spawned(
        "run", "--json", "--mount", f"{tmp_path}:/work:rw", script(tmp_path, source)
    ) as process:
        for _ in range(int(PROCESS_HANG_GUARD_SECONDS * 20)):
            if marker.exists() or process.poll() is not None:
                break
            select.select([], [], [], 0.05)
        assert marker.exists()
        process.send_signal(signum)
        exit_code, out, err = finish(process)
    payload = json.loads(out)
    assert exit_code == payload["exit_code"] == 128 + signum
    assert payload["stdout"] == "line 1\n"
    assert payload["stderr"] == "warning\n"
    assert payload["message"] == f"interrupted by {signum.name}"
    assert err == b""


def test_terminal_sees_each_line_before_the_script_ends(tmp_path: Path) -> None:
    """On a terminal (a pty for stdin, stdout and stderr), a printed line shows at once: the
    script waits for the line typed in answer to the one it printed."""
    source = "print('ready')\nanswer = input()\nprint('got', answer)\n"
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [*AGENTBOX, "run", script(tmp_path, source)],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        start_new_session=True,
    )
    os.close(terminal)
    seen = b""
    try:
        seen = _read_until(controller, b"ready\r\n")
        os.write(controller, b"yes\n")
        seen = _read_until(controller, b"got yes\r\n")
        assert process.wait(PROCESS_HANG_GUARD_SECONDS) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(controller)
    assert seen.endswith(b"got yes\r\n")


def _read_until(descriptor: int, wanted: bytes) -> bytes:
    seen = b""
    while wanted not in seen:
        ready, _, _ = select.select([descriptor], [], [], PROCESS_HANG_GUARD_SECONDS)
        assert ready, f"nothing on the terminal; so far {seen!r}"
        try:
            chunk = os.read(descriptor, 4096)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    assert wanted in seen, seen
    return seen


def test_sigint_at_a_terminal_exits_130_after_the_lines(tmp_path: Path) -> None:
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [*AGENTBOX, "run", script(tmp_path, PRINT_THEN_SLEEP)],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        start_new_session=True,
    )
    os.close(terminal)
    try:
        seen = _read_until(controller, b"line 2\r\n")
        process.send_signal(signal.SIGINT)
        seen += _read_until(controller, b"interrupted by SIGINT")
        assert process.wait(PROCESS_HANG_GUARD_SECONDS) == ExitCode.INTERRUPTED
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(controller)
    assert b"line 1\r\nwarning\r\nline 2\r\n" in seen


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "--json", "/no/such/file.py"], "no such file"),
        (["run", "--json", "--timeout", "soon", "x.py"], "'--timeout'"),
        (
            ["run", "--timeout", "5", "--json", "--memory", "1K", "x.py"],
            "--memory': must be 64 MiB..4 GiB",
        ),
        (["run", "--json", "--no-such-option", "x.py"], "--no-such-option"),
        (["run", "--json"], "SCRIPT"),
    ],
)
def test_json_usage_errors_are_one_json_object(args: list[str], needle: str) -> None:
    result = subprocess.run(
        [*AGENTBOX, *args], capture_output=True, timeout=PROCESS_HANG_GUARD_SECONDS
    )
    assert result.returncode == ExitCode.USAGE
    payload = json.loads(result.stdout)
    assert payload["exit_code"] == ExitCode.USAGE and payload["error"] == "usage"
    assert needle in payload["message"]
    assert result.stderr == b""


def test_json_after_script_is_the_scripts_argument_not_an_option(tmp_path: Path) -> None:
    """Positive control for the JSON errors: `--json` after SCRIPT belongs to the script, so a
    bad option before it is still Click's plain one-line error."""
    result = subprocess.run(
        [*AGENTBOX, "run", "--timeout", "soon", "x.py", "--json"],
        capture_output=True,
        timeout=PROCESS_HANG_GUARD_SECONDS,
    )
    assert result.returncode == ExitCode.USAGE
    assert result.stdout == b""
    assert b"Invalid value for '--timeout'" in result.stderr


def test_a_flushed_partial_line_reaches_the_caller(tmp_path: Path) -> None:
    """`input(prompt)` flushes a prompt that has no newline: the caller sees it before it
    answers (as with `python`), and so does any explicit flush."""
    source = (
        "import sys\nsys.stdout.write('a'); sys.stdout.flush()\nname = input('name? ')\nprint(name)"
    )
    with spawned("run", script(tmp_path, source)) as process:
        assert process.stdin is not None and process.stdout is not None
        assert process.stdout.read(len(b"aname? ")) == b"aname? "
        process.stdin.write(b"zoe\n")
        process.stdin.flush()
        code, out, err = finish(process)
    assert (code, out, err) == (0, b"zoe\n", b"")
