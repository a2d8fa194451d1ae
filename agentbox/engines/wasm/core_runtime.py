"""Process-wide wasmtime state for a core-module image (the data image): Engine, Linker, Module.

The data image is a core wasip1 module, not a component: it needs wasm exceptions and SIMD,
WASI preview 1 from `define_wasi()`, and one import of ours, `host.call` (see `door`). Like the
component runtime, everything here is built once per process and configuration; a run creates
only a Store and an instance. The epoch ticker is the component runtime's own class.
"""

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from wasmtime import Config, Engine, FuncType, Linker, Module, ValType

from agentbox.engines.base import Progress
from agentbox.engines.wasm import compile_cache, door
from agentbox.engines.wasm.runtime import EpochTicker, log_progress


class CoreImage(Protocol):
    """What the runtime needs of an image (`DataImage` has it)."""

    @property
    def name(self) -> str: ...

    @property
    def module(self) -> Path: ...

    @property
    def sha256(self) -> str: ...


@dataclass
class CoreRuntime:
    engine: Engine
    linker: Linker
    module: Module
    ticker: EpochTicker


def engine_description(fuel: bool) -> str:
    """Every Engine setting that changes compiled code (part of the cache key)."""
    return f"core;epoch_interruption=1;consume_fuel={int(fuel)};wasm_exceptions=1;simd=1"


def _engine(fuel: bool) -> Engine:
    config = Config()
    config.epoch_interruption = True
    config.consume_fuel = fuel
    config.wasm_exceptions = True  # CPython for wasip1 is built with wasm exception handling
    config.wasm_simd = True
    return Engine(config)


def _linker(engine: Engine) -> Linker:
    linker = Linker(engine)
    linker.define_wasi()
    i32 = ValType.i32()
    linker.define_func("host", "call", FuncType([i32] * 4, [i32]), door.call, access_caller=True)
    return linker


_runtimes: dict[tuple[str, bool], CoreRuntime] = {}
_lock = threading.Lock()


def core_runtime_ready(image: CoreImage, fuel: bool = False) -> bool:
    """Whether the runtime is built (so `get_core_runtime` returns at once, compiling nothing)."""
    return (image.sha256, fuel) in _runtimes


def get_core_runtime(
    image: CoreImage, fuel: bool = False, progress: Progress = log_progress
) -> CoreRuntime:
    """The shared runtime for this image and engine configuration, compiled on first use."""
    with _lock:
        runtime = _runtimes.get((image.sha256, fuel))
        if runtime is None:
            engine = _engine(fuel)
            module = compile_cache.load_module(
                engine, image, image.module, engine_description(fuel), progress, image.name
            )
            runtime = CoreRuntime(engine, _linker(engine), module, EpochTicker(engine))
            _runtimes[(image.sha256, fuel)] = runtime
        return runtime
