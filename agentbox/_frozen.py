"""What a PyInstaller onefile binary keeps outside its per-start bundle (see
`agentbox/_pyinstaller/payload_runtime.py`): the guest lives in the unpacked payload."""

import importlib
import sys
from pathlib import Path


def guest_folder() -> Path | None:
    """The guest folder unpacked from the binary's payload; None when not running from one."""
    if not getattr(sys, "frozen", False):
        return None
    try:
        payload = importlib.import_module("_agentbox_payload")
    except ImportError:
        return None
    folder: Path = payload.folder()
    return folder / "guest"
