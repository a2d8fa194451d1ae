"""PyInstaller runtime hook (added by packaging/build_binary.py for onefile builds): make
wasmtime load its library from the payload unpacked into the user cache, not from the bundle."""

import _agentbox_payload

_agentbox_payload.install()
