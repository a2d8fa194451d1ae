"""The batch API from Python (sync and async), with real worker processes."""

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from agentbox.batch import Task, TaskResult, run_batch, run_batch_async
from tests.helpers import HANG_GUARD_SECONDS


def programs(count: int) -> Iterator[dict[str, object]]:
    for n in range(count):
        yield {"id": f"p{n}", "code": f"assert {n} % 7 != 3\nprint({n})"}


def test_sync_iterator_over_a_generator_of_tasks() -> None:
    results = {r.id: r for r in run_batch(programs(40), workers=2, timeout=10)}
    assert sorted(results) == sorted(f"p{n}" for n in range(40))
    for n in range(40):
        result = results[f"p{n}"]
        assert isinstance(result, TaskResult)
        assert result.ok == (n % 7 != 3), result
        assert result.stdout == ("" if n % 7 == 3 else f"{n}\n")
        if n % 7 == 3:
            assert result.status == "failed" and "AssertionError" in result.stderr


def test_task_objects_limits_and_bad_tasks_as_results() -> None:
    tasks: list[object] = [
        Task(id=1, code="while True: pass", timeout=0.5),
        {"id": 2, "code": "print(2)"},
        {"id": 2, "code": "print('again')"},
        {"id": 3},
        ["not", "a", "task"],
    ]
    results = list(run_batch(tasks, workers=1, timeout=20))  # type: ignore[arg-type]
    assert len(results) == 5
    found = {(r.id, r.status): r for r in results}
    assert found[(1, "limit")].limit == "timeout" and "0.5 s" in (found[(1, "limit")].message or "")
    assert found[(2, "passed")].stdout == "2\n"
    assert "duplicate id 2" in (found[(2, "error")].error or "")
    assert "'code' must be a string" in (found[(3, "error")].error or "")
    assert "must be a JSON object" in (found[(None, "error")].error or "")


def test_async_iterator_streams_without_blocking_the_loop() -> None:
    async def main() -> tuple[dict[object, TaskResult], int]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        found = {}
        async for result in run_batch_async(programs(30), workers=2):
            found[result.id] = result
        ticker.cancel()
        return found, ticks

    found, ticks = asyncio.run(asyncio.wait_for(main(), HANG_GUARD_SECONDS))
    assert len(found) == 30 and sum(r.ok for r in found.values()) == 30 - 4
    assert ticks > 0  # the loop kept running while results came in


def test_leaving_the_async_loop_early_stops_the_workers() -> None:
    async def main() -> list[TaskResult]:
        taken = []
        async for result in run_batch_async(programs(10_000), workers=2):
            taken.append(result)
            if len(taken) == 5:
                break
        return taken

    taken = asyncio.run(asyncio.wait_for(main(), HANG_GUARD_SECONDS))
    assert len(taken) == 5


def test_results_round_trip_through_json() -> None:
    result = next(run_batch([{"id": "x", "code": "print('é')"}], workers=1))
    line = result.dumps()
    assert line.endswith(b"\n") and json.loads(line)["stdout"] == "é\n"
    assert TaskResult.from_json(json.loads(line)) == result


def test_batch_without_ray_never_imports_ray(tmp_path: Path) -> None:
    """Ray is an optional extra: a local batch (command or API) must not load any of it."""
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(json.dumps({"id": 1, "code": "print(1)"}) + "\n")
    probe = (
        "import sys\n"
        "from agentbox.cli import cli\n"
        f"sys.argv = ['agentbox', 'batch', {str(tasks)!r}, '-o', {str(tmp_path / 'out.jsonl')!r}]\n"
        "try:\n    cli.main(standalone_mode=False)\nexcept SystemExit:\n    pass\n"
        "from agentbox.batch import run_batch\n"
        "assert [r.ok for r in run_batch([{'id': 2, 'code': 'pass'}], workers=1)] == [True]\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'ray'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, timeout=HANG_GUARD_SECONDS
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"[]\n"
    assert (tmp_path / "out.jsonl").read_text().count("\n") == 1


def test_the_binarys_entry_script_serves_as_a_batch_worker() -> None:
    """The frozen binary starts its workers as itself with `--agentbox-batch-worker FD`: its
    entry script (run here by Python, as PyInstaller runs it) speaks the worker protocol."""
    import socket

    from agentbox.batch import BatchSettings, Task
    from agentbox.batch.channel import Channel
    from agentbox.batch.local import FROZEN_WORKER_ARGUMENT
    from agentbox.limits import Limits

    entry = Path(__file__).resolve().parent.parent.parent / "packaging" / "entry.py"
    parent, child = socket.socketpair()
    process = subprocess.Popen(
        [sys.executable, str(entry), FROZEN_WORKER_ARGUMENT, str(child.fileno())],
        pass_fds=[child.fileno()],
    )
    child.close()
    connection = Channel(parent)
    try:
        connection.send(BatchSettings())
        assert connection.poll(HANG_GUARD_SECONDS) and connection.recv()[0] == "ready"
        connection.send((Task(id="t", code="print(7 * 6)"), Limits()))
        assert connection.poll(HANG_GUARD_SECONDS)
        kind, result = connection.recv()
        assert (kind, result.id, result.stdout, result.exit_code) == ("result", "t", "42\n", 0)
        connection.send(None)
        assert process.wait(HANG_GUARD_SECONDS) == 0
    finally:
        connection.close()
        process.kill()
