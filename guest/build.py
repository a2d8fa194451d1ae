"""Build the snapshotted guest: `python guest/build.py` (or `make guest`).

Runs componentize-py on `guest/src` against `guest/wit`, in a scrubbed environment so that no
site-packages of the building interpreter end up on the guest's path, and writes
`agentbox/guest/sandbox.wasm` plus `sandbox.json` (its sha256, read by the host so it never
hashes 30 MB at start-up).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WIT_DIR = ROOT / "guest" / "wit"
SOURCE_DIR = ROOT / "guest" / "src"
OUTPUT_DIR = ROOT / "agentbox" / "guest"
WORLD = "sandbox"
APP_MODULE = "guest_app"
# Variables that would let the building environment leak into the snapshot.
SCRUBBED_VARIABLES = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PIPENV_ACTIVE")


def componentize_py() -> str:
    """The one installed beside this interpreter, else on PATH (a wheel build's isolated
    environment puts its own, pinned in pyproject.toml's build requirements, there)."""
    beside = shutil.which("componentize-py", path=str(Path(sys.executable).parent))
    found = beside or shutil.which("componentize-py")
    if found is None:
        sys.exit("componentize-py is not installed: pip install --group build -e .")
    return found


def build(output: Path) -> str:
    """Build the component into `output` and return its sha256."""
    env = {key: value for key, value in os.environ.items() if key not in SCRUBBED_VARIABLES}
    env["PYTHONHASHSEED"] = "0"
    command = [
        componentize_py(),
        "--quiet",
        "-d",
        str(WIT_DIR),
        "-w",
        WORLD,
        "componentize",
        APP_MODULE,
        "-p",
        str(SOURCE_DIR),
        "-o",
        str(output),
    ]
    subprocess.run(command, check=True, env=env, cwd=SOURCE_DIR)
    return hashlib.sha256(output.read_bytes()).hexdigest()


# The guest's pure-Python modules the data image runs too (it has no WIT imports: its host is
# `door_host`). Shipped as package data and put into the image when it is built (see
# agentbox/engines/wasm/data_image/runner_bundle.py).
DATA_RUNNER_MODULES = (
    "agentbox_guest/__init__.py",
    "agentbox_guest/host_api.py",
    "agentbox_guest/door_host.py",
    "agentbox_guest/shims.py",
    "agentbox_guest/scratch.py",
    "agentbox_guest/runner.py",
    "agentbox_guest/data_entry.py",
    "skills.py",
)
DATA_RUNNER_FILE = "data_runner.json"


def write_data_runner(output_dir: Path) -> None:
    """The data image's runner sources, {path: text}, beside the component."""
    sources = {
        name: (SOURCE_DIR / name).read_text(encoding="utf-8") for name in DATA_RUNNER_MODULES
    }
    (output_dir / DATA_RUNNER_FILE).write_text(json.dumps(sources, indent=1, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=OUTPUT_DIR)
    args = parser.parse_args(argv)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    wasm = args.output_dir / "sandbox.wasm"
    started = time.perf_counter()
    print(f"building the guest into {wasm} ...", file=sys.stderr, flush=True)
    digest = build(wasm)
    metadata = {
        "sha256": digest,
        "size": wasm.stat().st_size,
        "componentize_py": version("componentize-py"),
        "wit_sha256": hashlib.sha256((WIT_DIR / "agentbox.wit").read_bytes()).hexdigest(),
    }
    (args.output_dir / "sandbox.json").write_text(json.dumps(metadata, indent=2) + "\n")
    write_data_runner(args.output_dir)
    elapsed = time.perf_counter() - started
    print(
        f"built {wasm.name}: {metadata['size'] / 2**20:.1f} MiB, sha256 {digest[:16]}…, "
        f"{elapsed:.1f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
