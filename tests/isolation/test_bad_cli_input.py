"""Bad input through the real CLI: each case gets CPython's own behaviour, or exactly one
`agentbox: ...` line on stderr with the documented exit code, and never a traceback from
agentbox's own modules."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from agentbox import ExitCode
from tests.helpers import PROCESS_HANG_GUARD_SECONDS, run_cli

HOST_FRAMES = re.compile(r'File "[^"]*(/agentbox/|agentbox_guest|/site-packages/)')


def assert_clean(completed: subprocess.CompletedProcess[bytes]) -> str:
    stderr = completed.stderr.decode("utf-8", "replace")
    assert not HOST_FRAMES.search(stderr), stderr[-2000:]
    assert "internal error" not in stderr, stderr
    assert "panicked" not in stderr, stderr
    return stderr


def assert_one_usage_line(completed: subprocess.CompletedProcess[bytes]) -> str:
    stderr = assert_clean(completed)
    assert completed.returncode == ExitCode.USAGE, stderr
    assert completed.stdout == b""
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("agentbox: "), lines
    return lines[0]


def write(tmp_path: Path, data: bytes, name: str = "script.py") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize("data", [b"", b"   \n\t\n\n", b"\n" * 1000, b"# only a comment"])
def test_empty_and_blank_scripts_do_nothing(tmp_path: Path, data: bytes) -> None:
    for source in ("-", write(tmp_path, data)):
        completed = run_cli("run", source, stdin=data if source == "-" else b"")
        assert_clean(completed)
        assert (completed.returncode, completed.stdout, completed.stderr) == (ExitCode.OK, b"", b"")


def test_non_utf8_script_is_cpythons_syntax_error(tmp_path: Path) -> None:
    completed = run_cli("run", write(tmp_path, b"print('\xff\xfe')\n", "bad.py"))
    stderr = assert_clean(completed)
    assert completed.returncode == ExitCode.SCRIPT_ERROR
    assert "SyntaxError: Non-UTF-8 code starting with '\\xff'" in stderr


def test_declared_latin1_script_runs(tmp_path: Path) -> None:
    data = b"# -*- coding: latin-1 -*-\nprint('caf\xe9')\n"
    completed = run_cli("run", write(tmp_path, data))
    assert_clean(completed)
    assert (completed.returncode, completed.stdout) == (ExitCode.OK, "café\n".encode())


def test_null_bytes_are_cpythons_syntax_error(tmp_path: Path) -> None:
    completed = run_cli("run", write(tmp_path, b"print(1)\0\nprint(2)\n"))
    stderr = assert_clean(completed)
    assert completed.returncode == ExitCode.SCRIPT_ERROR
    assert completed.stdout == b""
    assert stderr.rstrip().endswith("SyntaxError: source code cannot contain null bytes")


def test_binary_garbage_is_a_syntax_error(tmp_path: Path) -> None:
    completed = run_cli("run", "-", stdin=os.urandom(4096).replace(b"\0", b"\1") + b"\xff")
    stderr = assert_clean(completed)
    assert completed.returncode == ExitCode.SCRIPT_ERROR
    assert "SyntaxError" in stderr


def test_bom_is_skipped(tmp_path: Path) -> None:
    completed = run_cli("run", write(tmp_path, b"\xef\xbb\xbfprint('bom ok')\n"))
    assert_clean(completed)
    assert (completed.returncode, completed.stdout) == (ExitCode.OK, b"bom ok\n")


def test_crlf_line_endings_run(tmp_path: Path) -> None:
    data = b"x = 1\r\nif x:\r\n    print('crlf', x)\r\n"
    for source in ("-", write(tmp_path, data)):
        completed = run_cli("run", source, stdin=data if source == "-" else b"")
        assert_clean(completed)
        assert (completed.returncode, completed.stdout) == (ExitCode.OK, b"crlf 1\n")


def test_syntax_error_has_no_agentbox_frames(tmp_path: Path) -> None:
    completed = run_cli("run", write(tmp_path, b"def f(:\n"))
    stderr = assert_clean(completed)
    assert completed.returncode == ExitCode.SCRIPT_ERROR
    assert "Traceback" not in stderr
    assert stderr.rstrip().endswith("SyntaxError: invalid syntax")


def test_huge_script_runs_or_fails_cleanly(tmp_path: Path) -> None:
    """A 50 MB script (one comment line) with default options: it does nothing, so it must run,
    or be refused with one `agentbox:` line. Running out of the default 30 s timeout would mean
    agentbox itself spends the script's time moving its bytes."""
    data = b"# " + b"x" * (50 * 1024 * 1024) + b"\nprint('big ok')\n"
    completed = run_cli("run", write(tmp_path, data, "big.py"), timeout=PROCESS_HANG_GUARD_SECONDS)
    assert_clean(completed)
    if completed.returncode == ExitCode.OK:
        assert completed.stdout == b"big ok\n"
    else:
        assert_one_usage_line(completed)


