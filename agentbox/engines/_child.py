"""The child process both fallback engines run scripts in, and the parent side that drives it.

A Python-level sandbox shares its interpreter with the script, and a thread cannot be killed,
so each run gets a fresh `python` child: the parent kills it at the deadline, and the child caps
its own address space (`RLIMIT_AS`) before the script starts. The script never sees the parent's
memory or environment (the child starts with an empty environment).

Parent and child talk over the child's stdin/stdout pipes in length-prefixed frames
(`>I` length, one tag byte, body). Nothing from the child is ever unpickled: bodies are raw
output bytes or JSON, so a script that escapes its Python-level restrictions still cannot run
code in the host by lying on the pipe. Skill calls are proxied to the parent, which owns the
`RunSkills` bridge (limits, approval, the call log).
"""

import asyncio
import base64
import contextlib
import io
import json
import os
import queue
import signal
import struct
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import IO, Any, BinaryIO

from agentbox.engines._oslayer import Confinement, OSLayerWarning
from agentbox.engines.base import RunSettings, ScriptRequest, read_all_within
from agentbox.errors import UsageError
from agentbox.exit_codes import ExitCode
from agentbox.output import CappedOutput, captured_result
from agentbox.result import LimitName, RunResult
from agentbox.skills import RunSkills

# How long past the deadline the parent waits for a skill call before abandoning it.
ABANDON_GRACE_SECONDS = 0.2
# A frame larger than this is a protocol violation (the child is then treated as crashed).
MAX_FRAME_BYTES = 64 * 1024 * 1024
# The child sends buffered output when this much is pending or this long has passed.
FLUSH_BYTES = 64 * 1024
FLUSH_SECONDS = 0.05
STDERR_TAIL_BYTES = 4096

# Which module holds each engine's child-side `execute(script, host) -> (exit_code, error)`.
WORKERS = {
    "restricted": "agentbox.engines.restricted",
    "asteval": "agentbox.engines.asteval_engine",
}

_HEADER = struct.Struct(">I")
# `-I`: ignore PYTHON* variables and the user's site-packages; the parent's sys.path is passed
# explicitly so the child imports exactly the agentbox and fallback libraries the parent uses.
# `agentbox` is registered as a bare package so its __init__ (which imports the wasm engine
# and so wasmtime) does not run: the child needs neither, and starts faster without them.
_BOOTSTRAP = """
import importlib.util, json, sys, types
sys.path[:] = json.loads(sys.argv[1])
package = types.ModuleType("agentbox")
package.__path__ = importlib.util.find_spec("agentbox").submodule_search_locations
sys.modules["agentbox"] = package
from agentbox.engines._child import child_main
child_main()
"""


# A frozen binary has no `python -c`: its entry script starts `child_main` when it sees this.
FROZEN_CHILD_ARGUMENT = "--agentbox-fallback-child"


def child_command() -> list[str]:
    """How to start the child: a Python with the bootstrap, or the frozen binary itself."""
    if getattr(sys, "frozen", False):
        return [sys.executable, FROZEN_CHILD_ARGUMENT]
    return [sys.executable, "-I", "-c", _BOOTSTRAP, json.dumps(sys.path)]


# ---------------------------------------------------------------- framing (both sides)


def _write_frame(stream: BinaryIO, tag: bytes, body: bytes = b"") -> None:
    stream.write(_HEADER.pack(len(body) + 1) + tag + body)
    stream.flush()


