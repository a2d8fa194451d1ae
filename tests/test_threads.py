"""Run threads are reused and abandonable; used instances are freed off the caller's thread."""

import threading
import weakref

import pytest

from agentbox import RunResult, Sandbox, SessionClosedError
from agentbox.engines.base import ScriptRequest
from agentbox.engines.wasm.threads import RunThreads
from agentbox.skills import SkillSet
from tests.helpers import HANG_GUARD_SECONDS, returns, wait_until


def test_sequential_runs_reuse_one_thread() -> None:
    threads = RunThreads()
    seen: list[threading.Thread] = []
    for _ in range(5):
        assert threads.run(lambda: seen.append(threading.current_thread()), HANG_GUARD_SECONDS)
    assert len(set(seen)) == 1
    assert seen[0] is not threading.current_thread()


def test_a_stuck_thread_is_abandoned_and_rejoins_only_when_free() -> None:
    threads = RunThreads()
    release = threading.Event()
    seen: list[threading.Thread] = []

    def stuck() -> None:
        seen.append(threading.current_thread())
        release.wait()

    assert threads.run(stuck, 0.05) is False
    assert threads.run(lambda: seen.append(threading.current_thread()), HANG_GUARD_SECONDS)
    assert seen[0] is not seen[1], "new work was handed to the thread that is still stuck"
    assert threads.idle_threads == 1
    release.set()
    assert wait_until(lambda: threads.idle_threads == 2)


def test_work_that_raises_does_not_lose_the_thread() -> None:
    threads = RunThreads()

    def broken() -> None:
        raise RuntimeError("a bug in the work")

    assert threads.run(broken, HANG_GUARD_SECONDS)
    assert threads.run(lambda: None, HANG_GUARD_SECONDS)
    assert threads.idle_threads == 1


def test_a_used_instance_is_freed_after_its_run(sandbox: Sandbox) -> None:
    instance = sandbox._wasm().new_instance(sandbox.settings)
    store = weakref.ref(instance.store)
    result = instance.run_once(ScriptRequest(source=b"print(1)"), SkillSet().bind_run())
    assert result.stdout == "1\n"
    del instance
    assert wait_until(lambda: store() is None), "the instance's Store was never freed"


def test_a_session_frees_its_instance_on_close(sandbox: Sandbox) -> None:
    session = sandbox.session()
    session.run("x = 1")
    store = weakref.ref(session._instance.store)
    session.close()
    assert wait_until(lambda: store() is None), "the session's Store was never freed"


def test_closing_a_session_does_not_wait_for_its_running_script() -> None:
    """close() once blocked until the script ended: from the event loop that awaits the run,
    that was a deadlock. Now the run frees the interpreter when it returns."""
    entered, release = threading.Event(), threading.Event()

    def hold() -> str:
        """Blocks until the test lets go."""
        entered.set()
        release.wait(HANG_GUARD_SECONDS)
        return "released"

    sandbox = Sandbox(skills=[hold])
    session = sandbox.session()
    session.run("x = 1")
    store = weakref.ref(session._instance.store)
    outcome: dict[str, RunResult] = {}
    worker = threading.Thread(
        target=lambda: outcome.update(run=session.run("import skills\nprint(skills.hold())"))
    )
    worker.start()
    assert entered.wait(HANG_GUARD_SECONDS)
    returns(session.close)  # while the script is still inside the skill
    release.set()
    worker.join(HANG_GUARD_SECONDS)
    assert outcome["run"].stdout == "released\n"
    assert wait_until(lambda: store() is None), "the closed session's Store was never freed"
    with pytest.raises(SessionClosedError):
        session.run("print(x)")
