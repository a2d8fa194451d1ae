"""Shared fixtures: one real Sandbox per test session (the compiled guest is shared anyway)."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from agentbox import Sandbox

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


@pytest.fixture(scope="session")
def data_sandbox() -> Sandbox:
    """One data-image Sandbox for the session (the compiled image is shared anyway)."""
    box = Sandbox(image="data", timeout=120)
    box.warmup()
    return box


_IMAGE_SANDBOXES: dict[str, Sandbox] = {}


@pytest.fixture
def image_sandbox(image: str) -> Sandbox:
    """A shared Sandbox per image (as `sandbox`), for the tests run against both images."""
    if image not in _IMAGE_SANDBOXES:
        _IMAGE_SANDBOXES[image] = Sandbox(image=image, timeout=60)
    return _IMAGE_SANDBOXES[image]
