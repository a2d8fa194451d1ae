"""The WebAssembly engine: each run gets a fresh Store and instance of the snapshotted guest.

Wall-clock limits have two layers. The epoch deadline traps guest code that is computing; the
guest's `time.sleep` returns to WebAssembly every 20 ms so the deadline also ends sleeps. A
guest blocked inside a host call some other way cannot be interrupted, so the calling thread
waits only until the deadline (plus a short grace) and then abandons the worker thread: the
run is reported as timed out at once, and the abandoned instance traps as soon as control
returns to WebAssembly. Its Store is never used again.
"""

import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol, Self

from wasmtime import Engine, ExitTrap, Store, Trap, WasiConfig, WasmtimeError
from wasmtime.component import Func, Record

from agentbox.engines.base import (
    DEFAULT_FILENAME,
    Progress,
    RunSettings,
    ScriptRequest,
)
from agentbox.engines.wasm import host_functions
from agentbox.engines.wasm.abandoned import RunWatch, abandoned_runs
from agentbox.engines.wasm.runtime import (
    EpochTicker,
    Runtime,
    get_runtime,
    log_progress,
    runtime_ready,
)
from agentbox.engines.wasm.threads import release_later, run_threads
from agentbox.exit_codes import ExitCode
from agentbox.limits import DEFAULT_MAX_OUTPUT_FILES_BYTES, Limits
from agentbox.output import CappedOutput, LiveOutput, captured_result
from agentbox.output_files import OutputFiles, with_files
from agentbox.result import LimitName, RunResult
from agentbox.skills import RunSkills, SkillSet

INSTANTIATION_FUEL = 1 << 40

# What a pooled instance runs before its first real run. Printing to both streams matters: after
# an empty priming script, a `print(x)` run still dirtied 44 new pages of the memory image and
# took 1.4 ms; after this one, 12 pages and 0.9 ms (measured with /proc/self/pagemap).
_PRIMING_SCRIPT = b"import sys\nprint()\nprint(file=sys.stderr)\n"

# How long past the deadline the caller waits for the worker before abandoning it.
ABANDON_GRACE_SECONDS = 0.2


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _wit_string(text: str) -> str:
    """WIT strings are valid Unicode: lone surrogates (from undecodable argv) become U+FFFD."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def _call_arguments(request: ScriptRequest, keep_globals: bool) -> tuple[str, bool, Record | None]:
    """The guest's `run` parameters: no context for a default run (see the WIT file)."""
    source = request.source.decode("latin-1")  # bytes in a string: see the WIT file
    if request.filename == DEFAULT_FILENAME and not (
        request.args or request.env or request.argv0 is not None
    ):
        return source, keep_globals, None
    argv0 = request.filename if request.argv0 is None else request.argv0
    fields = {
        "filename": _wit_string(request.filename),
        "argv": [_wit_string(arg) for arg in (argv0, *request.args)],
        "env": [(_wit_string(key), _wit_string(value)) for key, value in request.env.items()],
    }
    context = Record()
    for name, value in fields.items():
        setattr(context, name, value)
    return source, keep_globals, context


def _inputs(
    sandbox_files: Sequence[tuple[str, bytes]], run_files: Sequence[tuple[str, bytes]]
) -> Sequence[tuple[str, bytes]]:
    """The files /input holds for this run: the sandbox's, then this run's over them."""
    if not run_files:
        return sandbox_files
    return tuple(sorted({**dict(sandbox_files), **dict(run_files)}.items()))


class _Outputs:
    """The capture of one instance's stdout and stderr, replaced at each run."""

    def __init__(self, limit: int, max_files: int = DEFAULT_MAX_OUTPUT_FILES_BYTES) -> None:
        self._limit = limit
        self._max_files = max_files
        self.reset(None)

    def reset(self, live: LiveOutput | None) -> None:
        self.stdout = CappedOutput(self._limit, "stdout", live)
        self.stderr = CappedOutput(self._limit, "stderr", live)
        self.files = OutputFiles(self._max_files)


@dataclass
class _Call:
    """One run in flight: what the worker reports back to the caller."""

    limits: Limits
    skills: RunSkills
    started: float
    watch: RunWatch
    """Counts the run as abandoned while its caller has stopped waiting and it has not returned."""
    outcome: Any = None
    trap: WasmtimeError | Trap | None = None
    error: BaseException | None = None


@dataclass
class _CallOutcome:
    exit_code: int
    limit: LimitName | None
    message: str | None
    usable: bool


