"""The public entry point: `Sandbox(**options).run(code)`."""

import dataclasses
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from agentbox.engines.base import (
    DEFAULT_FILENAME,
    Progress,
    RunSettings,
    ScriptRequest,
    StdinReader,
    SupportsRead,
)
from agentbox.engines.registry import resolve_engine
from agentbox.engines.wasm.images import DEFAULT_IMAGE, check_image, check_memory_for
from agentbox.engines.wasm.pool import WarmPool
from agentbox.engines.wasm.recycle import Recycler, recycler_for
from agentbox.errors import UsageError
from agentbox.input_files import FilesArgument, load_files
from agentbox.limits import (
    DEFAULT_MAX_OUTPUT_BYTES,
    DEFAULT_MAX_OUTPUT_FILES_BYTES,
    DEFAULT_MEMORY_BYTES,
    DEFAULT_SCRATCH_BYTES,
    DEFAULT_TIMEOUT_SECONDS,
    Limits,
    parse_size,
)
from agentbox.mounts import Mount, refuse_shared_guest_paths
from agentbox.output import LiveOutput, OutputCallback
from agentbox.result import RunResult
from agentbox.skills import Approver, BridgeLimits, SkillsArgument, SkillSet

if TYPE_CHECKING:
    import asyncio

    from agentbox.engines.base import Engine
    from agentbox.engines.wasm.engine import BaseInstance, WasmEngine
    from agentbox.session import Session
    from agentbox.streaming import RunStream


def _source_bytes(code: str | bytes) -> bytes:
    if isinstance(code, bytes | bytearray | memoryview):
        return bytes(code)
    if isinstance(code, str):
        # Lone surrogates stay invalid UTF-8, so the guest reports them as CPython would.
        return code.encode("utf-8", "surrogatepass")
    raise TypeError(f"code must be str or bytes, not {type(code).__name__}")


async def run_off_loop(
    run: Callable[..., RunResult], code: str | bytes, **options: Any
) -> RunResult:
    """`run(code, **options)` on a worker thread, with async skills bridged to this loop."""
    import asyncio

    loop = asyncio.get_running_loop()
    return await asyncio.to_thread(run, code, loop=loop, **options)


def _stdin_reader(stdin: SupportsRead) -> StdinReader:
    read = getattr(stdin, "read1", None) or stdin.read
    return lambda size: bytes(read(size))


def _checked_env(env: Mapping[str, str]) -> dict[str, str]:
    """Names and values a process environment can hold; refused here, not in the guest."""
    for key, value in env.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise UsageError("environment names and values must be strings")
        if not key or "=" in key or "\0" in key or "\0" in value:
            raise UsageError(
                f"invalid environment variable {key!r}: a name must be non-empty without '=' "
                "and neither name nor value may contain a NUL character"
            )
    return dict(env)


def _reraise_output_error(request: ScriptRequest, result: RunResult) -> RunResult:
    """The result, unless the run's `on_output` callback raised: then its error."""
    if request.on_output is not None:
        request.on_output.raise_error()
    return result


