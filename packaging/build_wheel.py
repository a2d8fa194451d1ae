"""Build the sdist and, from it, the wheel users install: `python packaging/build_wheel.py`.

`python -m build` makes the sdist first and builds the wheel from it, so a wheel here proves
the sdist is complete; the wheel build runs the guest build (hatch_build.py). Prints each
artifact's size.
"""

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def build(source: Path, outdir: Path) -> list[Path]:
    """Build sdist and wheel of the checkout at `source` into `outdir`; return the artifacts."""
    outdir.mkdir(parents=True, exist_ok=True)
    before = set(outdir.iterdir())
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(outdir), str(source)], check=True
    )
    return sorted(set(outdir.iterdir()) - before)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outdir", type=Path, default=ROOT / "dist")
    args = parser.parse_args(argv)
    for artifact in build(ROOT, args.outdir):
        print(f"{artifact.name}: {artifact.stat().st_size / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
