"""Limits: wall-clock, memory, fuel, output and stack each end a run with the documented
outcome (`RunResult.limit`, `ExitCode`), the host stays healthy, and the same Sandbox runs the
next script normally. Nothing here measures speed: a broken limit fails through the hang guard
(`tests.helpers.returns`), and "not cut short" is checked by scripts that must finish."""

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from agentbox import AgentboxError, ExitCode, RunResult, Sandbox
from tests.helpers import HANG_GUARD_SECONDS, returns, run_cli, wait_until

DEADLINE = 2.0

RAW_TIME = "import _imp, importlib.machinery as m\n" + (
    "raw = _imp.create_builtin(m.ModuleSpec('time', None, origin='built-in'))\n"
)

BLOCKING = {
    "busy loop": "while True:\n    pass",
    "time.sleep": "import time\ntime.sleep(3600)",
    "raw time via _imp.create_builtin": RAW_TIME
    + "assert raw.sleep is not __import__('time').sleep\n"
    "raw.sleep(3600)",
    "raw time via importlib.util": (
        "import importlib.util, sys\n"
        "del sys.modules['time']\n"
        "raw = importlib.util.module_from_spec(importlib.util.find_spec('time'))\n"
        "raw.sleep(3600)"
    ),
    "select.select": "import select\nselect.select([], [], [], 3600)",
    "select.poll": "import select\nselect.poll().poll(3600 * 1000)",
    "selectors": "import selectors\nselectors.DefaultSelector().select(3600)",
    "sleep(0) loop": "import time\nwhile True:\n    time.sleep(0)",
    "output then sleep": "import time\nprint('started', flush=True)\ntime.sleep(3600)",
}


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def box() -> Sandbox:
    sandbox = Sandbox(timeout=DEADLINE, memory="128M", max_output=10_000)
    sandbox.warmup()
    return sandbox


def assert_timed_out(result: RunResult) -> None:
    assert (result.limit, result.exit_code) == ("timeout", ExitCode.TIMEOUT), (
        result.limit,
        result.exit_code,
        result.stderr[-500:],
    )
    assert result.message and "timed out" in result.message


@pytest.mark.parametrize("code", BLOCKING.values(), ids=BLOCKING.keys())
def test_api_timeout_ends_the_run(box: Sandbox, code: str) -> None:
    assert_timed_out(returns(box.run, code))
    assert box.run("print(1)").stdout == "1\n"


def test_output_written_before_a_timeout_is_kept(box: Sandbox) -> None:
    result = returns(box.run, BLOCKING["output then sleep"])
    assert_timed_out(result)
    assert result.stdout == "started\n"


# A deadline far longer than the work it guards: a deadline cut to a fraction of itself ends
# the work, while start-up on a busy machine (which counts against the deadline) never does.
LONG_DEADLINE = 60.0
WORK_SECONDS = 3.0
# Busy for WORK_SECONDS by the wall clock.
WORK_WITHIN_THE_DEADLINE = (
    "import time\nstarted = time.monotonic()\n"
    f"while time.monotonic() - started < {WORK_SECONDS}:\n    pass\nprint('done')"
)


@pytest.fixture(scope="module")
def long_box() -> Sandbox:
    sandbox = Sandbox(timeout=LONG_DEADLINE, memory="128M", max_output=10_000)
    sandbox.warmup()
    return sandbox


def test_a_run_within_its_deadline_is_not_cut_short(long_box: Sandbox) -> None:
    result = returns(long_box.run, WORK_WITHIN_THE_DEADLINE)
    assert (result.exit_code, result.limit, result.stdout) == (ExitCode.OK, None, "done\n")


def test_other_runs_do_not_cut_a_deadline_short(long_box: Sandbox) -> None:
    """Each run's start once woke the epoch ticker early, so concurrent runs shortened the
    deadlines of the others."""
    results: dict[str, RunResult] = {}
    worker = threading.Thread(
        target=lambda: results.update(work=long_box.run(WORK_WITHIN_THE_DEADLINE))
    )
    worker.start()
    quick = [long_box.run(f"print({i})").stdout for i in range(20)]
    worker.join()
    assert quick == [f"{i}\n" for i in range(20)]
    assert (results["work"].limit, results["work"].stdout) == (None, "done\n")


