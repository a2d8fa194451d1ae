"""Command skills are host processes the script can start: nothing they start outlives the
run's deadline (the whole process group is killed), and they never see agentbox's own
environment. Real subprocess skills, the real CLI."""

import json
import os
import sys
import threading
from pathlib import Path

import pytest

from agentbox import ExitCode, RunResult, Sandbox
from agentbox.skills.command import PASSED_VARIABLES, command_skill
from tests.helpers import HANG_GUARD_SECONDS, returns, run_cli, wait_until

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def running(pid: int) -> bool:
    """The process exists and is not a zombie waiting for a parent that never reaps it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.skipif(sys.platform != "linux", reason="reads process states from /proc")
@pytest.mark.parametrize("engine", ["wasm", "restricted"])
def test_a_command_skill_and_its_children_end_at_the_run_deadline(
    tmp_path: Path, engine: str
) -> None:
    """The skill has no timeout of its own (30 s by default): the run's shorter deadline ends
    it, and the grandchild it started with it, although the script is abandoned, not waited
    for. (10 s: time for two Python processes to start on a loaded machine.)"""
    pid_file = tmp_path / "pids"
    spawner = command_skill(
        "spawner", [sys.executable, str(FIXTURES / "spawning_skill.py"), str(pid_file)]
    )
    box = Sandbox(timeout=10, skills=[spawner], engine=engine)
    results: list[RunResult] = []
    code = "try:\n    call_skill('spawner')\nfinally:\n    while True:\n        pass\n"
    run = threading.Thread(target=lambda: results.append(box.run(code)))
    run.start()
    # The attack step ran: the skill and its grandchild are both alive during the run.
    assert wait_until(lambda: pid_file.exists() and len(pid_file.read_text().split()) == 2)
    pids = [int(pid) for pid in pid_file.read_text().split()]
    assert all(running(pid) for pid in pids)
    run.join(HANG_GUARD_SECONDS)
    assert results and results[0].limit == "timeout", results
    assert wait_until(lambda: not any(running(pid) for pid in pids)), (
        "a skill process outlived the run"
    )


@pytest.mark.skipif(sys.platform != "linux", reason="reads process states from /proc")
def test_a_command_skill_does_not_outlive_the_cli(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    command = f"{sys.executable} {FIXTURES / 'spawning_skill.py'} {pid_file}"
    code = b"try:\n    call_skill('spawner')\nfinally:\n    while True:\n        pass\n"
    completed = run_cli("run", "--timeout", "10", "--skill", f"spawner={command}", "-", stdin=code)
    assert completed.returncode == ExitCode.TIMEOUT, completed.stderr
    pids = [int(pid) for pid in pid_file.read_text().split()]  # the skill ran
    assert len(pids) == 2
    assert wait_until(lambda: not any(running(pid) for pid in pids)), "a skill outlived agentbox"


def test_a_command_skill_sees_no_agentbox_environment() -> None:
    secret = f"agentbox-secret-{os.getpid()}"
    code = "import json\nprint(json.dumps(call_skill('env')))"
    completed = run_cli(
        "run",
        "--skill",
        f"env={sys.executable} {FIXTURES / 'env_skill.py'}",
        "-",
        stdin=code.encode(),
        env={"AGENTBOX_TEST_SECRET": secret, "OPENAI_API_KEY": secret},
    )
    assert completed.returncode == ExitCode.OK, completed.stderr
    seen = json.loads(completed.stdout)
    assert seen.get("PATH") == os.environ["PATH"]  # the skill ran and got what it needs
    assert secret not in json.dumps(seen)
    assert set(seen) <= set(PASSED_VARIABLES)


def test_a_command_skill_that_finishes_leaves_no_process_behind(tmp_path: Path) -> None:
    """A skill that answers at once but leaves a background process: it ends with the call."""
    pid_file = tmp_path / "pids"
    script = tmp_path / "background.py"
    script.write_text(
        "import os, subprocess, sys\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(3600)'],\n"
        "                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "print('{}')\n"
    )
    box = Sandbox(timeout=30, skills=[command_skill("background", [sys.executable, str(script)])])
    result = returns(box.run, "print(call_skill('background'))")
    assert (result.exit_code, result.stdout) == (ExitCode.OK, "{}\n"), result.stderr
    pid = int(pid_file.read_text())
    assert wait_until(lambda: not running(pid)), "the skill's background process outlived it"