def test_missing_file(tmp_path: Path) -> None:
    line = assert_one_usage_line(run_cli("run", str(tmp_path / "nope.py")))
    assert "no such file" in line


def test_directory(tmp_path: Path) -> None:
    line = assert_one_usage_line(run_cli("run", str(tmp_path)))
    assert "directory" in line


def test_unreadable_file(tmp_path: Path) -> None:
    path = Path(write(tmp_path, b"print('read anyway')\n"))
    path.chmod(0)
    try:
        completed = run_cli("run", str(path))
    finally:
        path.chmod(0o600)
    if os.geteuid() == 0:  # root reads mode-000 files: then it is CPython's behaviour too
        assert_clean(completed)
        assert (completed.returncode, completed.stdout) == (ExitCode.OK, b"read anyway\n")
    else:
        assert "Permission denied" in assert_one_usage_line(completed)


def test_file_that_fails_to_read_even_for_root() -> None:
    """`/proc/self/mem` opens but its first read fails with EIO, whoever we are."""
    line = assert_one_usage_line(run_cli("run", "/proc/self/mem"))
    assert "cannot read" in line


def _run_with_closed_stdin(*args: str) -> subprocess.CompletedProcess[bytes]:
    command = " ".join(f"'{arg}'" for arg in (sys.executable, "-m", "agentbox", *args))
    return subprocess.run(
        ["sh", "-c", f"exec {command} <&-"],
        capture_output=True,
        timeout=PROCESS_HANG_GUARD_SECONDS,
        check=False,
    )


def test_closed_stdin_for_a_piped_script() -> None:
    line = assert_one_usage_line(_run_with_closed_stdin("run", "-"))
    assert "stdin" in line


def test_closed_stdin_for_a_script_file(tmp_path: Path) -> None:
    path = write(tmp_path, b"import sys\nprint(repr(sys.stdin.read()))\n")
    completed = _run_with_closed_stdin("run", path)
    assert_clean(completed)
    assert (completed.returncode, completed.stdout) == (ExitCode.OK, b"''\n")


def test_devnull_stdin_for_a_piped_script_is_an_empty_script() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "agentbox", "run", "-"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=PROCESS_HANG_GUARD_SECONDS,
    )
    assert_clean(completed)
    assert (completed.returncode, completed.stdout, completed.stderr) == (ExitCode.OK, b"", b"")


@pytest.mark.parametrize(
    "options",
    [
        ["--timeout", "0"],
        ["--timeout", "-1"],
        ["--timeout", "abc"],
        ["--timeout", "nan"],
        ["--timeout", "inf"],
        ["--memory", "lots"],
        ["--memory", "1K"],
        ["--max-output", "-5"],
        ["--fuel", "0"],
        ["--fuel", "x"],
        ["--mount", "/definitely/not/here"],
        ["--mount", "/tmp:relative"],
        ["--mount", "/tmp:/data/../etc"],
        ["--mount", "/tmp:/"],
        ["--mount", "/tmp:/a:/b:rw"],
        ["--env", "=value"],
        ["--no-such-option"],
    ],
    ids=" ".join,
)
def test_bad_options_are_one_usage_line(options: list[str]) -> None:
    completed = run_cli("run", *options, "-", stdin=b"print('must not run')")
    stderr = assert_clean(completed)
    assert completed.returncode == ExitCode.USAGE, stderr
    assert b"must not run" not in completed.stdout
    assert stderr.count("Traceback") == 0


def test_huge_timeout_is_not_an_internal_error() -> None:
    completed = run_cli("run", "--timeout", "1e300", "-", stdin=b"print(1)")
    assert_clean(completed)
    if completed.returncode != ExitCode.OK:
        assert_one_usage_line(completed)