@pytest.mark.parametrize(
    "name", ["busy loop", "time.sleep", "raw time via _imp.create_builtin", "select.select"]
)
def test_cli_timeout_ends_the_process(name: str) -> None:
    # run_cli's own subprocess timeout is the hang guard.
    completed = run_cli(
        "run", "--timeout", str(DEADLINE), "--json", "-", stdin=BLOCKING[name].encode()
    )
    assert completed.returncode == ExitCode.TIMEOUT, completed.stderr
    report = json.loads(completed.stdout)
    assert (report["limit"], report["exit_code"]) == ("timeout", ExitCode.TIMEOUT)


def test_cli_timeout_without_json_says_so_on_stderr() -> None:
    completed = run_cli("run", "--timeout", "1", "-", stdin=b"while True: pass")
    assert completed.returncode == ExitCode.TIMEOUT
    assert completed.stderr.decode().splitlines() == ["agentbox: timed out after 1 s (--timeout)"]


def test_empty_stdin_is_end_of_file_not_a_hang(box: Sandbox) -> None:
    code = "import os, sys\nprint(repr(sys.stdin.read()), os.read(0, 10))\ninput()"
    result = returns(box.run, code)
    assert result.stdout == "'' b''\n"
    assert result.stderr.rstrip().endswith("EOFError: EOF when reading a line")
    assert result.limit is None


