"""The release workflow builds the binary with the extras whose commands the binary has."""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "packaging"))

from licenses import EXTRAS  # noqa: E402


def test_the_release_build_installs_the_binarys_extras() -> None:
    workflow = (ROOT / ".github" / "workflows" / "release.yml").read_text()
    installs = re.findall(r"pip install [^\n]*-e '?\.\[([a-z,]+)\]", workflow)
    assert installs, "the release workflow no longer installs agentbox with extras"
    for extras in installs:
        assert tuple(extras.split(",")) == EXTRAS
