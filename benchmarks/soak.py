"""Soak test: many sequential `Sandbox.run` calls in one process; does host memory grow?

    .venv/bin/python benchmarks/soak.py            # 10,000 runs
    .venv/bin/python benchmarks/soak.py --runs 2000

The mix: print, json + re, an uncaught exception, and every `--every` runs a timeout and a
memory-limit hit. Prints the process RSS (VmRSS) at start, every `--every` runs and at the end,
with the growth, and fails (exit 1) if any run gave an unexpected result.
"""

import argparse
import gc
import resource
import sys
import threading
import time
from pathlib import Path

from agentbox import ExitCode, Sandbox

PRINT = "print('hello', 6 * 7)"
JSON_RE = (
    "import json, re\n"
    "data = json.loads(json.dumps({'words': 'alpha beta gamma ' * 20}))\n"
    "print(len(re.findall(r'\\b\\w+a\\b', data['words'])))"
)
EXCEPTION = "def f():\n    raise ValueError('boom')\nf()"
TIMEOUT = "while True:\n    pass"
MEMORY = "data = bytearray(10**9)"

ROUTINE = [
    (PRINT, ExitCode.OK, None, "hello 42\n"),
    (JSON_RE, ExitCode.OK, None, "60\n"),
    (EXCEPTION, ExitCode.SCRIPT_ERROR, None, ""),
]


def rss_mib() -> float:
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    # Fallback (peak, not current): ru_maxrss is KiB on Linux, bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--every", type=int, default=1000, help="limit hits and RSS reports")
    parser.add_argument("--timeout", type=float, default=1.0, help="the sandbox's timeout")
    parser.add_argument(
        "--max-rss",
        type=float,
        default=4096,
        help="stop early (exit 2) when RSS passes this many MiB: a leak must not take the "
        "machine down",
    )
    options = parser.parse_args()

    sandbox = Sandbox(timeout=options.timeout, memory="128M", max_output="1M")
    sandbox.warmup()
    sandbox.run(PRINT)  # first run: lazy imports, caches
    gc.collect()
    start_rss = rss_mib()
    print(f"start: rss {start_rss:.1f} MiB, threads {threading.active_count()}", flush=True)
    failures: list[str] = []
    counts = {"routine": 0, "timeout": 0, "memory": 0}
    started = time.perf_counter()
    stopped = False
    for index in range(1, options.runs + 1):
        if index % options.every == 0:
            cases = [
                (TIMEOUT, ExitCode.TIMEOUT, "timeout", ""),
                (MEMORY, ExitCode.MEMORY, "memory", ""),
            ]
        elif index % options.every == 1 and index > 1:
            cases = [(MEMORY, ExitCode.MEMORY, "memory", "")]
        else:
            cases = [ROUTINE[index % len(ROUTINE)]]
        for code, exit_code, limit, stdout in cases:
            result = sandbox.run(code)
            counts[limit or "routine"] += 1
            if (result.exit_code, result.limit) != (exit_code, limit) or (
                stdout and result.stdout != stdout
            ):
                failures.append(f"run {index}: {result.exit_code} {result.limit} {result.message}")
        if rss_mib() > options.max_rss:
            print(
                f"stopped at run {index}: rss {rss_mib():.1f} MiB > --max-rss {options.max_rss:g}"
            )
            stopped = True
            break
        if index % options.every == 0:
            gc.collect()
            rss = rss_mib()
            elapsed = time.perf_counter() - started
            print(
                f"{index:>6} runs: rss {rss:.1f} MiB ({rss - start_rss:+.1f}), "
                f"threads {threading.active_count()}, {elapsed:.1f} s",
                flush=True,
            )
    gc.collect()
    end_rss = rss_mib()
    elapsed = time.perf_counter() - started
    total = sum(counts.values())
    growth = end_rss - start_rss
    print(f"end: {total} runs ({counts}) in {elapsed:.1f} s")
    print(
        f"rss {start_rss:.1f} -> {end_rss:.1f} MiB "
        f"(growth {growth:+.1f} MiB, {1024 * growth / total:+.2f} KiB/run)"
    )
    for failure in failures[:20]:
        print("unexpected:", failure)
    print(f"unexpected results: {len(failures)}")
    if stopped:
        return 2
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