class _Ticking(Protocol):
    """What an instance needs of its runtime: the component's `Runtime`, or `CoreRuntime`."""

    @property
    def engine(self) -> Engine: ...

    @property
    def ticker(self) -> EpochTicker: ...


class BaseInstance:
    """One guest interpreter in its own Store: a one-shot run, or a session's interpreter.

    Everything but the call into the guest is shared by both kinds of image (limits, deadline,
    abandoning, outcome and result); `GuestInstance` (the component) and `CoreInstance` (a core
    module, the data image) implement `_call_guest`.
    """

    def __init__(
        self,
        runtime: _Ticking,
        settings: RunSettings,
        read_only: Sequence[tuple[Path, str]] = (),
        process: tuple[Sequence[str], Sequence[tuple[str, str]]] = ((), ()),
    ) -> None:
        """`read_only`: the image's own folders, preopened first, in order; `process`: the
        WASI argv and environment the image was built with (the data image's)."""
        self._runtime = runtime
        self._limits = settings.limits
        self._inputs = settings.files
        self._outputs = _Outputs(settings.limits.max_output, settings.limits.max_output_files)
        self.store = Store(runtime.engine)
        self.store.set_limits(memory_size=settings.limits.memory)
        # wasmtime-py keeps these callbacks in a global registry until the Store is freed: they
        # must not reference the Store (or this object), or neither is ever freed.
        outputs = self._outputs
        wasi = WasiConfig()
        argv, environment = process
        if argv:
            wasi.argv = list(argv)
        if environment:
            wasi.env = list(environment)
        wasi.stdout_custom = lambda data: outputs.stdout.write(data)
        wasi.stderr_custom = lambda data: outputs.stderr.write(data)
        for host, guest in read_only:  # the image's own folders (the data image's stdlib)
            wasi.preopen_dir(str(host), guest, fs_mutable=False)
        for mount in settings.mounts:
            wasi.preopen_dir(str(mount.host), mount.guest, fs_mutable=mount.writable)
        self.store.set_wasi(wasi)
        # Instantiated by the first run, on its run thread (see `_prepare`): the caller does not
        # wait for a hop to another thread to instantiate first.
        self._instance: Any = None
        self.usable = True

    def prime(self) -> Self:
        """Run a script that prints, so the interpreter's first-run work (page faults in the
        fresh memory image, lazy set-up) is paid now, off the hot path: the warm pool calls
        this. Leaves no state a later run can see: every run resets what the runner sets up,
        and its output is dropped when the next run starts."""
        self.run(ScriptRequest(source=_PRIMING_SCRIPT), SkillSet().bind_run())
        return self

    def run(
        self,
        request: ScriptRequest,
        skills: RunSkills,
        keep_globals: bool = False,
        timeout: float | None = None,
    ) -> RunResult:
        """Run one script; `timeout` overrides the instance's wall-clock limit for this run."""
        call, work = self._prepare(request, skills, keep_globals, timeout)
        with self._deadline(call.limits) as deadline_passed:
            finished = run_threads.run(work, call.limits.timeout + ABANDON_GRACE_SECONDS)
            return self._result(call, finished, deadline_passed())

    async def run_async(
        self,
        request: ScriptRequest,
        skills: RunSkills,
        keep_globals: bool = False,
        timeout: float | None = None,
    ) -> RunResult:
        """`run`, awaited on the event loop: no worker thread of the loop's is tied up."""
        call, work = self._prepare(request, skills, keep_globals, timeout)
        with self._deadline(call.limits) as deadline_passed:
            try:
                finished = await run_threads.run_async(
                    work, call.limits.timeout + ABANDON_GRACE_SECONDS
                )
            except BaseException:
                self.usable = False  # cancelled: the script may still be running
                call.watch.abandon()
                raise
            return self._result(call, finished, deadline_passed())

    def run_once(
        self, request: ScriptRequest, skills: RunSkills, timeout: float | None = None
    ) -> RunResult:
        """A one-shot run: the instance is discarded afterwards."""
        try:
            return self.run(request, skills, timeout=timeout)
        finally:
            self.discard()

    async def run_once_async(
        self, request: ScriptRequest, skills: RunSkills, timeout: float | None = None
    ) -> RunResult:
        try:
            return await self.run_async(request, skills, timeout=timeout)
        finally:
            self.discard()

    def discard(self) -> None:
        """Done with this instance: its memory is freed off the hot path (see `threads`).
        An abandoned worker still holds the Store, so it stays alive until that worker ends."""
        self.usable = False
        release_later((self.store, self._instance))
        del self.store, self._instance

    def _prepare(
        self,
        request: ScriptRequest,
        skills: RunSkills,
        keep_globals: bool,
        timeout: float | None,
    ) -> tuple[_Call, Callable[[], None]]:
        """The run's record and the work for its thread (which reports into the record; the
        record does not hold the work, so no reference cycle keeps the Store alive)."""
        if not self.usable:
            raise RuntimeError("this guest instance hit a limit and cannot run again")
        limits = self._limits.with_timeout(timeout)
        self._outputs.reset(request.on_output)
        arguments = self._arguments(request, keep_globals)
        store, runtime = self.store, self._runtime
        call = _Call(
            limits=limits,
            skills=skills,
            started=time.perf_counter(),
            watch=abandoned_runs.watch(limits.memory),
        )
        skills.start_clock(limits.timeout)
        outputs = self._outputs
        binding = host_functions.RunBinding(
            skills,
            outputs.stdout,
            outputs.stderr,
            stdin=request.stdin_source(),
            files=outputs.files,
            scratch=limits.scratch,
            inputs=_inputs(self._inputs, request.files),
        )

        call_guest = self._call_guest

        def work() -> None:
            host_functions.bind(binding)
            # The ticker counts this run as active until the worker itself returns, not only
            # while a caller waits: an abandoned or cancelled run must still reach its deadline.
            runtime.ticker.__enter__()
            try:
                call.outcome = call_guest(store, arguments, limits.fuel)
            except (WasmtimeError, Trap) as trap:  # a component call raises the first
                # Without its traceback: the traceback's frame holds the Store, and the record
                # holding the traceback would make a cycle that pins the Store until a GC pass.
                call.trap = trap.with_traceback(None)
            except BaseException as error:  # noqa: BLE001 - reported as an internal error
                call.error = error
            finally:
                runtime.ticker.__exit__()
                host_functions.bind(None)
                call.watch.returned()

        return call, work

    @contextmanager
    def _deadline(self, limits: Limits) -> Iterator[Callable[[], bool]]:
        """Arm this run's deadline; yields a check of whether it has passed."""
        ticker = self._runtime.ticker
        with ticker:
            deadline_epoch = ticker.arm(self.store, limits.timeout)
            yield lambda: ticker.epoch >= deadline_epoch

    def _result(self, call: _Call, finished: bool, deadline_passed: bool) -> RunResult:
        duration_ms = (time.perf_counter() - call.started) * 1000
        outcome = self._outcome(call, finished, deadline_passed)
        self.usable = outcome.usable
        result = captured_result(
            self._outputs.stdout,
            self._outputs.stderr,
            call.limits.max_output,
            exit_code=outcome.exit_code,
            limit=outcome.limit,
            message=outcome.message,
            duration_ms=duration_ms,
            skill_calls=list(call.skills.calls),
            skill_calls_unrecorded=call.skills.unrecorded,
            engine=WasmEngine.name,
        )
        return with_files(result, self._outputs.files)

    def _outcome(self, call: _Call, finished: bool, deadline_passed: bool) -> _CallOutcome:
        if not finished:
            call.watch.abandon()
            return _timeout(call.limits)
        if call.error is not None:
            raise call.error
        if call.trap is not None:
            return self._classify_trap(call.trap, deadline_passed, call.limits)
        return _finished(call.outcome)

    def _arguments(self, request: ScriptRequest, keep_globals: bool) -> Any:
        """What `_call_guest` passes the guest for this run (made on the caller's thread)."""
        raise NotImplementedError

    def _call_guest(self, store: Store, arguments: Any, fuel: int | None) -> tuple[int, str]:
        """On the run's thread: instantiate on first use, set the fuel, run; returns the exit
        code and the uncaught exception's type name ("" if none)."""
        raise NotImplementedError

    def _instantiate(self, store: Store, fuel: bool) -> Any:
        """A new instance of the image in `store` (under a deadline: instantiation executes
        its start functions), as `_call_guest` uses it."""
        raise NotImplementedError

    @property
    def image_file(self) -> BinaryIO | None:
        """The compiled file this instance's memory image is mapped from, open (None: not a
        file, or an image kind that is not recycled)."""
        return None

    def instantiate(self) -> None:
        """Instantiate now, on this thread, rather than at the first run (for a caller that
        times instantiation apart from the run: benchmarks/batch.py)."""
        ticker = self._runtime.ticker
        with ticker:
            ticker.arm(self.store, self._limits.timeout)
            self._instance = self._instantiate(self.store, self._limits.fuel is not None)

    def _classify_trap(
        self, trap: WasmtimeError | Trap, deadline_passed: bool, limits: Limits
    ) -> _CallOutcome:
        """Tell limits apart by what the host armed, never by parsing the trap message."""
        if deadline_passed:
            return _timeout(limits)
        if limits.fuel is not None and self.store.get_fuel() == 0:
            return _CallOutcome(
                ExitCode.FUEL, "fuel", f"fuel budget of {limits.fuel} units ran out (--fuel)", False
            )
        if isinstance(trap, ExitTrap):
            return _CallOutcome(trap.code, None, None, False)
        return _CallOutcome(ExitCode.CRASH, "crash", f"the sandbox crashed: {_cause(trap)}", False)


