"""Execution engines behind one interface: `wasm` (the sandbox) and the weaker fallbacks."""
