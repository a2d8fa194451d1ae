"""What the scratch space and returned files cost a run (issue 16; target: under 10% more).

Side by side, in one run on this machine: `Sandbox.run('pass')` with this guest (an empty
in-memory /tmp and /output in every run, collected at its end) against the same host running
a guest built without them (`--baseline-guest DIR`: a `sandbox.wasm` + `sandbox.json` built
from an earlier commit, e.g. `git archive <commit> guest | tar -x -C /tmp/base && python
/tmp/base/guest/build.py --output-dir /tmp/base/out`). The two run in alternating child
processes, so machine noise hits both alike. Also, with this guest: a run that writes a CSV
to /tmp and reads it back, and one that leaves a 1 KB file in /output.

    python benchmarks/files.py --baseline-guest /tmp/base/out [--runs 200] [--rounds 3]
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import measure, p50, print_table

CSV_SCRIPT = (
    "import csv\nwith open('/tmp/t.csv', 'w', newline='') as f:\n"
    "    csv.writer(f).writerows([[1, 2], [3, 4]])\nprint(len(open('/tmp/t.csv').read()))"
)
OUTPUT_SCRIPT = "open('/output/out.txt', 'w').write('x' * 1000)"


def child(guest_dir: str | None, runs: int) -> None:
    """Print the samples of this process's guest as JSON (the parent alternates guests)."""
    if guest_dir:
        from agentbox.engines.wasm import runtime
        from agentbox.engines.wasm.guest_image import GuestImage

        folder = Path(guest_dir)
        metadata = json.loads((folder / "sandbox.json").read_text())
        image = GuestImage(
            folder / "sandbox.wasm",
            metadata["sha256"],
            metadata["size"],
            metadata["componentize_py"],
        )
        runtime.guest_image = lambda: image  # type: ignore[assignment]
    from agentbox import Sandbox

    sandbox = Sandbox()
    sandbox.warmup()
    samples = {"pass": measure(lambda: sandbox.run("pass"), runs, warmup=20)}
    if not guest_dir:
        samples["csv"] = measure(lambda: sandbox.run(CSV_SCRIPT), runs)
        samples["output"] = measure(lambda: sandbox.run(OUTPUT_SCRIPT), runs)
    print(json.dumps(samples))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-guest", required=True, help="folder of the older guest")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="alternating child processes")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child or None, args.runs)
        return
    totals: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for name, guest in (("baseline", args.baseline_guest), ("this", "")):
            command = [sys.executable, __file__, "--baseline-guest", "-", "--child", guest]
            output = subprocess.run(
                [*command, "--runs", str(args.runs)], check=True, capture_output=True, text=True
            ).stdout
            for key, samples in json.loads(output.splitlines()[-1]).items():
                totals.setdefault(f"{name}:{key}", []).extend(samples)
    rows = [
        ("Sandbox.run('pass'), guest without /tmp", totals["baseline:pass"]),
        ("Sandbox.run('pass'), empty /tmp and /output", totals["this:pass"]),
        ("  a CSV written to /tmp and read back", totals["this:csv"]),
        ("  a 1 KB file left in /output (returned)", totals["this:output"]),
    ]
    print(f"{args.rounds} x {args.runs} runs per guest, alternating processes; 2 cores, shared\n")
    print_table(rows, baseline=rows[0][0])
    extra = p50(totals["this:pass"]) / p50(totals["baseline:pass"]) - 1
    print(f"\nextra cost of an empty /tmp and /output per run: {extra:+.1%} (target < +10%)")


if __name__ == "__main__":
    main()