class GuestInstance(BaseInstance):
    """An instance of the default image: the snapshotted guest component."""

    _runtime: Runtime

    def __init__(self, runtime: Runtime, settings: RunSettings) -> None:
        super().__init__(runtime, settings)

    @property
    def image_file(self) -> BinaryIO | None:
        return self._runtime.image_file

    def _arguments(self, request: ScriptRequest, keep_globals: bool) -> Any:
        return _call_arguments(request, keep_globals)

    def _call_guest(self, store: Store, arguments: Any, fuel: int | None) -> tuple[int, str]:
        func = self._instance
        if func is None:
            func = self._instance = self._instantiate(store, fuel is not None)
        if fuel is not None:
            store.set_fuel(fuel)
        outcome = func(store, *arguments)
        func.post_return(store)
        return int(getattr(outcome, "exit-code")), str(getattr(outcome, "error-type"))

    def _instantiate(self, store: Store, fuel: bool) -> Func:
        """The guest's `run` in a new instance in `store`."""
        if fuel:
            store.set_fuel(INSTANTIATION_FUEL)  # not charged to the script's budget
        instance = self._runtime.linker.instantiate(store, self._runtime.component)
        func = instance.get_func(store, "run")
        if func is None:
            raise RuntimeError("the guest does not export `run`: rebuild it with `make guest`")
        return func


