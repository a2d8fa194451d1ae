"""Process-wide wasmtime state: one Engine per configuration, its Linker, its compiled guest.

Everything here is built once per process and shared by every run; a run only creates a Store
and an instance. Fuel metering changes the compiled code, so it is a separate Engine (and a
separate cache entry), made only when a run asks for a fuel budget. A process that runs many
instances back to back (a batch worker) may switch its engines to the pooling allocator with
`use_pooling` before its first run (see `agentbox.engines.wasm.pooling`).
"""

import threading
import time
from dataclasses import dataclass
from typing import BinaryIO

from wasmtime import Config, Engine, Store
from wasmtime.component import Component, Linker

from agentbox import log
from agentbox.engines.base import Progress
from agentbox.engines.wasm import compile_cache, host_functions
from agentbox.engines.wasm.guest_image import guest_image
from agentbox.engines.wasm.pooling import PoolingSettings
from agentbox.engines.wasm.pooling import apply as apply_pooling

# How often the epoch advances while runs are active: the resolution of wall-clock deadlines.
EPOCH_TICK_SECONDS = 0.01


@dataclass
class Runtime:
    engine: Engine
    linker: Linker
    component: Component
    ticker: "EpochTicker"
    image_file: BinaryIO | None = None
    """The cached compiled file the component was loaded from, kept open: instances map their
    memory image from it, and a recycled instance restores from it even after the cache has
    replaced the file (`agentbox.engines.wasm.recycle`). None if compiled in memory."""


class EpochTicker:
    """Advances the engine's epoch every tick while runs are active, and for a while after.

    A run counts as active until its worker thread returns (see `agentbox.engines.wasm.engine`), not
    only while a caller waits for it: a cancelled or abandoned run still reaches its deadline.

    Deadlines are then per store (`set_epoch_deadline(ticks)`), so concurrent runs with
    different timeouts share one engine without interrupting each other. Ticks are paced by
    the clock (a wake-up for a new run never adds one), and `epoch` counts them so a trap can
    be attributed to the deadline by arithmetic rather than by its message. The ticker keeps
    ticking for LINGER_SECONDS after the last run, so runs in quick succession do not each pay
    for waking its thread.
    """

    LINGER_SECONDS = 2.0

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._active = 0
        self._idle_since = 0.0
        self._sleeping = False
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None
        self.epoch = 0

    def ticks_for(self, seconds: float) -> int:
        return max(1, round(seconds / EPOCH_TICK_SECONDS)) + 1

    def arm(self, store: Store, seconds: float) -> int:
        """Set `store`'s deadline `seconds` from now; return the epoch at which it fires."""
        ticks = self.ticks_for(seconds)
        with self._condition:
            store.set_epoch_deadline(ticks)
            return self.epoch + ticks

    def __enter__(self) -> "EpochTicker":
        with self._condition:
            self._active += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._tick_forever, name="agentbox-epoch", daemon=True
                )
                self._thread.start()
            elif self._sleeping:
                self._condition.notify()
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self._condition:
            self._active -= 1
            if self._active == 0:
                self._idle_since = time.monotonic()

    def _lingered(self) -> bool:
        return self._active == 0 and time.monotonic() >= self._idle_since + self.LINGER_SECONDS

    def _tick_forever(self) -> None:
        next_tick = time.monotonic() + EPOCH_TICK_SECONDS
        while True:
            with self._condition:
                while self._lingered():
                    self._sleeping = True
                    self._condition.wait()
                    self._sleeping = False
                    next_tick = time.monotonic() + EPOCH_TICK_SECONDS
                delay = next_tick - time.monotonic()
                if delay > 0:
                    self._condition.wait(delay)
                    continue
                self.epoch += 1  # first: a run that sees its trap must also see the tick
                self._engine.increment_epoch()
            next_tick += EPOCH_TICK_SECONDS


_runtimes: dict[bool, Runtime] = {}
_lock = threading.Lock()
_pooling: PoolingSettings | None = None


def use_pooling(settings: PoolingSettings | None) -> bool:
    """Build this process's engines with the pooling allocator (None: on demand, the default).
    An engine's allocator is fixed when it is built: once a runtime exists, this changes
    nothing and returns False unless the settings are already those."""
    global _pooling
    with _lock:
        if _runtimes:
            return settings == _pooling
        _pooling = settings
        return True


def pooling_in_use() -> PoolingSettings | None:
    return _pooling


def engine_description(fuel: bool) -> str:
    """Every Engine setting that changes compiled code (part of the cache key). Not the
    allocator: pooled and on-demand engines load the same artifact."""
    return f"epoch_interruption=1;consume_fuel={int(fuel)}"


def log_progress(message: str) -> None:
    log.logger().info(message)


def runtime_ready(fuel: bool = False) -> bool:
    """Whether the runtime is built (so `get_runtime` returns at once, compiling nothing)."""
    return fuel in _runtimes


def build_runtime(
    fuel: bool, pooling: PoolingSettings | None, progress: Progress = log_progress
) -> Runtime:
    """A new runtime (its own Engine); `get_runtime` keeps one per configuration."""
    config = Config()
    config.epoch_interruption = True
    config.consume_fuel = fuel
    if pooling is not None:
        apply_pooling(config, pooling)
    engine = Engine(config)
    component = compile_cache.load_component(
        engine, guest_image(), engine_description(fuel), progress
    )
    linker = Linker(engine)
    linker.add_wasip2()
    host_functions.define_host_functions(linker)
    image_file = compile_cache.open_artifact(guest_image(), engine_description(fuel))
    return Runtime(engine, linker, component, EpochTicker(engine), image_file)


def get_runtime(fuel: bool = False, progress: Progress = log_progress) -> Runtime:
    """The shared runtime for this engine configuration, built (and compiled) on first use."""
    with _lock:
        runtime = _runtimes.get(fuel)
        if runtime is None:
            runtime = build_runtime(fuel, _pooling, progress)
            _runtimes[fuel] = runtime
        return runtime
