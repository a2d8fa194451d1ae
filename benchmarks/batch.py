"""Bulk runs: `agentbox batch` against a subprocess-per-task `python3 -I` harness, side by side.

The corpus is generated here, deterministically (seeded): a few hundred small programs, each a
function and the asserts that test it, as model-written solutions look. About a third are wrong
(an assert fails), a few raise, and a few never end (a timeout ends them). Each program passes
or fails the same way under both harnesses; the script checks it per task.

Measured, on the same cores, in rounds that alternate the harnesses:
- the `python3 -I -c CODE` harness: one new process per task, `cores` at a time, the timeout
  enforced by killing it (no isolation: it is the baseline people use);
- `agentbox batch TASKS -o RESULTS --workers cores`: the real command, end to end (its start
  and its workers' start included);
- `run_batch(tasks)` from Python, the same work without the command's start, once with each
  way of making instances (`--allocators`): one instance per worker recycled from task to task
  (`recycled`, the default: its memory put back after each task), a fresh instance per task
  (`on-demand`, `BatchSettings(recycle=False)`), wasmtime's pooling allocator (`pooled`,
  `BatchSettings(pooling=True)`), and pooled with each slot's memory kept resident
  (`resident`, `--resident` bytes);
- with `--ray`: the same tasks on a Ray cluster started here (`ray start --head`), its actors
  already up (the comparison the target names: within 25% of local mode).

All of it twice: on the programs that end by themselves, and on the whole corpus, whose 1% of
programs that loop hold a worker for the whole timeout in any harness (at 300 tasks, 3 of
them cost each harness 1.5 s of its 2 cores: they bound the ratio whatever a task costs).

Then the cost of one task inside a worker, broken down (instantiate, the first touch of the
memory image's pages, the run itself, freeing; for a recycled instance, its run and the
restore of its memory), measured on the engine's parts directly, alternating. Worker CPU per
task (user + system time of the worker processes, their start included) is printed beside
throughput: it moves less with the machine's load.

    python benchmarks/batch.py [--tasks 300] [--rounds 3] [--ray] [--allocators ...]
"""

import argparse
import concurrent.futures
import contextlib
import dataclasses
import json
import os
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TIMEOUT_SECONDS = 1.0

CORRECT = {
    "total": ("def total(xs):\n    return sum(xs)\n", None),
    "fib": (
        "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n"
        "        a, b = b, a + b\n    return a\n",
        None,
    ),
    "is_prime": (
        "def is_prime(n):\n    if n < 2:\n        return False\n"
        "    i = 2\n    while i * i <= n:\n        if n % i == 0:\n            return False\n"
        "        i += 1\n    return True\n",
        None,
    ),
    "reverse_words": (
        "def reverse_words(s):\n    return ' '.join(reversed(s.split()))\n",
        None,
    ),
    "gcd": ("def gcd(a, b):\n    while b:\n        a, b = b, a % b\n    return a\n", None),
    "insertion_sort": (
        "def insertion_sort(xs):\n    xs = list(xs)\n    for i in range(1, len(xs)):\n"
        "        j = i\n        while j > 0 and xs[j - 1] > xs[j]:\n"
        "            xs[j - 1], xs[j] = xs[j], xs[j - 1]\n            j -= 1\n    return xs\n",
        None,
    ),
    "word_freq": (
        "import collections, json\n"
        "def word_freq(text):\n"
        "    return json.loads(json.dumps(collections.Counter(text.lower().split())))\n",
        None,
    ),
}

BUGGY = {
    "total": "def total(xs):\n    return sum(xs[1:])\n",
    "fib": "def fib(n):\n    a, b = 0, 1\n    for _ in range(n - 1):\n"
    "        a, b = b, a + b\n    return a\n",
    "is_prime": "def is_prime(n):\n    return all(n % i for i in range(2, n))\n",
    "reverse_words": "def reverse_words(s):\n    return s[::-1]\n",
    "gcd": "def gcd(a, b):\n    return a % b if b else a\n",
    "insertion_sort": "def insertion_sort(xs):\n    return list(xs)\n",
    "word_freq": "def word_freq(text):\n    return {w: 1 for w in text.split()}\n",
}

