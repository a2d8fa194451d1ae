"""Run an installed data image's snapshot with plain wasmtime-py, as a test's independent
check of what the build produced (the product's runtime is agentbox.engines.wasm; this is
deliberately not it)."""

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import wasmtime

from agentbox.engines.wasm.data_image.build import GUEST_ARGV, GUEST_ENV
from agentbox.engines.wasm.data_image.store import DataImage


@dataclass(frozen=True)
class Turn:
    exit_code: int
    stdout: str
    stderr: str
    seconds_instantiate: float
    seconds_turn: float


def compile_image(image: DataImage) -> tuple[wasmtime.Engine, wasmtime.Module]:
    engine = wasmtime.Engine(wasmtime.Config())
    return engine, wasmtime.Module.from_file(engine, str(image.module))


def turn(
    engine: wasmtime.Engine,
    module: wasmtime.Module,
    image: DataImage,
    source: str,
    extra_preopens: Sequence[tuple[Path, str]] = (),
) -> Turn:
    """A fresh instance of the snapshot, one `turn` of `source`."""
    with tempfile.TemporaryDirectory() as scratch:
        out, err = Path(scratch, "out"), Path(scratch, "err")
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        i32 = wasmtime.ValType.i32()
        linker.define_func("host", "call", wasmtime.FuncType([i32] * 4, [i32]), lambda *_: -1)
        store = wasmtime.Store(engine)
        wasi = wasmtime.WasiConfig()
        wasi.argv = list(GUEST_ARGV)
        wasi.env = sorted(GUEST_ENV.items())
        for host, guest in [*image.preopens, *extra_preopens]:
            wasi.preopen_dir(str(host), guest, False)
        wasi.stdout_file, wasi.stderr_file = str(out), str(err)
        store.set_wasi(wasi)
        started = time.perf_counter()
        exports = linker.instantiate(store, module).exports(store)
        instantiated = time.perf_counter()
        data = source.encode()
        pointer = exports["host_alloc"](store, len(data))
        exports["memory"].write(store, data, pointer)
        code = exports["turn"](store, pointer, len(data))
        done = time.perf_counter()
        return Turn(
            code,
            out.read_text(errors="replace"),
            err.read_text(errors="replace"),
            instantiated - started,
            done - instantiated,
        )
