"""No state crosses tasks: a task that tampers with everything it can reach, then the next task
on the same worker (one worker, so they share its process and its warm sandbox) checks."""

import textwrap

from agentbox.batch import run_batch

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
    hoard = [bytearray(1 << 20) for _ in range(64)]  # dirty memory the next task must not see
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


def test_a_task_sees_nothing_of_the_tampering_task_before_it() -> None:
    tasks = []
    for n in range(10):
        tasks.append({"id": f"tamper{n}", "code": TAMPER})
        tasks.append({"id": f"check{n}", "code": CHECK})
    results = {r.id: r for r in run_batch(tasks, workers=1, timeout=20)}
    assert len(results) == 20
    for n in range(10):
        assert results[f"tamper{n}"].stdout == "tampered\n", results[f"tamper{n}"]
        assert results[f"check{n}"].stdout == "clean\n", results[f"check{n}"]


def test_the_check_sees_tampering_in_its_own_interpreter() -> None:
    """Positive control: run in one interpreter after the tampering, the check finds it all."""
    (result,) = run_batch(
        [{"id": 1, "code": TAMPER + CHECK.replace("print(", "sys.stdout.write(")}]
    )
    for found in ("builtins", "json", "os module", "sys.modules", "sys.path", "environ", "gc"):
        assert found in result.stdout, result
