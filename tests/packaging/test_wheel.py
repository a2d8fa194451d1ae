"""The sdist and wheel, as `pip install agentbox-wasm` users get them: built from a copy of the
checkout that has no guest, installed into a new virtual environment, run.

Slow (builds the guest, ~1-3 min on 2 cores): marked `binary`, run by `make smoke`.
"""

import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "packaging"))

import build_wheel  # noqa: E402

pytestmark = pytest.mark.binary

# Generous: a guest build and a compile on a busy 2-core machine (a hang guard, not a target).
HANG_GUARD_SECONDS = 1800


def _source_copy(destination: Path) -> Path:
    """The files a clean clone would have (tracked, plus new files not ignored), no guest."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = ROOT / name.decode()
        if source.is_file():
            target = destination / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    assert not (destination / "agentbox" / "guest" / "sandbox.wasm").exists()
    return destination


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    source = _source_copy(tmp_path_factory.mktemp("checkout"))
    built = build_wheel.build(source, tmp_path_factory.mktemp("dist"))
    return {path.suffix: path for path in built}


def test_the_sdist_carries_the_guest_sources_not_a_built_guest(artifacts: dict[str, Path]) -> None:
    with tarfile.open(artifacts[".gz"]) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert {"guest/wit/agentbox.wit", "guest/build.py", "hatch_build.py"} <= names
    assert not {name for name in names if name.startswith("agentbox/guest/sandbox.")}


def test_the_wheel_built_from_the_sdist_runs_a_script(
    artifacts: dict[str, Path], tmp_path: Path
) -> None:
    with zipfile.ZipFile(artifacts[".whl"]) as wheel:
        assert {"agentbox/guest/sandbox.wasm", "agentbox/guest/sandbox.json"} <= set(
            wheel.namelist()
        )
    environment = tmp_path / "venv"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", str(artifacts[".whl"])],
        check=True,
        timeout=HANG_GUARD_SECONDS,
    )
    result = subprocess.run(
        [environment / "bin" / "agentbox", "run", "-"],
        input=b"import sys; print(sys.implementation.name, 6 * 7)",
        capture_output=True,
        cwd=tmp_path,
        env={"AGENTBOX_CACHE_DIR": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"},
        timeout=HANG_GUARD_SECONDS,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"cpython 42\n"