def _read_frame(stream: BinaryIO) -> tuple[bytes, bytes] | None:
    """One frame, or None at end of stream (or on a malformed frame)."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    if not 1 <= size <= MAX_FRAME_BYTES:
        return None
    frame = stream.read(size)
    if len(frame) < size:
        return None
    return frame[:1], frame[1:]


# ---------------------------------------------------------------- parent side


@dataclass(frozen=True)
class _Outcome:
    exit_code: int
    limit: LimitName | None = None
    message: str | None = None


def _timeout(settings: RunSettings) -> _Outcome:
    return _Outcome(
        ExitCode.TIMEOUT, "timeout", f"timed out after {settings.limits.timeout:g} s (--timeout)"
    )


def _finished(exit_code: int, error_type: str) -> _Outcome:
    """Like the wasm engine: an uncaught MemoryError is the memory limit."""
    if error_type == "MemoryError":
        return _Outcome(ExitCode.MEMORY, "memory", "the script ran out of memory (--memory)")
    return _Outcome(exit_code)


def _stdin_init(
    request: ScriptRequest, pipe: tuple[int, int] | None, timeout: float
) -> dict[str, Any]:
    """How the child finds the script's stdin: a pipe (its read end, then fed by a thread of
    ours), or the bytes themselves (what arrived within `timeout`, where there is no pipe)."""
    reader = request.stdin_reader
    if pipe is None:
        data = request.stdin if reader is None else read_all_within(reader, timeout)[0]
        return {"stdin": base64.b64encode(data).decode("ascii")}
    read_end, write_end = pipe
    threading.Thread(
        target=_feed_stdin,
        args=(request.stdin_source(), write_end),
        name="agentbox-stdin",
        daemon=True,
    ).start()
    return {"stdin_fd": read_end}


def _feed_stdin(read: Callable[[int], bytes], write_end: int) -> None:
    """Copy the caller's stdin into the child's pipe as it arrives, until its end or the
    child's (a write to a pipe nobody reads fails). This thread alone closes `write_end`,
    so its number is never reused under it."""
    try:
        while data := read(65536):
            view = memoryview(data)
            while view:
                view = view[os.write(write_end, view) :]
    except OSError:
        pass
    finally:
        os.close(write_end)


class _ChildRun:
    """One run: the child process, its reader threads and the frame loop."""

    def __init__(self, engine: str, request: ScriptRequest, settings: RunSettings) -> None:
        self.settings = settings
        self.stdout = CappedOutput(settings.limits.max_output, "stdout", request.on_output)
        self.stderr = CappedOutput(settings.limits.max_output, "stderr", request.on_output)
        self._frames: queue.Queue[tuple[bytes, bytes] | None] = queue.Queue()
        self._stderr_tail = bytearray()
        self._warned = False
        # POSIX: the script's stdin is a pipe of its own, fed as the caller's stdin yields data,
        # so a script that never reads it never waits for it. Elsewhere it is read whole first.
        stdin_pipe = os.pipe() if os.name == "posix" else None
        self.process = subprocess.Popen(
            child_command(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_child_environment(),
            start_new_session=os.name == "posix",
            pass_fds=stdin_pipe[:1] if stdin_pipe else (),
        )
        assert self.process.stdin and self.process.stdout and self.process.stderr
        self._to_child: BinaryIO = self.process.stdin  # type: ignore[assignment]
        threading.Thread(target=self._read_frames, args=(self.process.stdout,), daemon=True).start()
        threading.Thread(target=self._read_stderr, args=(self.process.stderr,), daemon=True).start()
        init = {
            "worker": WORKERS[engine],
            "source": base64.b64encode(request.source).decode("ascii"),
            "filename": request.filename,
            "argv0": request.argv0 or request.filename,
            "args": list(request.args),
            **_stdin_init(request, stdin_pipe, settings.limits.timeout),
            "memory": settings.limits.memory,
            "max_output": settings.limits.max_output,
        }
        if stdin_pipe is not None:
            os.close(stdin_pipe[0])  # the child's now
        self._send(b"I", json.dumps(init).encode())

    def _read_frames(self, stream: BinaryIO) -> None:
        while (frame := _read_frame(stream)) is not None:
            self._frames.put(frame)
        self._frames.put(None)

    def _read_stderr(self, stream: IO[bytes]) -> None:
        """Drain the child's fd 2 (only interpreter-level failures land there); keep a tail."""
        while chunk := stream.read1(65536):  # type: ignore[attr-defined]
            self._stderr_tail += chunk
            del self._stderr_tail[:-STDERR_TAIL_BYTES]

    def _send(self, tag: bytes, body: bytes) -> None:
        with contextlib.suppress(OSError):  # the child died: the frame loop will notice
            _write_frame(self._to_child, tag, body)

    def drive(self, skills: RunSkills) -> _Outcome:
        deadline = time.monotonic() + self.settings.limits.timeout
        skills.start_clock(self.settings.limits.timeout)
        while True:
            try:
                frame = self._frames.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return _timeout(self.settings)
            if frame is None:
                return self._died(deadline)
            try:
                outcome = self._handle(frame, skills, deadline)
            except _ProtocolError as error:
                return self._crashed(f"protocol violation ({error})")
            if outcome is not None:
                return outcome

    def _handle(
        self, frame: tuple[bytes, bytes], skills: RunSkills, deadline: float
    ) -> _Outcome | None:
        """Act on one frame; an outcome ends the run."""
        tag, body = frame
        if tag == b"O":
            self.stdout.write(body)
        elif tag == b"E":
            self.stderr.write(body)
        elif tag == b"D":
            dropped_out, dropped_err = _decode(body, int, int)
            self.stdout.dropped += max(dropped_out, 0)
            self.stderr.dropped += max(dropped_err, 0)
        elif tag == b"S":
            self._send(b"L", skills.list_json().encode())
        elif tag == b"C":
            name, data = _decode(body, str, str)
            reply = _call_until(skills, name, data, deadline)
            if reply is None:
                return _timeout(self.settings)
            self._send(b"R", json.dumps(reply).encode())
        elif tag == b"X":
            exit_code, error_type = _decode(body, int, str)
            return _finished(exit_code, error_type)
        elif tag == b"W" and not self._warned:
            self._warned = True  # once per run: a script past its policy could repeat it
            warnings.warn(body[:300].decode("utf-8", "replace"), OSLayerWarning, stacklevel=2)
        else:
            raise _ProtocolError(f"frame {tag!r}")
        return None

    def _died(self, deadline: float) -> _Outcome:
        """The child closed its end without reporting an outcome."""
        try:
            code = self.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            return _timeout(self.settings)
        tail = bytes(self._stderr_tail).decode("utf-8", "replace")
        if "MemoryError" in tail:
            return _finished(ExitCode.SCRIPT_ERROR, "MemoryError")
        reason = f"signal {-code}" if code < 0 else f"exit status {code}"
        lines = tail.strip().splitlines()
        return self._crashed(reason + (f": {lines[-1][:200]}" if lines else ""))

    @staticmethod
    def _crashed(reason: str) -> _Outcome:
        return _Outcome(ExitCode.CRASH, "crash", f"the sandbox process died ({reason})")

    def close(self) -> None:
        """Neither the child nor anything it started outlives the run: its whole process
        group (its own session, see `start_new_session`) is killed."""
        with contextlib.suppress(OSError):
            if os.name == "posix":
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            with contextlib.suppress(OSError):
                stream.close()  # type: ignore[union-attr]


