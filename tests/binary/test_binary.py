"""The PyInstaller binary, end to end: the checks of packaging/smoke.py, one test each.

Builds the onefile binary once per module (1-2 min on 2 cores) into build/ and dist/, unless
AGENTBOX_BINARY names an existing one. Run with `make smoke` or `pytest -m binary tests/binary`.
"""

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

PACKAGING = Path(__file__).resolve().parents[2] / "packaging"
sys.path.insert(0, str(PACKAGING))

import smoke  # noqa: E402

pytestmark = pytest.mark.binary


def _build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import build_binary

    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        return build_binary.build()
    # Under xdist every worker builds its own binary: the default folders would collide.
    folder = tmp_path_factory.mktemp(f"build-{worker}")
    return build_binary.build(build=folder / "build", dist=folder / "dist")


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[smoke.Session]:
    """A binary whose cache is filled by the first-run check (which must pass first)."""
    given = os.environ.get("AGENTBOX_BINARY")
    binary = Path(given) if given else _build(tmp_path_factory)
    if not binary.is_file():
        pytest.fail(f"AGENTBOX_BINARY={given} is not a file")
    scratch = tmp_path_factory.mktemp("binary")
    (scratch / "home").mkdir()
    session = smoke.Session(binary, scratch / "home", scratch / "cache")
    smoke.check_first_run(session)
    yield session


def test_first_run(session: smoke.Session) -> None:
    """The fixture ran smoke.check_first_run (empty cache: compiles, says so, answers 2)."""
    assert any(session.cache.glob("*.cwasm"))


@pytest.mark.parametrize("check", smoke.WARM_CHECKS, ids=lambda check: check.__name__)
def test_binary(session: smoke.Session, check: Callable[[smoke.Session], None]) -> None:
    check(session)
