"""Start-up of the agentbox binary against a bare PyInstaller onefile hello-world.

    python benchmarks/binary.py [--runs 20] [--reuse]

Builds (into build/bench/ and dist/bench/) a bare onefile hello-world with the same PyInstaller
and options as the real build (`--onefile --strip --noupx`), agentbox's onefile binary and a
onedir build of agentbox, then times each command N times as separate processes (as hyperfine
does; the commands take turns, so load on a shared machine hits them alike) and prints median
and p95 side by side, the sizes, and the ratio warm run / bare floor. `--reuse` skips the
builds whose output already exists. Every run gets an empty HOME; the warm agentbox runs share
one cache folder (filled by an untimed first run), each first run gets a fresh one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "packaging"))

import build_binary  # noqa: E402

HELLO = 'print("hello")\n'
SCRIPT = b"print(1)\n"


def build_hello(build: Path, dist: Path) -> Path:
    import PyInstaller.__main__

    source = build / "hello.py"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text(HELLO)
    options = ["--onefile", "--noupx", "--noconfirm", "--log-level=WARN", "--name=hello"]
    if build_binary.STRIP:
        options.append("--strip")
    PyInstaller.__main__.run(
        [
            str(source),
            *options,
            f"--distpath={dist}",
            f"--workpath={build / 'hello'}",
            f"--specpath={build / 'hello'}",
        ]
    )
    return dist / ("hello.exe" if sys.platform == "win32" else "hello")


def run_once(command: Sequence[str], env: dict[str, str], stdin: bytes = b"") -> float:
    """Wall-clock seconds of one run; a failed run stops the benchmark."""
    started = time.perf_counter()
    completed = subprocess.run(command, input=stdin, capture_output=True, env=env)
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"{command} failed ({completed.returncode}): {completed.stderr!r}")
    return elapsed


def time_interleaved(
    commands: dict[str, tuple[list[str], bytes]], runs: int, env: dict[str, str]
) -> dict[str, list[float]]:
    """`runs` timed runs of each command, taken in turns so that load on a shared machine
    affects every command alike; each command runs once untimed first."""
    timings: dict[str, list[float]] = {label: [] for label in commands}
    for index in range(runs + 1):
        for label, (command, stdin) in commands.items():
            elapsed = run_once(command, env, stdin)
            if index:
                timings[label].append(elapsed)
    return timings


def summary(timings: list[float]) -> tuple[float, float]:
    ordered = sorted(timings)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


def size(path: Path) -> int:
    if path.is_dir():
        return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())
    return path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--reuse", action="store_true", help="reuse builds that exist")
    parser.add_argument("--binary", type=Path, help="the agentbox onefile binary to measure")
    options = parser.parse_args()

    build, dist = ROOT / "build" / "bench", ROOT / "dist" / "bench"
    hello = dist / ("hello.exe" if sys.platform == "win32" else "hello")
    if not (options.reuse and hello.exists()):
        hello = build_hello(build, dist)
    onefile = options.binary or ROOT / "dist" / build_binary.artifact_name(
        build_binary.current_target()
    )
    if not (options.binary or (options.reuse and onefile.exists())):
        onefile = build_binary.build()
    onedir = dist / "agentbox-onedir" / "agentbox-onedir"
    if not (options.reuse and onedir.exists()):
        onedir = build_binary.build(
            onedir=True, name="agentbox-onedir", build=build / "onedir", dist=dist
        )

    with tempfile.TemporaryDirectory(prefix="agentbox-bench-") as scratch:
        home, cache = Path(scratch) / "home", Path(scratch) / "cache"
        home.mkdir()
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "USERPROFILE": str(home)}
        env["AGENTBOX_CACHE_DIR"] = str(cache)
        first = []
        for index in range(max(3, options.runs // 5)):  # each with a cache folder of its own
            fresh = dict(env, AGENTBOX_CACHE_DIR=str(Path(scratch) / f"fresh-{index}"))
            first.append(run_once([str(onefile), "run", "-"], fresh, SCRIPT))
        commands = {
            "bare onefile hello-world (floor)": ([str(hello)], b""),
            "agentbox --version": ([str(onefile), "--version"], b""),
            "agentbox run - (warm)": ([str(onefile), "run", "-"], SCRIPT),
            "onedir agentbox run - (warm)": ([str(onedir), "run", "-"], SCRIPT),
        }
        timings = time_interleaved(commands, options.runs, env)
    rows = [*timings.items(), ("agentbox run - (first run)", first)]

    print(f"{'':34} {'median':>9} {'p95':>9}  runs")
    for label, values in rows:
        median, p95 = summary(values)
        print(f"{label:34} {median * 1000:7.0f} ms {p95 * 1000:6.0f} ms  {len(values)}")
    floor = summary(timings["bare onefile hello-world (floor)"])[0]
    warm = summary(timings["agentbox run - (warm)"])[0]
    print(f"\nwarm run / bare floor: {warm / floor:.2f}x (target <= 1.5x)")
    print(
        f"sizes: hello {size(hello) / 1e6:.1f} MB, agentbox {size(onefile) / 1e6:.1f} MB, "
        f"onedir folder {size(onedir.parent) / 1e6:.1f} MB"
    )


if __name__ == "__main__":
    main()