class _ProtocolError(Exception):
    """The child sent something the protocol does not allow: treated as a crash."""


def _decode(body: bytes, *types: type) -> list[Any]:
    """A JSON array of exactly these types, or a protocol error (never trust the child)."""
    try:
        value = json.loads(body)
    except ValueError:
        raise _ProtocolError("malformed JSON") from None
    if not (
        isinstance(value, list)
        and len(value) == len(types)
        and all(type(item) is kind for item, kind in zip(value, types, strict=True))
    ):
        raise _ProtocolError("unexpected message shape")
    return value


def _child_environment() -> dict[str, str]:
    """Nothing of the host's environment; Windows needs SYSTEMROOT to initialise at all."""
    if os.name == "nt" and "SYSTEMROOT" in os.environ:
        return {"SYSTEMROOT": os.environ["SYSTEMROOT"]}
    return {}


def _call_until(
    skills: RunSkills, name: str, data: str, deadline: float
) -> tuple[bool, str] | None:
    """A skill call that cannot hold the run past its deadline (None: the deadline passed).

    Like the wasm engine, a skill still running at the deadline is abandoned on its thread.
    """
    box: dict[str, Any] = {}

    def call() -> None:
        try:
            box["reply"] = skills.call_json(name, data)
        except BaseException as error:  # noqa: BLE001 - re-raised on the run's thread
            box["error"] = error

    worker = threading.Thread(target=call, name="agentbox-skill-proxy", daemon=True)
    worker.start()
    worker.join(max(0.0, deadline - time.monotonic()) + ABANDON_GRACE_SECONDS)
    if worker.is_alive():
        return None
    if "error" in box:
        raise box["error"]
    reply: tuple[bool, str] = box["reply"]
    return reply