def _cause(trap: WasmtimeError | Trap) -> str:
    """The trap's cause (`wasm trap: call stack exhausted`), for humans; never used to decide."""
    text = str(trap).strip()
    _, marker, cause = text.rpartition("Caused by:")
    lines = (cause if marker else text).strip().splitlines()
    return lines[0].strip() if lines else "unknown trap"


def _timeout(limits: Limits) -> _CallOutcome:
    return _CallOutcome(
        ExitCode.TIMEOUT, "timeout", f"timed out after {limits.timeout:g} s (--timeout)", False
    )


def _finished(outcome: tuple[int, str]) -> _CallOutcome:
    exit_code, error_type = outcome
    if error_type == "MemoryError":
        return _CallOutcome(
            ExitCode.MEMORY, "memory", "the script ran out of memory (--memory)", True
        )
    return _CallOutcome(exit_code, None, None, True)


class WasmEngine:
    """Fresh instance per run; the Engine, Linker and compiled guest are shared per process.

    `image` is "default" (the component) or "data" (a core module: see `core_engine`); the
    data image is looked up when the engine is made, so a missing one fails at once."""

    name = "wasm"

    def __init__(self, progress: Progress | None = None, image: str = "default") -> None:
        from agentbox.engines.wasm.images import DATA_IMAGE, check_image, load_data_image

        self._progress = progress
        self.image = check_image(image)
        self._data = load_data_image() if image == DATA_IMAGE else None

    @property
    def versions(self) -> dict[str, str]:
        """The data image's packages and their versions (empty for the default image)."""
        return {} if self._data is None else dict(self._data.versions)

    def runtime(self, fuel: bool) -> Any:
        progress = self._progress or log_progress
        if self._data is not None:
            from agentbox.engines.wasm.core_runtime import get_core_runtime

            return get_core_runtime(self._data, fuel, progress)
        return get_runtime(fuel, progress)

    def runtime_ready(self, fuel: bool) -> bool:
        if self._data is not None:
            from agentbox.engines.wasm.core_runtime import core_runtime_ready

            return core_runtime_ready(self._data, fuel)
        return runtime_ready(fuel)

    def new_instance(self, settings: RunSettings) -> BaseInstance:
        runtime = self.runtime(settings.limits.fuel is not None)
        if self._data is not None:
            from agentbox.engines.wasm.core_engine import CoreInstance

            return CoreInstance(runtime, settings, self._data.preopens)
        return GuestInstance(runtime, settings)

    def run(self, request: ScriptRequest, settings: RunSettings, skills: RunSkills) -> RunResult:
        return self.new_instance(settings).run_once(request, skills)
