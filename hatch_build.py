"""Hatch build hook: a wheel always carries a built guest.

`pip install .`, `pip wheel .` and a wheel built from the sdist run `guest/build.py` with the
pinned componentize-py (a build requirement in pyproject.toml) unless the guest in
`agentbox/guest/` is already newer than every guest source. A build that cannot make the guest
fails with componentize-py's error instead of shipping a package whose every run exits 70.
Editable installs skip it: `make guest` builds the guest of a checkout.
"""

import importlib.util
import sys
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

ROOT = Path(__file__).resolve().parent
GUEST_OUTPUTS = [
    ROOT / "agentbox" / "guest" / name
    for name in ("sandbox.wasm", "sandbox.json", "data_runner.json")
]


def guest_sources() -> list[Path]:
    return [ROOT / "guest" / "build.py"] + [
        path
        for folder in ("src", "wit")
        for path in (ROOT / "guest" / folder).rglob("*")
        if path.suffix in (".py", ".wit") and "wit_world" not in path.parts
    ]


def guest_is_current() -> bool:
    if not all(path.is_file() for path in GUEST_OUTPUTS):
        return False
    built = min(path.stat().st_mtime for path in GUEST_OUTPUTS)
    return all(source.stat().st_mtime <= built for source in guest_sources())


def build_guest() -> None:
    spec = importlib.util.spec_from_file_location(
        "agentbox_guest_build", ROOT / "guest" / "build.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if module.main([]) != 0:
        sys.exit("agentbox: building the guest failed")


class GuestBuildHook(BuildHookInterface):
    PLUGIN_NAME = "agentbox-guest"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return
        if not guest_is_current():
            build_guest()