class Sandbox:
    """Runs untrusted Python. Reuse one Sandbox for many runs: each run is isolated and cheap.

    Every `run` starts from the same snapshot in a new instance, so runs never share state.
    With `recycle=True` (for a caller that runs scripts one after another, as a batch worker
    does), runs instead reuse one instance whose memory is put back to the snapshot's bytes
    after each run (Linux, default image, no mounts; a fresh instance otherwise and after any
    run that grew its memory or hit a limit: see `agentbox.engines.wasm.recycle`).
    A Sandbox is safe to use from several threads at once; `pool_size` keeps that many
    instances ready ahead of time (for long-lived hosts where every millisecond counts).

    `engine` is `"wasm"` (the sandbox), `"restricted"` or `"asteval"` (weaker fallbacks for
    hosts where WebAssembly cannot run: see docs/engines.md), or `"auto"` (wasm, falling back
    to restricted only when the wasm runtime cannot load; `engine_warning` then says so).
    """

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        memory: int | str = DEFAULT_MEMORY_BYTES,
        max_output: int | str = DEFAULT_MAX_OUTPUT_BYTES,
        fuel: int | None = None,
        scratch: int | str = DEFAULT_SCRATCH_BYTES,
        max_output_files: int | str = DEFAULT_MAX_OUTPUT_FILES_BYTES,
        mounts: Iterable[Mount | str] = (),
        files: FilesArgument = None,
        env: Mapping[str, str] | None = None,
        skills: SkillsArgument = None,
        approve: Approver | None = None,
        bridge_limits: BridgeLimits | None = None,
        pool_size: int = 0,
        engine: str = "wasm",
        progress: Progress | None = None,
        image: str = "default",
        recycle: bool = False,
    ) -> None:
        limits = Limits(
            timeout=timeout,
            memory=parse_size(memory),
            max_output=parse_size(max_output),
            fuel=fuel,
            scratch=parse_size(scratch),
            max_output_files=parse_size(max_output_files),
        )
        self.settings = RunSettings(
            limits=limits,
            mounts=tuple(m if isinstance(m, Mount) else Mount.parse(m) for m in mounts),
            files=load_files(files, limits.memory // 2),
        )
        refuse_shared_guest_paths(self.settings.mounts)
        self.env = _checked_env(env or {})
        self.skills = SkillSet(skills, limits=bridge_limits, approve=approve)
        self._engine: Engine
        self.image = check_image(image)
        if image == DEFAULT_IMAGE:
            self._engine, self.engine_warning = resolve_engine(engine, progress)
        else:
            if engine not in ("wasm", "auto"):
                raise UsageError(f"the {image} image runs on the wasm engine only, not {engine!r}")
            check_memory_for(image, limits.memory)
            from agentbox.engines.wasm.engine import WasmEngine

            self._engine, self.engine_warning = WasmEngine(progress, image), None
        self._pool: WarmPool[BaseInstance] | None = None
        if pool_size and self.engine == "wasm":
            # The pool's thread compiles the guest on first use (if no cache has it): the
            # constructor returns at once, so a server can answer while it compiles.
            self._pool = WarmPool(lambda: self._new_instance().prime(), pool_size)
        self._recycler: Recycler | None = None
        recyclable = self.engine == "wasm" and image == DEFAULT_IMAGE and not self.settings.mounts
        if recycle and recyclable:
            self._recycler = recycler_for(self._new_instance)

    @property
    def limits(self) -> Limits:
        return self.settings.limits

    @property
    def engine(self) -> str:
        """The engine's name: `wasm`, `restricted` or `asteval`."""
        return self._engine.name

    def _wasm(self) -> "WasmEngine":
        if self.engine != "wasm":
            raise UsageError(f"this needs the wasm engine (this sandbox uses {self.engine!r})")
        return self._engine  # type: ignore[return-value]

    def warmup(self) -> None:
        """Load (compiling and caching on first use) the guest now rather than on first run."""
        if self.engine == "wasm":
            self._wasm().runtime(self.limits.fuel is not None)

    @property
    def packages(self) -> dict[str, str]:
        """The image's packages beyond the standard library, with versions (data image)."""
        return self._wasm().versions if self.engine == "wasm" else {}

    @property
    def ready(self) -> bool:
        """Whether a run starts without compiling the guest first (False only for a wasm
        sandbox whose guest is not loaded yet: `warmup` loads it)."""
        return self.engine != "wasm" or self._wasm().runtime_ready(self.limits.fuel is not None)

    def close(self) -> None:
        """Stop refilling the warm pool (runs still work, without it)."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        if self._recycler is not None:
            self._recycler.close()

    def _new_instance(self) -> "BaseInstance":
        return self._wasm().new_instance(self.settings)

    def _instance(self) -> "BaseInstance":
        """A primed instance from the pool, else a new one, which its first run instantiates on
        its run thread (so an asyncio host does not wait here either)."""
        instance = self._pool.take_ready() if self._pool is not None else None
        return instance if instance is not None else self._new_instance()

    def _request(
        self,
        code: str | bytes,
        args: Sequence[str],
        stdin: "bytes | str | SupportsRead",
        filename: str,
        on_output: OutputCallback | None = None,
        argv0: str | None = None,
        files: FilesArgument = None,
    ) -> ScriptRequest:
        if isinstance(args, str | bytes):
            raise UsageError("args must be a sequence of strings, not a single string")
        reader: StdinReader | None = None
        if isinstance(stdin, str):
            stdin = stdin.encode("utf-8", "surrogatepass")
        elif not isinstance(stdin, bytes | bytearray | memoryview):
            if not callable(getattr(stdin, "read", None)):
                raise UsageError("stdin must be bytes, str or a binary stream with read()")
            reader, stdin = _stdin_reader(stdin), b""
        return ScriptRequest(
            source=_source_bytes(code),
            filename=os.fspath(filename),
            args=tuple(str(arg) for arg in args),
            stdin=bytes(stdin),
            env=self.env,
            stdin_reader=reader,
            argv0=argv0,
            on_output=None if on_output is None else LiveOutput(on_output),
            files=load_files(files, self.limits.memory // 2, self.settings.files) if files else (),
        )

    def run(
        self,
        code: str | bytes,
        *,
        args: Sequence[str] = (),
        stdin: "bytes | str | SupportsRead" = b"",
        filename: str = DEFAULT_FILENAME,
        timeout: float | None = None,
        loop: "asyncio.AbstractEventLoop | None" = None,
        on_output: OutputCallback | None = None,
        argv0: str | None = None,
        files: FilesArgument = None,
    ) -> RunResult:
        """Run `code` as `python FILENAME ARGS...` would, in a fresh sandbox.

        `stdin`: bytes or text the script reads from `sys.stdin`, or a binary stream (a file,
        a pipe) it reads on demand, as it asks for input (the fallback engines on Windows read
        it whole first). `timeout` overrides the sandbox's wall-clock limit for this run only.
        `on_output(stream, data)` receives output while the run goes on: `stream` is
        `"stdout"` or `"stderr"`, `data` the bytes the script flushed (its lines, as it prints
        them), in the order written, within `max_output`; the result still holds all of it. It
        is called on the thread running the script, which waits for it. If it raises, it is
        not called again and `run` raises that error once the script ends. `argv0`:
        `sys.argv[0]` when it is not `filename`. `files`: this run's own read-only input
        files, as the constructor's (`{"/input/data.csv": b"..."}`), beside the sandbox's.
        """
        request = self._request(code, args, stdin, filename, on_output, argv0, files)
        skills = self.skills.bind_run(loop)
        if self.engine != "wasm":
            limits = self.limits.with_timeout(timeout)
            result = self._engine.run(
                request, dataclasses.replace(self.settings, limits=limits), skills
            )
        elif self._recycler is not None:
            result = self._recycler.run(request, skills, timeout)
        else:
            result = self._instance().run_once(request, skills, timeout=timeout)
        return _reraise_output_error(request, result)

    async def run_async(
        self,
        code: str | bytes,
        *,
        args: Sequence[str] = (),
        stdin: "bytes | str | SupportsRead" = b"",
        filename: str = DEFAULT_FILENAME,
        timeout: float | None = None,
        on_output: OutputCallback | None = None,
        argv0: str | None = None,
        files: FilesArgument = None,
    ) -> RunResult:
        """`run` for asyncio hosts: the loop awaits the run without blocking (no worker thread
        of the loop's is tied up), and `async def` skills run on this loop. `on_output` is
        called on the run's thread, as for `run` (`stream()` delivers output on the loop)."""
        if self.engine != "wasm":
            return await run_off_loop(
                self.run,
                code,
                args=args,
                stdin=stdin,
                filename=filename,
                timeout=timeout,
                on_output=on_output,
                argv0=argv0,
                files=files,
            )
        import asyncio

        request = self._request(code, args, stdin, filename, on_output, argv0, files)
        skills = self.skills.bind_run(asyncio.get_running_loop())
        if not self.ready:  # loading the guest may compile it: never on the event loop
            await asyncio.to_thread(self.warmup)
        instance = self._instance()
        result = await instance.run_once_async(request, skills, timeout=timeout)
        return _reraise_output_error(request, result)

    def stream(self, code: str | bytes, **options: Any) -> "RunStream":
        """`run_async` as an async iterator of `(stream, data)` output pieces, delivered on the
        event loop while the run goes on; the `RunResult` is the iterator's `result` once the
        iteration ends. Takes `run_async`'s keyword arguments (except `on_output`):

            run = sandbox.stream("print(1)")
            async for stream, data in run:
                ...
            print(run.result.exit_code)
        """
        from agentbox.streaming import RunStream  # asyncio, which `agentbox run` does not load

        return RunStream(lambda on_output: self.run_async(code, on_output=on_output, **options))

    def session(self) -> "Session":
        """An interpreter that keeps its state across `run` calls (see `agentbox.Session`)."""
        from agentbox.session import Session  # asyncio, which `agentbox run` does not load

        self._wasm()
        return Session(self)
