"""No state crosses tasks: a task that tampers with everything it can reach, then the next task
on the same worker (one worker, so they share its process and its warm sandbox) checks. By
default a worker recycles one instance, its memory put back after each task (the attacks on
that mechanism itself are in tests/isolation/test_recycled_instances.py); with `recycle=False`
each task gets a new instance; with wasmtime's pooling allocator (`pooling=True`), the next
task's instance reuses the memory slot of the one before: the last test reads that memory from
the host."""

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agentbox.batch import run_batch
from agentbox.batch.api import settings_from
from agentbox.batch.runner import TaskRunner
from agentbox.batch.tasks import Task
from agentbox.limits import MIB
from tests.helpers import PROCESS_HANG_GUARD_SECONDS

ROOT = Path(__file__).resolve().parent.parent.parent

TAMPER = textwrap.dedent(
    """
    import builtins, json, os, random, sys, gc
    builtins.print = lambda *a, **k: None
    builtins.TAMPERED = True
    json.dumps = lambda *a, **k: "tampered"
    sys.modules["os"].TAMPERED = True
    sys.modules["evil"] = type(sys)("evil")
    sys.path.insert(0, "/evil")
    sys.setrecursionlimit(50)
    os.environ["TAMPERED"] = "1"
    random.seed(1234)
    for path in ("/tmp/tampered", "/tampered", "tampered"):
        try:
            open(path, "w").write("x")
        except OSError:
            pass
    try:
        os.chdir("/tmp")
    except OSError:
        pass
    hoard = [bytearray(1 << 20) for _ in range(HOARD_MIB)]  # dirty memory the next task must not see
    gc.disable()
    sys.stdout.write("tampered\\n")
    """
)

CHECK = textwrap.dedent(
    """
    import builtins, json, os, random, sys, gc
    problems = []
    if hasattr(builtins, "TAMPERED"): problems.append("builtins")
    if json.dumps({}) != "{}": problems.append("json")
    if hasattr(os, "TAMPERED"): problems.append("os module")
    if "evil" in sys.modules: problems.append("sys.modules")
    if "/evil" in sys.path: problems.append("sys.path")
    if sys.getrecursionlimit() == 50: problems.append("recursion limit")
    if "TAMPERED" in os.environ: problems.append("environ")
    if not gc.isenabled(): problems.append("gc")
    for path in ("/tmp/tampered", "/tampered", "tampered"):
        if os.path.exists(path): problems.append(path)
    state = random.getstate()
    random.seed(1234)
    if random.getstate() == state: problems.append("random state")
    print("clean" if not problems else "DIRTY " + ",".join(problems))
    """
)


@pytest.mark.parametrize(
    ("recycle", "pooling", "hoard_mib"),
    [(True, False, 1), (True, False, 64), (False, False, 64), (False, True, 64)],
    # A recycled instance is reused after a task that stayed within its memory, and dropped
    # after one that grew it (64 MiB).
    ids=["recycled", "recycled-grown", "on-demand", "pooled"],
)
def test_a_task_sees_nothing_of_the_tampering_task_before_it(
    recycle: bool, pooling: bool, hoard_mib: int
) -> None:
    tasks = []
    tamper = f"HOARD_MIB = {hoard_mib}\n" + TAMPER
    for n in range(10):
        tasks.append({"id": f"tamper{n}", "code": tamper})
        tasks.append({"id": f"check{n}", "code": CHECK})
    settings = dataclasses.replace(settings_from(timeout=20), recycle=recycle, pooling=pooling)
    results = {r.id: r for r in run_batch(tasks, workers=1, settings=settings)}
    assert len(results) == 20
    for n in range(10):
        assert results[f"tamper{n}"].stdout == "tampered\n", results[f"tamper{n}"]
        assert results[f"check{n}"].stdout == "clean\n", results[f"check{n}"]


def test_the_check_sees_tampering_in_its_own_interpreter() -> None:
    """Positive control: run in one interpreter after the tampering, the check finds it all."""
    (result,) = run_batch(
        [
            {
                "id": 1,
                "code": "HOARD_MIB = 1\n" + TAMPER + CHECK.replace("print(", "sys.stdout.write("),
            }
        ]
    )
    for found in ("builtins", "json", "os module", "sys.modules", "sys.path", "environ", "gc"):
        assert found in result.stdout, result


def test_a_worker_recycles_its_instance_by_default() -> None:
    """The mechanism the tests above rely on is in use: a worker's second task ran in the
    instance of its first (and with `recycle=False` in a new one)."""
    for recycle, reused in ((True, 1), (False, None)):
        runner = TaskRunner(dataclasses.replace(settings_from(timeout=20), recycle=recycle))
        limits = runner.settings.limits
        for n in range(2):
            assert runner.run(Task(id=n, code="print(1)"), limits).stdout == "1\n"
        recycler = runner._sandbox(limits)._recycler
        assert (recycler.reused if recycler is not None else None) == reused


@pytest.mark.parametrize("resident", [0, 48 * MIB], ids=["pooled", "pooled-resident"])
def test_a_pooled_slot_holds_nothing_of_the_task_before(resident: int) -> None:
    """The batch worker's pooled engine (slots reused, memory optionally kept resident): a
    task writes a secret into everything it can reach, including a 64 MiB bytearray and /tmp;
    the host then reads every accessible byte of the pool (/proc/self/mem). The scan finds the
    secret while the task's instance is alive (the positive control), and nowhere once it is
    freed, nor while the next instance, in the same slot, runs a task that looks for it in
    every string it can reach (that check finds it when run after the tampering in one
    interpreter: its own positive control)."""
    script = Path(__file__).with_name("pool_scan.py")
    done = subprocess.run(
        [sys.executable, str(script), str(resident)],
        capture_output=True,
        text=True,
        timeout=PROCESS_HANG_GUARD_SECONDS,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["pooling"] and report["regions"] >= 1, report
    assert report["tampered"] == "tampered\n", report
    assert report["copies_while_alive"] >= (64 << 20) // 64, report  # the control
    assert report["copies_after_free"] == 0, report
    assert report["same_slot"], report
    assert report["copies_in_next_instance"] == 0, report
    assert report["bytes_read_next"] > 0, report
    assert report["check_in_same_slot"] == "clean\n", report
    assert report["check_next_task"] == "clean\n", report
    control = report["check_after_tampering_in_one_interpreter"]
    assert "FOUND" in control and "dict" in control and "/tmp/secret" in control, report