def run_in_child(
    engine: str, request: ScriptRequest, settings: RunSettings, skills: RunSkills
) -> RunResult:
    """Run `request` with `engine`'s child-side worker; the parent enforces the deadline."""
    started = time.perf_counter()
    run = _ChildRun(engine, request, settings)
    try:
        outcome = run.drive(skills)
    finally:
        run.close()
    return captured_result(
        run.stdout,
        run.stderr,
        settings.limits.max_output,
        exit_code=outcome.exit_code,
        limit=outcome.limit,
        message=outcome.message,
        duration_ms=(time.perf_counter() - started) * 1000,
        skill_calls=list(skills.calls),
        skill_calls_unrecorded=skills.unrecorded,
        engine=engine,
    )


class ChildProcessEngine:
    """An engine whose scripts run in a killable, resource-limited child process."""

    name = ""

    def run(self, request: ScriptRequest, settings: RunSettings, skills: RunSkills) -> RunResult:
        """Run one script in a fresh child process."""
        if settings.limits.fuel is not None:
            raise UsageError(f"the {self.name} engine has no instruction budget: drop --fuel")
        if settings.mounts:
            raise UsageError(f"the {self.name} engine cannot mount directories: drop --mount")
        if settings.files or request.files:
            raise UsageError(f"the {self.name} engine has no files: drop --file (wasm only)")
        return run_in_child(self.name, request, settings, skills)

    async def run_async(
        self, request: ScriptRequest, settings: RunSettings, skills: RunSkills
    ) -> RunResult:
        """`run` off the event loop, so `async def` skills can run on the (bound) loop."""
        return await asyncio.to_thread(self.run, request, settings, skills)


# ---------------------------------------------------------------- child side


class SkillError(Exception):
    """A skill call failed; the message says why."""


class UnknownSkillError(SkillError, AttributeError):
    """`skills.NAME` for a skill this sandbox does not have (as in the wasm guest)."""


class OutputStream(io.TextIOBase):
    """The script's stdout or stderr: capped, buffered, sent to the parent in frames."""

    def __init__(self, host: "ChildHost", tag: bytes, limit: int) -> None:
        self._host, self._tag, self._room = host, tag, limit
        self._pending: list[bytes] = []
        self._pending_size = 0
        self.dropped_unsent = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        data = text.encode("utf-8", "backslashreplace")
        kept = data[: max(self._room, 0)]
        self._room -= len(kept)
        self.dropped_unsent += len(data) - len(kept)
        if kept:
            self._pending.append(kept)
            self._pending_size += len(kept)
        self._host.maybe_flush()
        return len(text)

    def flush(self) -> None:
        self._host.flush()

    def take(self) -> bytes:
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_size = 0
        return data

    @property
    def pending_size(self) -> int:
        return self._pending_size


