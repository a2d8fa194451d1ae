"""`agentbox batch` as users run it: the real command in a subprocess, real worker processes."""

import base64
import fcntl
import json
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

from agentbox.exit_codes import ExitCode
from tests.helpers import HANG_GUARD_SECONDS, run_cli, wait_until


def write_tasks(path: Path, tasks: list[Any]) -> Path:
    lines = [task if isinstance(task, str) else json.dumps(task) for task in tasks]
    path.write_text("".join(line + "\n" for line in lines))
    return path


def read_results(path: Path) -> list[dict[str, Any]]:
    data = path.read_bytes()
    assert data == b"" or data.endswith(b"\n"), "the results file ends in a half line"
    return [json.loads(line) for line in data.splitlines()]


def by_id(results: list[dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    ids = [result["id"] for result in results]
    assert len(ids) == len(set(map(json.dumps, ids))), (
        f"an id appears twice: {sorted(map(str, ids))}"
    )
    return {result["id"]: result for result in results}


def batch_process(*args: str, **kwargs: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "agentbox", "batch", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    )


def test_every_kind_of_task_gets_one_result_line(tmp_path: Path) -> None:
    tasks = write_tasks(
        tmp_path / "tasks.jsonl",
        [
            {"id": "ok", "code": "print(6 * 7)"},
            {
                "id": 2,
                "code": "import sys; print(sys.argv[1:], sys.stdin.read())",
                "args": ["a"],
                "stdin": "in",
            },
            {"id": "raises", "code": "raise ValueError('nope')"},
            {"id": "exits", "code": "import sys; sys.exit(3)"},
            {"id": "loops", "code": "while True: pass", "timeout": 3600},
            {"id": "hog", "code": "x = bytearray(200 * 1024 * 1024)", "memory": "128M"},
            "this line is not JSON",
            {"id": "typo", "code": "print(1)", "timout": 1},
            {"id": "files", "code": "print(1)", "files": {"a.txt": "x"}},
            {"id": "tiny", "code": "print(1)", "memory": "1M"},
            "",
            {"code": "print('no id')"},
        ],
    )
    out = tmp_path / "results.jsonl"
    result = run_cli("batch", str(tasks), "-o", str(out), "--timeout", "1", "--workers", "2")
    assert result.returncode == 0, result.stderr
    results = read_results(out)
    assert len(results) == 11
    found = by_id([r for r in results if r["id"] is not None])
    assert found["ok"]["stdout"] == "42\n" and found["ok"]["exit_code"] == 0
    assert found["ok"]["error"] is None and found["ok"]["limit"] is None
    assert found[2]["stdout"] == "['a'] in\n"
    assert found["raises"]["exit_code"] == 1 and "ValueError: nope" in found["raises"]["stderr"]
    assert found["exits"]["exit_code"] == 3
    # The task asked for an hour; the command's --timeout 1 caps it.
    assert found["loops"]["limit"] == "timeout" and found["loops"]["exit_code"] == 124
    assert "1 s" in found["loops"]["message"]
    assert found["hog"]["limit"] == "memory" and found["hog"]["exit_code"] == 137
    assert "unknown field 'timout'" in found["typo"]["error"]
    assert "'files': files must be a list" in found["files"]["error"]
    assert "memory must be 64 MiB..4 GiB" in found["tiny"]["error"]
    assert set(results[0]) >= {
        "id",
        "exit_code",
        "stdout",
        "stderr",
        "limit",
        "duration_ms",
        "skill_calls",
        "error",
    }
    anonymous = sorted((r["line"], r["error"]) for r in results if r["id"] is None)
    assert anonymous[0][0] == 7 and "not valid JSON" in anonymous[0][1]
    assert anonymous[1][0] == 12 and "no 'id'" in anonymous[1][1]
    # Piped stderr: no progress bar, one summary line.
    assert result.stderr.decode() == (
        "agentbox: 11 tasks: 2 passed, 2 failed, 2 hit a limit, 5 errors in "
        + result.stderr.decode().split(" errors in ")[1]
    )
    assert result.stderr.count(b"\n") == 1 and b"\r" not in result.stderr


def test_stdin_to_stdout_for_pipelines() -> None:
    tasks = "".join(json.dumps({"id": n, "code": f"print({n} ** 2)"}) + "\n" for n in range(30))
    result = run_cli("batch", "-", "-o", "-", stdin=tasks.encode())
    assert result.returncode == 0, result.stderr
    found = by_id([json.loads(line) for line in result.stdout.splitlines()])
    assert {n: found[n]["stdout"] for n in range(30)} == {n: f"{n**2}\n" for n in range(30)}


def test_a_duplicate_id_refuses_the_batch_up_front(tmp_path: Path) -> None:
    tasks = write_tasks(
        tmp_path / "tasks.jsonl",
        [
            {"id": "a", "code": "1"},
            {"id": 1, "code": "2"},
            {"id": "1", "code": "3"},
            {"id": "a", "code": "4"},
        ],
    )
    out = tmp_path / "results.jsonl"
    result = run_cli("batch", str(tasks), "-o", str(out))
    assert result.returncode == ExitCode.USAGE
    assert (
        result.stderr
        == f'agentbox: {tasks}: duplicate task id "a" on lines 1 and 4 (ids must be unique)\n'.encode()
    )
    assert not out.exists()


def test_bad_command_lines_are_one_line_and_exit_2(tmp_path: Path) -> None:
    not_results = write_tasks(tmp_path / "tasks.jsonl", [{"id": 1, "code": "1"}, "junk"])
    cases = [
        (["batch", str(tmp_path / "missing.jsonl"), "-o", "-"], "no such file"),
        (["batch", str(tmp_path), "-o", "-"], "it is a directory"),
        (["batch", str(not_results), "-o", str(not_results)], "is not a results file"),
        (["batch", str(not_results), "-o", str(tmp_path)], "it is a directory"),
        (["batch", str(not_results), "-o", "-", "--skills", str(tmp_path / "none.py")], "none.py"),
        (["batch", str(not_results), "-o", "-", "--confirm-skills"], "no terminal"),
    ]
    for args, expected in cases:
        result = run_cli(*args)
        assert result.returncode == ExitCode.USAGE, (args, result.stderr)
        assert result.stderr.count(b"\n") == 1 and expected.encode() in result.stderr, result.stderr
        assert b"Traceback" not in result.stderr


def test_a_rerun_resumes_skipping_ids_already_in_the_results(tmp_path: Path) -> None:
    tasks = write_tasks(
        tmp_path / "tasks.jsonl", [{"id": n, "code": f"print({n})"} for n in range(20)]
    )
    out = tmp_path / "results.jsonl"
    # An earlier run finished ids 0-4 (their stdout marks them) and was killed mid-line.
    earlier = [{"id": n, "exit_code": 0, "stdout": "EARLIER", "error": None} for n in range(5)]
    out.write_text("".join(json.dumps(r) + "\n" for r in earlier) + '{"id": 5, "exit_co')
    result = run_cli("batch", str(tasks), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert b"dropped an unfinished last line" in result.stderr
    assert b"15 tasks:" in result.stderr and b"5 skipped" in result.stderr
    found = by_id(read_results(out))
    assert sorted(found) == list(range(20))
    assert [found[n]["stdout"] for n in range(7)] == ["EARLIER"] * 5 + ["5\n", "6\n"]
    again = run_cli("batch", str(tasks), "-o", str(out))
    assert again.returncode == 0 and b"0 tasks:" in again.stderr and b"20 skipped" in again.stderr
    assert len(read_results(out)) == 20


def test_ctrl_c_leaves_whole_lines_and_a_rerun_completes(tmp_path: Path) -> None:
    count = 400
    tasks = write_tasks(
        tmp_path / "tasks.jsonl",
        [
            {"id": n, "code": f"import time\ntime.sleep(0.02)\nprint('{n}' * 2000)"}
            for n in range(count)
        ],
    )
    out = tmp_path / "results.jsonl"
    process = batch_process(str(tasks), "-o", str(out), "--workers", "2")
    try:
        assert wait_until(lambda: out.exists() and out.stat().st_size > 100_000)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=HANG_GUARD_SECONDS)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert b"interrupted after" in stderr and b"rerun the same command to resume" in stderr
    assert b"Traceback" not in stderr
    first = by_id(read_results(out))
    assert 0 < len(first) < count
    rerun = run_cli("batch", str(tasks), "-o", str(out), timeout=HANG_GUARD_SECONDS)
    assert rerun.returncode == 0, rerun.stderr
    found = by_id(read_results(out))
    assert sorted(found) == list(range(count))
    assert all(found[n]["stdout"] == f"{n}" * 2000 + "\n" for n in range(count))


def _children(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children]


def test_a_killed_worker_loses_no_task_and_runs_none_twice(tmp_path: Path) -> None:
    count = 200
    tasks = write_tasks(
        tmp_path / "tasks.jsonl",
        [{"id": n, "code": f"import time\ntime.sleep(0.03)\nprint({n})"} for n in range(count)],
    )
    out = tmp_path / "results.jsonl"
    process = batch_process(str(tasks), "-o", str(out), "--workers", "2")
    try:
        assert wait_until(lambda: out.exists() and len(out.read_bytes().splitlines()) >= 20)
        workers = _children(process.pid)
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        _, stderr = process.communicate(timeout=HANG_GUARD_SECONDS)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    found = by_id(read_results(out))
    assert sorted(found) == list(range(count))
    assert all(found[n]["stdout"] == f"{n}\n" and found[n]["error"] is None for n in range(count))


def test_a_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    tasks = write_tasks(
        tmp_path / "tasks.jsonl", [{"id": n, "code": "print(1)"} for n in range(50)]
    )
    out = tmp_path / "results.jsonl"
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "agentbox", "batch", str(tasks), "-o", str(out)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=terminal,
    )
    os.close(terminal)
    screen = b""
    deadline = time.monotonic() + HANG_GUARD_SECONDS
    while time.monotonic() < deadline:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the terminal closed: the process ended
            break
        if not chunk:
            break
        screen += chunk
    os.close(controller)
    assert process.wait(HANG_GUARD_SECONDS) == 0
    text = screen.decode()
    assert "50/50" in text and "task/s" in text and "100%" in text, text
    assert "agentbox: 50 tasks: 50 passed" in text
    assert len(read_results(out)) == 50


def test_skills_env_and_mounts_reach_every_worker(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "hello.txt").write_text("from the host")
    skills = Path(__file__).resolve().parent.parent / "fixtures" / "host_skills.py"
    code = (
        "import os\n"
        "print(call_skill('add', {'a': 2, 'b': 3}), os.environ.get('GREETING'),"
        " open('/data/hello.txt').read())\n"
    )
    tasks = write_tasks(tmp_path / "tasks.jsonl", [{"id": n, "code": code} for n in range(6)])
    out = tmp_path / "results.jsonl"
    result = run_cli(
        "batch",
        str(tasks),
        "-o",
        str(out),
        "--workers",
        "2",
        "--skills",
        str(skills),
        "--env",
        "GREETING=hi",
        "--mount",
        str(data),
    )
    assert result.returncode == 0, result.stderr
    found = by_id(read_results(out))
    for n in range(6):
        assert found[n]["stdout"] == "5 hi from the host\n", found[n]
        assert [call["name"] for call in found[n]["skill_calls"]] == ["add"]


def test_files_in_and_out_of_every_task(tmp_path: Path) -> None:
    """--file reaches every task, a task's own `files` only that task; /output comes back in
    the result (base64); the batch's --scratch caps every task."""
    shared = tmp_path / "shared.txt"
    shared.write_text("shared")
    code = (
        "import os\n"
        "names = sorted(os.listdir('/input'))\n"
        "open('/output/names.txt', 'w').write(' '.join(names))\n"
        "print(open('/input/shared.txt').read())\n"
    )
    tasks = write_tasks(
        tmp_path / "tasks.jsonl",
        [
            {"id": "own", "code": code, "files": [{"name": "own.csv", "text": "a,b"}]},
            {"id": "plain", "code": code},
            {"id": "full", "code": "open('/tmp/x', 'wb').write(bytes(2_000_000))"},
        ],
    )
    out = tmp_path / "results.jsonl"
    result = run_cli("batch", str(tasks), "-o", str(out), "--file", str(shared), "--scratch", "1M")
    assert result.returncode == 0, result.stderr
    found = by_id(read_results(out))
    for task_id, names in (("own", b"own.csv shared.txt"), ("plain", b"shared.txt")):
        assert found[task_id]["stdout"] == "shared\n", found[task_id]
        (returned,) = found[task_id]["files"]
        assert returned["name"] == "names.txt" and base64.b64decode(returned["base64"]) == names
        assert found[task_id]["files_dropped"] == 0
    assert found["full"]["exit_code"] == 1 and "No space left" in found["full"]["stderr"]


def test_the_guest_compiles_once_with_a_progress_line(tmp_path: Path) -> None:
    """An empty compile cache: the first worker compiles (one progress line), the others start
    after it and load what it cached."""
    tasks = write_tasks(
        tmp_path / "tasks.jsonl", [{"id": n, "code": "print(1)"} for n in range(10)]
    )
    out = tmp_path / "results.jsonl"
    cache = tmp_path / "cache"
    result = run_cli(
        "batch",
        str(tasks),
        "-o",
        str(out),
        "--workers",
        "2",
        env={"AGENTBOX_CACHE_DIR": str(cache)},
        timeout=HANG_GUARD_SECONDS,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stderr.decode().splitlines()
    assert lines[0] == "agentbox: compiling the sandbox for this machine (first run only)..."
    assert lines[1].startswith("agentbox: sandbox compiled in ")
    assert lines[2].startswith("agentbox: 10 tasks: 10 passed") and len(lines) == 3
    assert list(cache.glob("*.cwasm"))
