"""The snapshotted guest component shipped inside the package (built by `make guest`)."""

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from agentbox import _frozen
from agentbox.errors import GuestNotBuiltError


@dataclass(frozen=True)
class GuestImage:
    path: Path
    sha256: str
    size: int
    componentize_py: str


@cache
def guest_image() -> GuestImage:
    """Locate the packaged guest and its metadata (written by `guest/build.py`, not hashed here)."""
    folder = _frozen.guest_folder() or Path(str(resources.files("agentbox") / "guest"))
    wasm, metadata_file = folder / "sandbox.wasm", folder / "sandbox.json"
    if not wasm.is_file() or not metadata_file.is_file():
        raise GuestNotBuiltError(
            f"the sandbox guest is not built ({wasm} is missing): run `make guest`"
        )
    metadata = json.loads(metadata_file.read_text())
    return GuestImage(wasm, metadata["sha256"], metadata["size"], metadata["componentize_py"])
