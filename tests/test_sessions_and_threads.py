"""Sessions keep an interpreter; concurrent runs from threads stay isolated; the warm pool."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from agentbox import ExitCode, Sandbox, SessionClosedError, UsageError
from tests.helpers import wait_until


def test_session_keeps_state_and_sessions_are_isolated(sandbox: Sandbox) -> None:
    with sandbox.session() as first, sandbox.session() as second:
        assert first.run("import json\nx = 41").exit_code == 0
        assert first.run("x += 1\nprint(json.dumps(x))").stdout == "42\n"
        other = second.run("print(x)")
        assert other.exit_code == ExitCode.SCRIPT_ERROR and "NameError" in other.stderr


def test_session_gets_fresh_stdin_each_call_and_survives_closed_stdout(sandbox: Sandbox) -> None:
    with sandbox.session() as session:
        assert session.run("print(input())", stdin="one\n").stdout == "one\n"
        assert session.run("print(input())", stdin="two\n").stdout == "two\n"
        session.run("import sys\nsys.stdout.close()")
        assert session.run("print('still printing')").stdout == "still printing\n"


def test_session_resets_after_a_limit(sandbox: Sandbox) -> None:
    with sandbox.session() as session:
        session.run("kept = 1")
        timed_out = session.run("while True: pass", timeout=0.5)
        assert (timed_out.limit, timed_out.session_reset) == ("timeout", True)
        after = session.run("print('kept' in globals())")
        assert (after.stdout, after.session_reset) == ("False\n", False)


def test_closed_session_refuses_runs(sandbox: Sandbox) -> None:
    session = sandbox.session()
    session.close()
    with pytest.raises(SessionClosedError):
        session.run("pass")


def test_session_run_async(sandbox: Sandbox) -> None:
    async def main() -> list[str]:
        with sandbox.session() as session:
            await session.run_async("n = 2")
            return [(await session.run_async("print(n * 21)")).stdout]

    assert asyncio.run(main()) == ["42\n"]


def test_concurrent_runs_from_threads_are_isolated(sandbox: Sandbox) -> None:
    code = "import sys\nvalue = sys.argv[1]\nimport time; time.sleep(0.05)\nprint(value)"
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda i: sandbox.run(code, args=[str(i)]), range(24)))
    assert [r.stdout for r in results] == [f"{i}\n" for i in range(24)]


def test_concurrent_runs_with_different_timeouts(sandbox: Sandbox) -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        slow = pool.submit(sandbox.run, "while True: pass", timeout=0.5)
        fast = pool.submit(sandbox.run, "import time; time.sleep(1); print('done')", timeout=60)
        assert slow.result().limit == "timeout"
        assert fast.result().stdout == "done\n"


def test_warm_pool_runs_are_fresh() -> None:
    box = Sandbox(pool_size=2)
    try:
        assert box._pool is not None
        pool = box._pool
        assert wait_until(lambda: pool._ready.full())  # the first runs get primed instances
        results = [
            box.run("import builtins\nprint(hasattr(builtins, 'mark'))\nbuiltins.mark = 1")
            for _ in range(5)
        ]
        # Nothing of the priming run either (it prints to both streams).
        assert [(result.stdout, result.stderr) for result in results] == [("False\n", "")] * 5
    finally:
        box.close()


def test_sessions_need_the_wasm_engine() -> None:
    with pytest.raises(UsageError):
        Sandbox(engine="restricted").session()