class SkillsNamespace:
    """`skills` as the wasm guest has it: `skills.list()`, `skills.NAME(**kw)`, `SkillError`."""

    SkillError = SkillError
    UnknownSkillError = UnknownSkillError

    def __init__(self, host: "ChildHost") -> None:
        self._host = host

    def list(self) -> list[dict[str, Any]]:
        """The skills this sandbox may call: `[{"name", "description", "parameters"}]`."""
        return self._host.list_skills()

    def call_skill(self, name: str, data: Any = None) -> Any:
        """Call the skill `name` with `data` (any JSON value) and return its JSON result."""
        return self._host.call_skill(name, data)

    def __getattr__(self, name: str) -> "SkillFunction":
        if name.startswith("_"):
            raise AttributeError(name)
        for spec in self._host.list_skills():
            if spec["name"] == name:
                return SkillFunction(self._host, spec)
        raise UnknownSkillError(f"no skill named {name!r}; skills.list() shows the available ones")

    def __dir__(self) -> Iterable[str]:
        return sorted(
            ["SkillError", "UnknownSkillError", "call_skill", "list"]
            + [spec["name"] for spec in self._host.list_skills()]
        )


class SkillFunction:
    """One skill as a callable: keyword arguments become the call's JSON object."""

    def __init__(self, host: "ChildHost", spec: dict[str, Any]) -> None:
        self._host = host
        self.__name__ = spec["name"]
        self.__doc__ = spec.get("description") or "(no description)"

    def __call__(self, **kwargs: Any) -> Any:
        return self._host.call_skill(self.__name__, kwargs)

    def __repr__(self) -> str:
        return f"<skill {self.__name__}>"


@dataclass(frozen=True)
class Script:
    source: bytes
    filename: str
    argv: list[str]
    stdin: IO[str]
    """A pipe read as the script asks (POSIX), or the whole input in memory."""