WORDS = ["alpha", "beta", "gamma", "delta", "Alpha", "beta", "epsilon", "zeta", "eta", "theta"]


def _fib(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def _is_prime(n: int) -> bool:
    return n >= 2 and all(n % i for i in range(2, int(n**0.5) + 1))


def _asserts(name: str, rng: random.Random) -> str:
    lines = []
    for _ in range(4):
        if name == "total":
            xs = [rng.randint(-50, 50) for _ in range(rng.randint(1, 8))]
            lines.append(f"assert total({xs}) == {sum(xs)}")
        elif name == "fib":
            n = rng.randint(2, 60)
            lines.append(f"assert fib({n}) == {_fib(n)}")
        elif name == "is_prime":
            n = rng.choice([0, 1, 2, 3, 4, 9, 17, 25, 97, 221, 7919, rng.randint(0, 10_000)])
            lines.append(f"assert is_prime({n}) is {_is_prime(n)}")
        elif name == "reverse_words":
            words = rng.sample(WORDS, rng.randint(2, 5))
            lines.append(
                f"assert reverse_words({' '.join(words)!r}) == {' '.join(reversed(words))!r}"
            )
        elif name == "gcd":
            a, b = rng.randint(1, 10_000), rng.randint(1, 10_000)
            import math

            lines.append(f"assert gcd({a}, {b}) == {math.gcd(a, b)}")
        elif name == "insertion_sort":
            xs = [rng.randint(0, 99) for _ in range(rng.randint(2, 30))]
            lines.append(f"assert insertion_sort({xs}) == {sorted(xs)}")
        elif name == "word_freq":
            words = [rng.choice(WORDS) for _ in range(rng.randint(1, 12))]
            counts: dict[str, int] = {}
            for word in words:
                counts[word.lower()] = counts.get(word.lower(), 0) + 1
            lines.append(f"assert word_freq({' '.join(words)!r}) == {counts!r}")
    return "\n".join(lines)


def corpus(count: int, seed: int = 0) -> list[dict[str, object]]:
    """`count` programs with their tests: ~1/3 wrong, 2% raise, 1% loop forever."""
    rng = random.Random(seed)
    names = sorted(CORRECT)
    tasks = []
    for n in range(count):
        name = names[n % len(names)]
        if n % 100 == 57:
            code = "def solve():\n    while True:\n        pass\n\nsolve()\n"
        elif n % 50 == 13:
            code = f"{CORRECT[name][0]}\nraise KeyError('missing {n}')\n"
        else:
            source = BUGGY[name] if rng.random() < 0.33 else CORRECT[name][0]
            code = f"{source}\n{_asserts(name, rng)}\nprint('ok')\n"
        tasks.append({"id": f"task-{n}", "code": code})
    return tasks


def real_python3() -> str:
    """The interpreter `python3` names, resolved (a version manager's shim is a shell script
    whose start would be charged to the baseline)."""
    found = shutil.which("python3") or sys.executable
    return subprocess.check_output(
        [found, "-c", "import sys; print(sys.executable)"], text=True
    ).strip()


def subprocess_harness(tasks: list[dict[str, object]], cores: int) -> dict[str, str]:
    """One `python3 -I -c CODE` process per task, `cores` at a time; passed = exit code 0."""
    python = real_python3()

    def one(task: dict[str, object]) -> tuple[str, str]:
        try:
            done = subprocess.run(
                [python, "-I", "-c", str(task["code"])],
                capture_output=True,
                stdin=subprocess.DEVNULL,
                timeout=TIMEOUT_SECONDS,
            )
        except subprocess.TimeoutExpired:
            return str(task["id"]), "timeout"
        return str(task["id"]), "pass" if done.returncode == 0 else "fail"

    with concurrent.futures.ThreadPoolExecutor(cores) as pool:
        return dict(pool.map(one, tasks))


def outcome(result: dict[str, object]) -> str:
    """`pass`, `fail` or what else ended the task (a limit, an error)."""
    if result["error"] is not None:
        return "error"
    if result["limit"] is not None:
        return str(result["limit"])
    return "pass" if result["exit_code"] == 0 else "fail"


def cli_batch(tasks_path: Path, cores: int, extra: list[str] | None = None) -> dict[str, str]:
    out = tasks_path.with_suffix(".results.jsonl")
    out.unlink(missing_ok=True)
    command = [sys.executable, "-m", "agentbox", "batch", str(tasks_path), "-o", str(out)]
    command += ["--timeout", str(TIMEOUT_SECONDS), "--workers", str(cores), *(extra or [])]
    subprocess.run(command, check=True, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = [json.loads(line) for line in out.read_text().splitlines()]
    return {r["id"]: outcome(r) for r in results}


def batch_settings(allocator: str, resident: int):  # type: ignore[no-untyped-def]
    """The batch's settings with instances made the `allocator` way."""
    from agentbox.batch.api import settings_from

    settings = settings_from(timeout=TIMEOUT_SECONDS)
    if allocator == "recycled":
        return dataclasses.replace(settings, recycle=True, pooling=False)
    if allocator == "on-demand":
        return dataclasses.replace(settings, recycle=False, pooling=False)
    if allocator == "resident":
        return dataclasses.replace(settings, recycle=False, pooling=True, resident_memory=resident)
    return dataclasses.replace(settings, recycle=False, pooling=True, resident_memory=0)


def api_batch(
    tasks: list[dict[str, object]], cores: int, allocator: str = "recycled", resident: int = 0
) -> dict[str, str]:
    from agentbox.batch import run_batch

    settings = batch_settings(allocator, resident)
    results = run_batch(tasks, workers=cores, settings=settings)
    return {str(r.id): outcome(r.to_json()) for r in results}


def children_cpu() -> float:
    """CPU seconds of the child processes waited for so far (a command's workers included)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(function, *args):  # type: ignore[no-untyped-def]
    """(wall seconds, child CPU seconds, value)."""
    started, cpu = time.perf_counter(), children_cpu()
    value = function(*args)
    return time.perf_counter() - started, children_cpu() - cpu, value


def breakdown(
    tasks: list[dict[str, object]], samples: int, allocators: list[str], resident: int
) -> dict[str, dict[str, float]]:
    """Per-task cost inside a worker, in ms (p50), per allocator, measured on the wasm
    engine's own parts (each allocator its own engine, in one process, alternating).

    A fresh instance per task (on-demand, pooled, resident): instantiating it, its first run
    (which pays the first touch of the memory image's pages), a second run of the same script
    in it (the run itself), and freeing it. A recycled instance (what batch workers use): the
    run in the kept instance, and putting its memory back (`LinearMemory.restore`). Then the
    CPU time of what one task costs (without the second run) and its minor page faults."""
    from agentbox.engines.base import RunSettings, ScriptRequest
    from agentbox.engines.wasm.engine import GuestInstance
    from agentbox.engines.wasm.pooling import PoolingSettings, slots_for
    from agentbox.engines.wasm.recycle import LinearMemory
    from agentbox.engines.wasm.runtime import build_runtime
    from agentbox.limits import Limits
    from agentbox.skills import SkillSet

    settings = RunSettings(limits=Limits(timeout=TIMEOUT_SECONDS * 5))
    runtimes = {}
    kept = {}
    for allocator in allocators:
        pooling = None
        if allocator in ("pooled", "resident"):
            keep = resident if allocator == "resident" else 0
            pooling = PoolingSettings(slots_for(1), settings.limits.memory, keep)
        runtimes[allocator] = build_runtime(False, pooling)
        if allocator == "recycled":
            instance = GuestInstance(runtimes[allocator], settings)
            memory = LinearMemory.find(instance)
            if memory is None:
                raise SystemExit("recycling is not available here")
            kept[allocator] = (instance, memory)
    passing = [t for t in tasks if not looping(t)]
    keys = ("instantiate", "first", "second", "free", "cpu", "faults")
    rows: dict[str, dict[str, list[float]]] = {a: {k: [] for k in keys} for a in allocators}

    def faults() -> int:
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

    for n in range(samples):
        request = ScriptRequest(source=str(passing[n % len(passing)]["code"]).encode())
        for allocator, runtime in runtimes.items():
            row = rows[allocator]
            cpu, faulted = time.process_time(), faults()
            started = time.perf_counter()
            if allocator == "recycled":
                instance, memory = kept[allocator]
                instance.run(request, SkillSet().bind_run())
                ran = time.perf_counter()
                assert memory.restore()
                freed = time.perf_counter()
                row["cpu"].append((time.process_time() - cpu) * 1000)
                row["faults"].append(faults() - faulted)
                for key, value in (("instantiate", 0.0), ("first", ran - started)):
                    row[key].append(value * 1000)
                row["second"].append((ran - started) * 1000)
                row["free"].append((freed - ran) * 1000)
                continue
            instance = GuestInstance(runtime, settings)
            instance.instantiate()
            instantiated = time.perf_counter()
            instance.run(request, SkillSet().bind_run())
            first = time.perf_counter()
            first_faults = faults() - faulted
            instance.run(request, SkillSet().bind_run())
            second = time.perf_counter()
            # Dropped here rather than by `discard` (which hands it to a thread that waits a
            # few ms first): the store and the instance are the last references.
            instance.usable = False
            del instance.store, instance._instance
            freed = time.perf_counter()
            # A cycle without the second run: what one task costs.
            row["cpu"].append((time.process_time() - cpu) * 1000 - (second - first) * 1000)
            row["faults"].append(first_faults)
            row["instantiate"].append((instantiated - started) * 1000)
            row["first"].append((first - instantiated) * 1000)
            row["second"].append((second - first) * 1000)
            row["free"].append((freed - second) * 1000)
    table = {}
    for allocator, row in rows.items():
        median = {k: statistics.median(v) for k, v in row.items()}
        table[allocator] = {
            "instantiate": median["instantiate"],
            "first-touch page faults (first run - second run)": median["first"] - median["second"],
            "run (a second run in the same instance)": median["second"],
            "free (fresh) / restore the memory (recycled)": median["free"],
            "one task's CPU (without the second run)": median["cpu"],
            "minor page faults per task": median["faults"],
        }
    return table


def looping(task: dict[str, object]) -> bool:
    return "while True" in str(task["code"])


def measure(  # type: ignore[no-untyped-def]
    title: str,
    tasks: list[dict[str, object]],
    workdir: Path,
    args,
    allocators: list[str],
    resident: int,
    cluster: "RayCluster | None",
) -> None:
    """Every harness on `tasks`, in rounds that alternate them; prints throughput and ratios."""
    tasks_path = workdir / "tasks.jsonl"
    tasks_path.write_text("".join(json.dumps(t) + "\n" for t in tasks))
    timings: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    verdicts: dict[str, dict[str, str]] = {}
    harnesses = [
        ("python3 -I per task", lambda: subprocess_harness(tasks, args.cores)),
        ("agentbox batch (command, end to end)", lambda: cli_batch(tasks_path, args.cores)),
    ]
    for allocator in allocators:
        harnesses.append(
            (
                f"run_batch() (API), {allocator}",
                lambda allocator=allocator: api_batch(tasks, args.cores, allocator, resident),
            )
        )
    if cluster is not None:
        harnesses.append(
            (
                "agentbox batch --ray (local cluster)",
                lambda: cli_batch(tasks_path, args.cores, ["--ray", cluster.address]),
            )
        )
    if args.no_baseline:
        harnesses = harnesses[1:]
    for _ in range(args.rounds):
        for name, harness in harnesses:
            seconds, cpu_seconds, verdict = timed(harness)
            timings.setdefault(name, []).append(seconds)
            cpu.setdefault(name, []).append(cpu_seconds)
            verdicts[name] = verdict

    base_name = harnesses[0][0]
    baseline = verdicts[base_name]
    passed = sum(v == "pass" for v in baseline.values())
    print(f"\n== {title}: {len(tasks)} programs, {passed} pass ({base_name})")
    for name, verdict in verdicts.items():
        differ = [
            f"{k}: {baseline[k]} vs {verdict.get(k)}"
            for k in sorted(baseline)
            if (verdict.get(k) == "pass") != (baseline[k] == "pass")
        ]
        print(
            f"  {name}: pass/fail identical per task: {not differ}"
            + (f" (differ: {differ[:5]})" if differ else "")
        )
    print(
        f"throughput on {args.cores} cores, {args.rounds} rounds alternating (median; best);"
        " CPU: of the harness's processes per task (Ray: the driver's only)"
    )
    reference = statistics.median(timings[base_name])
    for name, seconds in timings.items():
        median = statistics.median(seconds)
        rate = len(tasks) / median
        task_cpu = statistics.median(cpu[name]) / len(tasks) * 1000
        print(
            f"  {name:<40} {median:6.2f} s  {rate:7.1f} tasks/s  {rate / args.cores:6.1f} /core"
            f"  x{reference / median:5.2f} vs {base_name[:12]}"
            f"  CPU {task_cpu:5.2f} ms/task   (best {len(tasks) / min(seconds):.1f} tasks/s)"
        )


class RayCluster:
    """A one-node Ray cluster started here (`ray start --head --block` in a process group of
    its own), stopped by killing that group: never `ray stop`, which stops every Ray on the
    machine."""

    def __init__(self, cpus: int) -> None:
        def free_port() -> int:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                return int(probe.getsockname()[1])

        port = free_port()
        self.address = f"127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("ray")),
                "start",
                "--head",
                "--block",
                f"--port={port}",
                f"--num-cpus={cpus}",
                "--node-ip-address=127.0.0.1",
                "--include-dashboard=false",
                "--disable-usage-stats",
                f"--dashboard-port={free_port()}",
                f"--temp-dir={tempfile.mkdtemp(prefix='agentbox-ray-')}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for _ in range(1200):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if self.process.poll() is not None:
                raise SystemExit("ray start --head failed")
            time.sleep(0.1)

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cores", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--samples", type=int, default=200, help="for the per-task breakdown")
    parser.add_argument("--ray", action="store_true", help="also measure --ray on a local cluster")
    parser.add_argument(
        "--no-baseline",
        action="store_true",
        help="skip the python3 -I harness (for long local-vs-Ray runs); compare with local",
    )
    parser.add_argument(
        "--allocators",
        default="recycled,on-demand",
        help="run_batch() once per way of making instances (comma-separated: recycled, the"
        " default; on-demand, a fresh instance per task; pooled; resident)",
    )
    parser.add_argument(
        "--resident", default="32M", help="bytes of each slot kept resident (resident allocator)"
    )
    args = parser.parse_args()
    from agentbox.limits import parse_size

    allocators = [a.strip() for a in args.allocators.split(",") if a.strip()]
    resident = parse_size(args.resident)

    tasks = corpus(args.tasks)
    workdir = Path(tempfile.mkdtemp(prefix="agentbox-batch-bench-"))
    cluster = RayCluster(args.cores) if args.ray else None
    ending = [t for t in tasks if not looping(t)]
    corpora = [
        ("programs that end by themselves (pass, fail or raise)", ending),
        (f"the whole corpus ({len(tasks) - len(ending)} loop until the timeout)", tasks),
    ]
    try:
        for title, chosen in corpora:
            measure(title, chosen, workdir, args, allocators, resident, cluster)
    finally:
        if cluster is not None:
            cluster.stop()
    print(f"\nper task inside a worker (p50 ms; resident: {resident >> 20} MiB kept per slot):")
    table = breakdown(tasks, args.samples, allocators, resident)
    print(f"  {'':<52}" + "".join(f"{a:>11}" for a in allocators))
    for row in next(iter(table.values())):
        print(f"  {row:<52}" + "".join(f"{table[a][row]:11.2f}" for a in allocators))


if __name__ == "__main__":
    main()
