"""Processes: WASI has no process API. Every way to start one fails, and none of them runs a
host command (each attempt would `touch` a marker file on the host)."""

import textwrap
from pathlib import Path

import pytest

from agentbox import ExitCode, Sandbox
from tests.helpers import MARKER_ATTACK, returns

ATTEMPTS = {
    "subprocess.run": "import subprocess; subprocess.run(['touch', MARKER])",
    "subprocess.Popen shell": "import subprocess; subprocess.Popen('touch ' + MARKER, shell=True)",
    "os.system": "import os; os.system('touch ' + MARKER)",
    "os.popen": "import os; os.popen('touch ' + MARKER).read()",
    "os.fork": "import os; os.fork()",
    "os.forkpty": "import os; os.forkpty()",
    "os.execv": "import os; os.execv('/usr/bin/touch', ['touch', MARKER])",
    "os.execl": "import os; os.execl('/usr/bin/touch', 'touch', MARKER)",
    "os.spawnv": "import os; os.spawnv(os.P_WAIT, '/usr/bin/touch', ['touch', MARKER])",
    "os.posix_spawn": "import os; os.posix_spawn('/usr/bin/touch', ['touch', MARKER], {})",
    "pty.spawn": "import pty; pty.spawn(['touch', MARKER])",
    "multiprocessing": (
        "import multiprocessing, pathlib\n"
        "multiprocessing.Process(target=pathlib.Path(MARKER).touch).start()"
    ),
    "concurrent.futures processes": (
        "import concurrent.futures as f, pathlib\n"
        "f.ProcessPoolExecutor().submit(pathlib.Path(MARKER).touch).result()"
    ),
    "ctypes": "import ctypes; ctypes.CDLL(None).system(('touch ' + MARKER).encode())",
    "_posixsubprocess": ("import _posixsubprocess; _posixsubprocess.fork_exec(['touch', MARKER])"),
    "asyncio subprocess": (
        "import asyncio\nasyncio.run(asyncio.create_subprocess_exec('touch', MARKER))"
    ),
}


@pytest.mark.parametrize("statement", ATTEMPTS.values(), ids=ATTEMPTS.keys())
def test_no_process_can_be_started(image_sandbox: Sandbox, tmp_path: Path, statement: str) -> None:
    marker = tmp_path / "marker"
    result = image_sandbox.run(MARKER_ATTACK, args=[str(marker), statement])
    assert result.exit_code == ExitCode.OK, result.stderr
    assert result.limit is None
    assert result.stdout.startswith("BLOCKED "), result.stdout
    assert not marker.exists()
    assert list(tmp_path.iterdir()) == []


def test_subprocess_says_wasi_has_no_processes(sandbox: Sandbox) -> None:
    result = sandbox.run("import subprocess\nsubprocess.run(['ls'])")
    assert result.exit_code == ExitCode.SCRIPT_ERROR
    assert "wasi does not support processes" in result.stderr


def test_threads_cannot_start(sandbox: Sandbox) -> None:
    """This CPython is built without threads: starting one raises RuntimeError."""
    code = textwrap.dedent(
        """
        import _thread, threading
        for start in (
            lambda: threading.Thread(target=print, args=("thread ran",)).start(),
            lambda: _thread.start_new_thread(print, ("thread ran",)),
        ):
            try:
                start()
            except RuntimeError as error:
                print("BLOCKED", error)
        """
    )
    result = sandbox.run(code)
    assert result.stdout == "BLOCKED can't start new thread\n" * 2, result.stderr


def test_a_thread_that_starts_is_still_bounded_by_the_timeout() -> None:
    """Whatever the guest's thread support, a spinning thread cannot outlive the deadline."""
    box = Sandbox(timeout=2)
    code = textwrap.dedent(
        """
        import threading
        def spin():
            while True:
                pass
        threading.Thread(target=spin, daemon=True).start()
        while True:
            pass
        """
    )
    result = returns(box.run, code)
    if result.limit is None:  # threads unsupported: the script failed before spinning
        assert "can't start new thread" in result.stderr
    else:
        assert (result.limit, result.exit_code) == ("timeout", ExitCode.TIMEOUT)
    assert box.run("print(1)").stdout == "1\n"


def test_thread_pool_executor_cannot_start(sandbox: Sandbox) -> None:
    code = (
        "import concurrent.futures as f\n"
        "try:\n    print(f.ThreadPoolExecutor().submit(lambda: 41 + 1).result())\n"
        "except RuntimeError as error:\n    print('BLOCKED', error)\n"
    )
    result = sandbox.run(code)
    assert result.exit_code == ExitCode.OK, result.stderr
    assert result.stdout.startswith("BLOCKED"), result.stdout
