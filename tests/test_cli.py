"""`agentbox` as users run it: the real entry point in a subprocess, and Click's runner."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from agentbox import __version__
from agentbox.cli import cli
from agentbox.exit_codes import ExitCode
from tests.helpers import run_cli


def test_run_script_from_stdin() -> None:
    result = run_cli("run", "-", stdin=b"import sys\nprint('hi', sys.argv)")
    assert (result.returncode, result.stdout, result.stderr) == (0, b"hi ['-']\n", b"")


def test_run_file_passes_every_later_word_to_argv(tmp_path: Path) -> None:
    script = tmp_path / "tool.py"
    script.write_text("import sys\nprint(sys.argv[1:])\nsys.exit(5)")
    result = run_cli("run", str(script), "--verbose", "-x", "--", "--json")
    assert result.stdout == b"['--verbose', '-x', '--', '--json']\n"
    assert result.returncode == 5


def test_file_script_reads_piped_stdin(tmp_path: Path) -> None:
    script = tmp_path / "upper.py"
    script.write_text("import sys\nprint(sys.stdin.read().upper(), end='')")
    assert run_cli("run", str(script), stdin=b"abc\n").stdout == b"ABC\n"


def test_exit_code_and_traceback_of_a_failing_script(tmp_path: Path) -> None:
    script = tmp_path / "fail.py"
    script.write_text("print('partial')\nraise KeyError('k')\n")
    result = run_cli("run", str(script))
    assert result.returncode == ExitCode.SCRIPT_ERROR
    assert result.stdout == b"partial\n"
    assert f'File "{script}", line 2'.encode() in result.stderr
    assert result.stderr.endswith(b"KeyError: 'k'\n")


def test_json_output() -> None:
    result = run_cli("run", "--json", "-", stdin=b"print(42)\nimport sys; sys.exit(3)")
    assert result.returncode == 3
    payload = json.loads(result.stdout)
    assert payload["stdout"] == "42\n"
    assert payload["exit_code"] == 3
    assert payload["limit"] is None and payload["truncated"] is False
    assert payload["duration_ms"] > 0
    assert set(payload) >= {"stdout", "stderr", "exit_code", "duration_ms", "skill_calls"}


def test_missing_file_is_one_line_and_usage_code() -> None:
    result = run_cli("run", "/no/such/script.py")
    assert result.returncode == ExitCode.USAGE
    assert result.stderr == b"agentbox: cannot run '/no/such/script.py': no such file\n"


def test_directory_is_rejected(tmp_path: Path) -> None:
    result = run_cli("run", str(tmp_path))
    assert result.returncode == ExitCode.USAGE
    assert (
        result.stderr.decode().startswith("agentbox: cannot run") and b"directory" in result.stderr
    )


def test_bad_option_value_is_a_usage_error() -> None:
    result = run_cli("run", "--memory", "lots", "-")
    assert result.returncode == ExitCode.USAGE
    assert b"Traceback" not in result.stderr and b"--memory" in result.stderr


@pytest.mark.parametrize(
    ("command", "option", "value", "expected"),
    [
        ("run", "--memory", "1K", "64 MiB..4 GiB"),
        ("run", "--memory", "8G", "64 MiB..4 GiB"),
        ("run", "--memory", "lots", "invalid size"),
        ("run", "--timeout", "0", "more than 0 and at most 604800 seconds"),
        ("run", "--timeout", "1e9", "more than 0 and at most 604800 seconds"),
        ("run", "--timeout", "soon", "not a valid float"),
        ("run", "--fuel", "0", "1 or more"),
        ("run", "--max-output", "-1", "invalid size"),
        ("mcp", "--memory", "1K", "64 MiB..4 GiB"),
        ("mcp", "--pool-size", "-1", "x>=0"),
        ("mcp", "--session-idle", "0", "x>0"),
        ("mcp", "--max-sessions", "0", "x>=1"),
        ("serve", "--timeout", "-5", "more than 0"),
        ("serve", "--port", "70000", "0<=x<=65535"),
    ],
)
def test_option_errors_are_one_line_with_the_valid_range(
    command: str, option: str, value: str, expected: str
) -> None:
    """Every limit option: one `agentbox:` line naming the option and what it accepts, exit 2
    (not Click's three-line usage block)."""
    args = [command, option, value] + (["-"] if command == "run" else [])
    result = run_cli(*args)
    assert result.returncode == ExitCode.USAGE
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("agentbox: ") and option in lines[0] and expected in lines[0]


def test_mount_errors_are_one_line(tmp_path: Path) -> None:
    missing = run_cli("run", "--mount", str(tmp_path / "nope"), "-")
    assert missing.returncode == ExitCode.USAGE
    assert (
        missing.stderr.decode() == f"agentbox: cannot mount {tmp_path / 'nope'}: no such folder\n"
    )
    a_file = tmp_path / "file"
    a_file.write_text("")
    not_folder = run_cli("run", "--mount", str(a_file), "-")
    assert not_folder.stderr.decode() == f"agentbox: cannot mount {a_file}: not a directory\n"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for second in ("/data", "/data/", "/data/."):
        same = run_cli(
            "run", "--mount", str(tmp_path / "a"), "--mount", f"{tmp_path / 'b'}:{second}", "-"
        )
        assert same.returncode == ExitCode.USAGE
        lines = same.stderr.decode().splitlines()
        assert len(lines) == 1 and "two mounts onto the guest path /data" in lines[0], lines
    # positive control: two guest paths are fine, and each shows its own folder
    (tmp_path / "a" / "x.txt").write_text("from a")
    (tmp_path / "b" / "y.txt").write_text("from b")
    both = run_cli(
        "run",
        "--mount",
        str(tmp_path / "a"),
        "--mount",
        f"{tmp_path / 'b'}:/other",
        "-",
        stdin=b"print(open('/data/x.txt').read(), open('/other/y.txt').read())",
    )
    assert both.returncode == 0, both.stderr
    assert both.stdout == b"from a from b\n"


def test_version_and_help() -> None:
    assert run_cli("--version").stdout.decode().strip().endswith(__version__)
    help_text = run_cli("run", "--help").stdout.decode()
    for option in ("--timeout", "--memory", "--fuel", "--max-output", "--mount", "--env", "--json"):
        assert option in help_text


def test_info_reports_versions_guest_and_cache() -> None:
    result = run_cli("info", "--json")
    assert result.returncode == 0, result.stderr
    details = json.loads(result.stdout)
    assert details["agentbox"] == __version__
    assert details["guest_python"].startswith("3.14")
    assert len(details["guest_sha256"]) == 64
    assert details["wasmtime"].startswith("50.")
    assert details["cache_state"] == "compiled"


def test_info_with_an_empty_cache_reports_it_without_compiling(tmp_path: Path) -> None:
    """`info` never compiles for tens of seconds to report the cache as empty afterwards."""
    result = run_cli("info", "--json", env={"AGENTBOX_CACHE_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    details = json.loads(result.stdout)
    assert details["cache_state"].startswith("empty")
    assert "agentbox warmup" in details["guest_python"]
    assert list(tmp_path.rglob("*.cwasm")) == []


def test_warmup_prepares_the_cache(tmp_path: Path) -> None:
    env = {"AGENTBOX_CACHE_DIR": str(tmp_path)}
    result = run_cli("warmup", env=env)
    assert result.returncode == 0 and b"sandbox ready" in result.stderr
    assert list(tmp_path.glob("*.cwasm"))
    assert run_cli("run", "-", stdin=b"print(1)", env=env).stderr == b""


def test_click_runner_in_process() -> None:
    result = CliRunner().invoke(cli, ["run", "-"], input=b"print(6 * 7)")
    assert result.exit_code == 0, result.output
    assert result.stdout == "42\n"


def test_env_option(monkeypatch) -> None:
    monkeypatch.setenv("AGENTBOX_FROM_HOST", "yes")
    code = b"import os; print(sorted(os.environ.items()))"
    result = run_cli("run", "--env", "A=1", "--env", "AGENTBOX_FROM_HOST", "-", stdin=code)
    assert result.stdout == b"[('A', '1'), ('AGENTBOX_FROM_HOST', 'yes')]\n"
    missing = run_cli("run", "--env", "AGENTBOX_NOT_SET_ANYWHERE", "-", stdin=code)
    assert missing.returncode == ExitCode.USAGE


def test_run_path_imports_nothing_it_does_not_need(tmp_path: Path) -> None:
    """Start-up is a feature: these cost `agentbox run` 1 s (mcp), ~20 ms (asyncio), ~4 ms
    (logging) and ~3 ms (tomllib) of every start, and a plain run needs none of them."""
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "agentbox", "run", "-"],
        input=b"print(1)",
        capture_output=True,
        cwd=tmp_path,
    )
    assert completed.stdout == b"1\n", completed.stderr[-2000:]
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in completed.stderr.decode().splitlines()
        if line.startswith("import time:")
    }
    assert "agentbox.sandbox" in imported  # the check sees the run path's imports
    unwanted = {"mcp", "asyncio", "logging", "tomllib", "pydantic", "starlette"}
    assert imported.isdisjoint(unwanted), sorted(imported & unwanted)