def test_cli_script_file_reading_stdin_from_devnull_is_eof(tmp_path: Path) -> None:
    script = tmp_path / "read.py"
    script.write_text("import sys\nprint(repr(sys.stdin.read()))\n")
    completed = subprocess.run(
        [sys.executable, "-m", "agentbox", "run", "--timeout", "5", str(script)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
    )
    assert (completed.returncode, completed.stdout) == (ExitCode.OK, b"''\n"), completed.stderr


def test_cli_timeout_holds_when_host_stdin_never_closes(tmp_path: Path) -> None:
    """`agentbox run --timeout 2 script.py` with a stdin pipe its parent keeps open (a common
    way to spawn tools) must still end with the timeout when the script blocks reading it (a
    script that never reads it is not held at all: tests/test_cli_live.py)."""
    script = tmp_path / "job.py"
    script.write_text("print('ran', flush=True)\ninput()\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "agentbox", "run", "--timeout", str(DEADLINE), str(script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    limit = HANG_GUARD_SECONDS
    try:
        # Not `communicate()`: it would close stdin. The output is tiny, so pipes cannot fill.
        process.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail(f"agentbox was still running {limit:g} s after start (blocked on stdin)")
    finally:
        assert process.stdin is not None and process.stderr is not None
        process.stdin.close()
    assert process.returncode == ExitCode.TIMEOUT
    assert process.stdout is not None and process.stdout.read() == b"ran\n"
    assert b"timed out after" in process.stderr.read()


def test_memory_limit_gives_memory_error_and_the_host_is_fine(box: Sandbox) -> None:
    before = rss_bytes()
    result = box.run("data = bytearray(10**9)")
    assert (result.limit, result.exit_code) == ("memory", ExitCode.MEMORY), result.stderr
    assert result.stderr.rstrip().endswith("MemoryError")
    assert rss_bytes() - before < 300 * 1024 * 1024
    assert box.run("print(len(bytearray(10**6)))").stdout == "1000000\n"


def test_memory_limit_on_gradual_growth(box: Sandbox) -> None:
    code = "chunks = []\nwhile True:\n    chunks.append(bytearray(1024 * 1024))"
    result = returns(box.run, code)
    assert (result.limit, result.exit_code) == ("memory", ExitCode.MEMORY), result.stderr


def test_caught_memory_error_lets_the_script_continue(box: Sandbox) -> None:
    code = "try:\n    bytearray(10**9)\nexcept MemoryError:\n    print('recovered')"
    result = box.run(code)
    assert (result.exit_code, result.limit, result.stdout) == (ExitCode.OK, None, "recovered\n")


def test_cli_memory_limit() -> None:
    completed = run_cli("run", "--memory", "128M", "--json", "-", stdin=b"bytearray(10**9)")
    assert completed.returncode == ExitCode.MEMORY, completed.stderr
    assert json.loads(completed.stdout)["limit"] == "memory"


@pytest.fixture(scope="module")
def fuel_box() -> Sandbox:
    return Sandbox(timeout=30, fuel=1_000_000)


def test_fuel_budget_ends_a_loop(fuel_box: Sandbox) -> None:
    result = fuel_box.run("while True:\n    pass")
    assert (result.limit, result.exit_code) == ("fuel", ExitCode.FUEL), result.message
    assert "fuel" in (result.message or "")


def test_generous_fuel_lets_a_script_finish() -> None:
    result = Sandbox(timeout=30, fuel=10**10).run("print(sum(range(1000)))")
    assert (result.exit_code, result.stdout, result.limit) == (ExitCode.OK, "499500\n", None)


def test_cli_fuel_budget_ends_a_loop() -> None:
    completed = run_cli("run", "--fuel", "1000000", "--json", "-", stdin=b"while True: pass")
    assert completed.returncode == ExitCode.FUEL, completed.stderr
    assert json.loads(completed.stdout)["limit"] == "fuel"


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_output_flood_is_capped_and_host_memory_stays_bounded(box: Sandbox, stream: str) -> None:
    before = rss_bytes()
    code = f"import sys\nwhile True:\n    print('x' * 1000, file=sys.{stream})"
    result = returns(box.run, code)
    assert_timed_out(result)
    assert result.truncated is True
    assert len(getattr(result, f"{stream}_bytes")) == 10_000
    assert result.message and "truncated" in result.message
    assert rss_bytes() - before < 100 * 1024 * 1024


def test_output_beyond_the_cap_of_a_finished_script(box: Sandbox) -> None:
    result = box.run("print('y' * 1_000_000)\nprint('done')")
    assert (result.exit_code, result.limit, result.truncated) == (ExitCode.OK, None, True)
    assert result.stdout_bytes == b"y" * 10_000


def test_cli_output_flood_is_capped() -> None:
    code = b"while True: print('x' * 1000)"
    completed = run_cli("run", "--timeout", "2", "--max-output", "10000", "-", stdin=code)
    assert completed.returncode == ExitCode.TIMEOUT
    assert completed.stdout == b"x" * 1000 + b"\n" + (b"x" * 1000 + b"\n") * 8 + b"x" * 991
    assert len(completed.stdout) == 10_000


def test_python_recursion_is_a_recursion_error(box: Sandbox) -> None:
    result = box.run("def f(n):\n    return f(n + 1)\nf(0)")
    assert (result.exit_code, result.limit) == (ExitCode.SCRIPT_ERROR, None)
    assert result.stderr.rstrip().endswith("RecursionError: maximum recursion depth exceeded")


@pytest.mark.parametrize(
    "code",
    [
        "import json\njson.loads('[' * 200000 + ']' * 200000)",
        "import pickle\npickle.loads(b'(' * 200000 + b'l' * 200000 + b'.')",
        "x = []\nfor _ in range(200000):\n    x = [x]\nrepr(x)",
        "import re\nre.compile('(' * 100000 + ')' * 100000)",
        "eval('(' * 200000 + ')' * 200000)",
        "exec('if 1:\\n' + ''.join(' ' * i + 'if 1:\\n' for i in range(1, 2000)) + ' ' * 2000 + 'pass')",
    ],
    ids=["json", "pickle", "repr", "re", "eval-parens", "nested-blocks"],
)
def test_c_level_recursion_is_a_clean_error(sandbox: Sandbox, box: Sandbox, code: str) -> None:
    result = sandbox.run(code)
    if result.limit is None:
        assert result.exit_code == ExitCode.SCRIPT_ERROR, result.stdout
        assert result.stderr.rstrip().splitlines()[-1].split(":")[0].endswith("Error")
    else:
        assert (result.limit, result.exit_code) == ("crash", ExitCode.CRASH), result.message
    assert box.run("print(1)").stdout == "1\n"


LIMIT_CASES = {
    "timeout": ("while True:\n    pass", "timeout"),
    "raw sleep": (RAW_TIME + "raw.sleep(3600)", "timeout"),
    "memory": ("bytearray(10**9)", "memory"),
    "output": ("while True:\n    print('x' * 1000)", "timeout"),
    "c recursion": ("import json\njson.loads('[' * 200000 + ']' * 200000)", "crash"),
    "python recursion": ("def f():\n    f()\nf()", None),
}


def test_the_same_sandbox_works_after_every_kind_of_limit(box: Sandbox) -> None:
    seen = {}
    for name, (code, _) in LIMIT_CASES.items():
        seen[name] = box.run(code).limit
        after = box.run("import json\nprint(json.dumps({'ok': 1}))")
        assert (after.exit_code, after.stdout, after.limit) == (ExitCode.OK, '{"ok": 1}\n', None), (
            name,
            after,
        )
    assert seen == {name: limit for name, (_, limit) in LIMIT_CASES.items()}


def test_the_same_fuel_sandbox_works_after_running_out(fuel_box: Sandbox) -> None:
    assert fuel_box.run("while True:\n    pass").limit == "fuel"
    after = fuel_box.run("print(1)")
    assert (after.exit_code, after.stdout) == (ExitCode.OK, "1\n")


def test_limits_hold_with_concurrent_runs(box: Sandbox) -> None:
    """A timed-out run in one thread does not disturb a quick run in another."""

    results: dict[str, RunResult] = {}

    def spin() -> None:
        results["spin"] = box.run("while True:\n    pass")

    thread = threading.Thread(target=spin)
    thread.start()
    quick = [box.run(f"print({i})").stdout for i in range(20)]
    thread.join(HANG_GUARD_SECONDS)
    assert quick == [f"{i}\n" for i in range(20)]
    assert results["spin"].limit == "timeout"


def test_sandbox_rejects_a_timeout_it_cannot_arm() -> None:
    """A huge but finite timeout must be refused (UsageError) or work, never crash the host."""

    try:
        box = Sandbox(timeout=1e300)
    except AgentboxError:
        return
    assert box.run("print(1)").stdout == "1\n"


@pytest.mark.parametrize("memory", [2**64, 2**64 + 128 * 1024 * 1024])
def test_sandbox_memory_sizes_do_not_wrap_around(memory: int) -> None:
    """A memory limit beyond 64 bits must be refused or clamped, not taken modulo 2**64."""

    try:
        box = Sandbox(timeout=20, memory=memory)
    except AgentboxError:
        return
    result = box.run("print(len(bytearray(300 * 1024 * 1024)))")
    assert (result.exit_code, result.stdout) == (ExitCode.OK, f"{300 * 1024 * 1024}\n"), (
        result.limit,
        result.message,
    )


def test_a_cancelled_run_still_ends_at_its_deadline() -> None:
    """Cancelling `run_async` (what MCP `notifications/cancelled` does) abandons the run, but
    its store must still reach its deadline: the epoch ticker once stopped with the last
    awaited run and left the abandoned script spinning forever. The run's Store being freed
    is the sign that its worker returned (it holds the Store until then)."""
    import asyncio
    import weakref

    from agentbox.engines.base import RunSettings, ScriptRequest
    from agentbox.engines.wasm.engine import WasmEngine
    from agentbox.limits import Limits
    from agentbox.skills import SkillSet

    started, ended = threading.Event(), threading.Event()

    def began() -> None:
        started.set()

    # Longer than the ticker's linger after the last run, so only a ticker that keeps
    # ticking for the abandoned store ends it.
    instance = WasmEngine().new_instance(RunSettings(limits=Limits(timeout=5)))
    weakref.finalize(instance.store, ended.set)
    request = ScriptRequest(source=b"call_skill('began')\nwhile True:\n    pass\n")

    async def run_and_cancel() -> None:
        skills = SkillSet([began]).bind_run(asyncio.get_running_loop())
        task = asyncio.ensure_future(instance.run_once_async(request, skills))
        assert await asyncio.to_thread(started.wait, HANG_GUARD_SECONDS)  # the loop is running
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run_and_cancel())
    assert wait_until(ended.is_set), "the cancelled run is still running"