class ChildHost:
    """What a worker gets: the script's streams and the skill bridge to the parent."""

    def __init__(self, to_parent: BinaryIO, from_parent: BinaryIO, max_output: int) -> None:
        self._out, self._in = to_parent, from_parent
        self.stdout = OutputStream(self, b"O", max_output)
        self.stderr = OutputStream(self, b"E", max_output)
        self.skills = SkillsNamespace(self)
        self._skill_specs: list[dict[str, Any]] | None = None
        self._last_flush = time.monotonic()

    def maybe_flush(self) -> None:
        pending = self.stdout.pending_size + self.stderr.pending_size
        if pending >= FLUSH_BYTES or time.monotonic() - self._last_flush >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        for stream in (self.stdout, self.stderr):
            if data := stream.take():
                _write_frame(self._out, stream._tag, data)
        dropped = [self.stdout.dropped_unsent, self.stderr.dropped_unsent]
        if any(dropped):
            _write_frame(self._out, b"D", json.dumps(dropped).encode())
            self.stdout.dropped_unsent = self.stderr.dropped_unsent = 0

    def _request(self, tag: bytes, body: bytes, reply_tag: bytes) -> bytes:
        self.flush()
        _write_frame(self._out, tag, body)
        frame = _read_frame(self._in)
        if frame is None or frame[0] != reply_tag:
            raise SystemExit(ExitCode.INTERNAL)  # the parent is gone: nothing left to report to
        return frame[1]

    def list_skills(self) -> list[dict[str, Any]]:
        if self._skill_specs is None:
            self._skill_specs = json.loads(self._request(b"S", b"", b"L"))
        return list(self._skill_specs)

    def call_skill(self, name: str, data: Any = None) -> Any:
        """Call the skill `name` with `data` (any JSON value) and return its JSON result."""
        if not isinstance(name, str):
            raise SkillError(f"skill name must be a string, not {type(name).__name__}")
        try:
            payload = json.dumps(data, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise SkillError(f"data for skill {name!r} is not JSON: {error}") from None
        ok, result = json.loads(self._request(b"C", json.dumps([name, payload]).encode(), b"R"))
        if not ok:
            raise SkillError(result)
        return json.loads(result)

    def finish(self, exit_code: int, error_type: str) -> None:
        self.flush()
        _write_frame(self._out, b"X", json.dumps([exit_code, error_type]).encode())


def exit_status(code: object, stderr: IO[str] | io.TextIOBase) -> int:
    """What `sys.exit(code)` makes `python` return (a non-int code is printed, status 1)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return int(code)
    print(code, file=stderr)
    return ExitCode.SCRIPT_ERROR


def harden(memory: int) -> None:
    """Process limits for the rest of the child's life, under the OS layer (`_oslayer`).

    Linux: the address space may grow by `memory` bytes beyond what the interpreter has mapped
    now; no file can grow (RLIMIT_FSIZE=0); no core dumps; RLIMIT_NPROC=0. The descriptor table
    is also filled and capped, which is all that stands between a script past the Python policy
    and new files or sockets on macOS (and falls to `os.close`: issue 12); on Linux the seccomp
    filter refuses them whatever the table holds. macOS does not enforce RLIMIT_AS; Windows has
    no `resource` module and gets only the parent's deadline (see docs/engines.md).
    """
    try:
        import resource
    except ImportError:
        return
    limits: list[tuple[int, int]] = [
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_FSIZE, 0),
        (resource.RLIMIT_NOFILE, _fill_descriptor_table()),
        (resource.RLIMIT_NPROC, 0),
    ]
    mapped = _mapped_bytes()
    if mapped is not None:
        limits.append((resource.RLIMIT_AS, mapped + memory))
    for which, value in limits:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(which, (value, value))


def _mapped_bytes() -> int | None:
    """The child's current virtual size (Linux only; elsewhere RLIMIT_AS is not usable)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            pages = int(statm.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def _fill_descriptor_table() -> int:
    """Occupy every free descriptor below the highest open one; return the RLIMIT_NOFILE bound.

    With all slots taken and the limit at the top, any open(), socket() or pipe() fails.
    """
    probe = os.open(os.devnull, os.O_RDONLY)
    top = max(probe, 2)
    for fd in range(top):
        try:
            os.fstat(fd)
        except OSError:
            os.dup2(probe, fd)
    return top + 1


def _script_stdin(init: dict[str, Any]) -> IO[str]:
    """Opened before the OS layer closes the door on opening anything."""
    if "stdin_fd" in init:
        return open(int(init["stdin_fd"]), encoding="utf-8", errors="replace")
    return io.StringIO(base64.b64decode(init["stdin"]).decode("utf-8", "replace"))


def child_main() -> None:
    """Entry point of the child process (see `_BOOTSTRAP`)."""
    # Keep the protocol pipes away from fds 0 and 1 so nothing can write into the protocol.
    from_parent = os.fdopen(os.dup(0), "rb")
    to_parent = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)
    frame = _read_frame(from_parent)
    if frame is None or frame[0] != b"I":
        raise SystemExit(ExitCode.INTERNAL)
    init = json.loads(frame[1])
    host = ChildHost(to_parent, from_parent, int(init["max_output"]))
    sys.stdout = host.stdout
    sys.stderr = host.stderr
    worker = __import__(init["worker"], fromlist=["prepare"])
    execute: Callable[[Script, ChildHost], tuple[int, str]] = worker.prepare()
    confinement = Confinement()
    script = Script(
        source=base64.b64decode(init["source"]),
        filename=str(init["filename"]),
        argv=[str(init.get("argv0", init["filename"])), *map(str, init["args"])],
        stdin=_script_stdin(init),
    )
    harden(int(init["memory"]))
    if (warning := confinement.apply()) is not None:
        _write_frame(to_parent, b"W", warning.encode())
    try:
        exit_code, error_type = execute(script, host)
    except MemoryError:
        exit_code, error_type = ExitCode.SCRIPT_ERROR, "MemoryError"
    host.finish(exit_code, error_type)
