"""Instances of a core-module image (the data image), behind the component instance's interface.

`CoreInstance` is a `BaseInstance`: limits, deadline, abandoning, outcome and result are the
component's code. Only the call differs: the module is instantiated with WASI preview 1 and
`host.call` (see `door`), its `_initialize` runs once, and each run is a `turn` of a fixed
line (TURN_SOURCE) that fetches the request through `host.call` and reports its outcome back.
`run` is never called: it finalises the interpreter.
"""

import atexit
import shutil
import tempfile
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from wasmtime import Instance, Memory, Store

from agentbox.engines.base import RunSettings, ScriptRequest
from agentbox.engines.wasm import door
from agentbox.engines.wasm.core_runtime import CoreRuntime
from agentbox.engines.wasm.data_image.build import GUEST_ARGV, GUEST_ENV, SCRATCH_GUEST
from agentbox.engines.wasm.data_image.runner_bundle import TURN_SOURCE
from agentbox.engines.wasm.engine import INSTANTIATION_FUEL, BaseInstance


@cache
def empty_folder() -> Path:
    """An empty private folder, preopened read-only at /tmp after the image's own folders: the
    build preopened a scratch /tmp third, so the snapshot's C library knows a /tmp there, and
    it must never be a real writable folder at run time (the script's /tmp is the runner's
    in-memory one, bounded by --scratch)."""
    folder = Path(tempfile.mkdtemp(prefix="agentbox-empty-"))  # 0700, this user's
    atexit.register(shutil.rmtree, folder, True)
    return folder


class CoreInstance(BaseInstance):
    """One interpreter of a core-module image in its own Store."""

    _runtime: CoreRuntime

    def __init__(
        self,
        runtime: CoreRuntime,
        settings: RunSettings,
        preopens: Sequence[tuple[Path, str]],
    ) -> None:
        super().__init__(
            runtime,
            settings,
            (*preopens, (empty_folder(), SCRATCH_GUEST)),
            (GUEST_ARGV, sorted(GUEST_ENV.items())),
        )

    def _arguments(self, request: ScriptRequest, keep_globals: bool) -> door.TurnRequest:
        argv0 = request.filename if request.argv0 is None else request.argv0
        return door.TurnRequest(
            source=request.source,
            filename=request.filename,
            argv=[argv0, *request.args],
            env=dict(request.env),
            keep_globals=keep_globals,
        )

    def _call_guest(self, store: Store, arguments: Any, fuel: int | None) -> tuple[int, str]:
        state = door.TurnState(arguments)
        door.bind(state)
        try:
            exports = self._instance
            if exports is None:
                exports = self._instance = self._instantiate(store, fuel is not None)
            if fuel is not None:
                store.set_fuel(fuel)
            returned = _turn(store, exports, TURN_SOURCE)
        finally:
            door.bind(None)
        if state.exit_code is None:
            # The runner itself failed (a script can break it: it shares the interpreter); the
            # reactor printed the traceback to stderr, and turn's status is the exit code.
            self.usable = False
            return returned or 1, ""
        return state.exit_code, state.error_type

    def _instantiate(self, store: Store, fuel: bool) -> dict[str, Any]:
        """A new instance (not charged to the script's fuel)."""
        if fuel:
            store.set_fuel(INSTANTIATION_FUEL)
        instance: Instance = self._runtime.linker.instantiate(store, self._runtime.module)
        exports = dict(instance.exports(store).items())
        for name in ("memory", "host_alloc", "turn"):
            if name not in exports:
                raise RuntimeError(f"the data image does not export `{name}`: reinstall it")
        return exports


def _turn(store: Store, exports: dict[str, Any], source: bytes) -> int:
    """`turn(ptr, len)` of `source`, written into memory the guest's `host_alloc` gave."""
    memory: Memory = exports["memory"]
    pointer = int(exports["host_alloc"](store, len(source))) & 0xFFFFFFFF
    if not pointer or pointer + len(source) > memory.data_len(store):
        raise MemoryError("the guest could not hold the turn's source")
    memory.write(store, source, pointer)
    return int(exports["turn"](store, pointer, len(source)))
