"""Run a script inside the guest with the semantics of `python FILE ARGS...`."""

import atexit
import builtins
import io
import linecache
import os
import random
import sys
import time
import tokenize
import traceback
import types

from agentbox_guest import host_api, scratch
from agentbox_guest.shims import HardExit, flush_standard_streams

# What `python` prints and returns when the script raised; mirrors Py_Main.
SCRIPT_ERROR_EXIT = 1

_STDIN_FD = 0
_STDOUT_FD = 1
_STDERR_FD = 2
_OUTPUT_BUFFER = 8192
# The most one `write-output` call carries (its UTF-8 is at most twice this): the host copies a
# call's whole string before it can cap it, so a large write goes over in bounded pieces.
# Matches CHUNK_BYTES in agentbox/guest_strings.py.
_HOST_CALL_BYTES = 64 * 1024
_monotonic = time.monotonic


# Runs at build time (see `ScriptRunner.warm_up`): what every run executes, printing included.
_WARM_UP_SCRIPT = b"import sys\nx = [n * 2 for n in range(3)]\nprint(x)\nprint(x, file=sys.stderr)"


def _discard_output(target: object, data: str) -> None:
    pass


class _HostOutput(io.RawIOBase):
    """The raw end of `sys.stdout`/`sys.stderr`: one host call per flush (see `write-output` in
    the WIT file). It still reports the real fd, for code that asks `sys.stdout.fileno()`."""

    def __init__(self, target: object) -> None:
        super().__init__()
        self._target = target
        self._fd = _STDOUT_FD if target == host_api.STDOUT else _STDERR_FD

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def write(self, data) -> int:
        view = memoryview(data)
        for start in range(0, len(view), _HOST_CALL_BYTES):
            host_api.write_output(
                self._target, str(view[start : start + _HOST_CALL_BYTES], "latin-1")
            )
        return len(view)


class _TimelyTextStream(io.TextIOWrapper):
    """Buffered output that still reaches the host line by line, unless the script floods.

    Each completed line is flushed at once while the script writes fewer than LINES_PER_WINDOW
    lines per WINDOW seconds, so what a script printed survives a later timeout or crash.
    Beyond that rate lines stay buffered (one host call per 8 KiB instead of one per line,
    ~50x faster for chatty scripts): only the tail of a flood can be lost to a timeout.
    """

    WINDOW = 0.05
    LINES_PER_WINDOW = 100

    def __init__(self, target: object) -> None:
        buffered = io.BufferedWriter(_HostOutput(target), _OUTPUT_BUFFER)
        super().__init__(buffered, encoding="utf-8", errors="backslashreplace")
        self._window_start = -1.0
        self._window_lines = 0

    def write(self, text: str) -> int:
        written = super().write(text)
        if "\n" in text:
            now = _monotonic()
            if now - self._window_start >= self.WINDOW:
                self._window_start, self._window_lines = now, 0
            if self._window_lines < self.LINES_PER_WINDOW:
                self._window_lines += 1
                self.flush()
        return written


class _HostInput(io.RawIOBase):
    """The raw end of `sys.stdin`: reads the host's stdin on demand, one `read-stdin` call per
    read (at most _HOST_CALL_BYTES; fewer when that is what the host has, so `input()` on an
    interactive pipe returns each line as it arrives, as in `python`)."""

    def __init__(self) -> None:
        super().__init__()
        self.used = False

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return _STDIN_FD

    def readinto(self, buffer) -> int:
        self.used = True
        view = memoryview(buffer).cast("B")
        data = host_api.read_stdin(min(len(view), _HOST_CALL_BYTES)).encode("latin-1")
        count = min(len(data), len(view))  # a misbehaving host cannot overrun the buffer
        view[:count] = data[:count]
        return count


def _stdin_stream() -> io.TextIOWrapper:
    raw = _HostInput()
    stream = io.TextIOWrapper(io.BufferedReader(raw), encoding="utf-8", errors="strict")
    stream._agentbox_raw = raw
    return stream


class ScriptRunner:
    """Owns `__main__` between calls so sessions can keep a script's globals."""

    def __init__(self) -> None:
        """Build time: everything made here is in the snapshot, so a run does not pay for it
        (each object a run creates costs page faults in the fresh memory image)."""
        self._main: types.ModuleType | None = None
        self._seeded = False
        self.reseed_hooks: list = []
        """More generators to reseed at an instance's first run (the data image: numpy's)."""
        os.environ.clear()  # the build's PYTHONHOME etc. are not the script's business
        self._stdout = _TimelyTextStream(host_api.STDOUT)
        self._stderr = _TimelyTextStream(host_api.STDERR)
        self._stdin = _stdin_stream()

    def warm_up(self) -> None:
        """Build time: run a script that prints, a few times, so that CPython's specialisation
        of the run path (it rewrites bytecode as it first executes it) is in the snapshot rather
        than copied, page by page, into every instance by its first run. Host calls cannot be
        made at build time, so the output goes nowhere, and the runs leave no state behind.

        Like any fresh run, these run the atexit handlers registered so far: those of preloaded
        modules (`logging.shutdown`, multiprocessing's exit hook), which an instance's first
        run used to pay for. A script's own atexit handlers still run at the end of its run.
        """
        host_write, host_api.write_output = host_api.write_output, _discard_output
        main = sys.modules.get("__main__")
        try:
            for _ in range(3):
                self.run(_WARM_UP_SCRIPT, "<stdin>", ["<stdin>"], {}, keep_globals=False)
                self._main = None
        finally:
            host_api.write_output = host_write
        if main is not None:
            sys.modules["__main__"] = main
        linecache.cache.pop("<stdin>", None)
        self._seeded = False  # each instance seeds its own on its first run
        self._stdout = _TimelyTextStream(host_api.STDOUT)  # a fresh rate window
        self._stderr = _TimelyTextStream(host_api.STDERR)

    def _fresh_main(self, filename: str) -> types.ModuleType:
        main = types.ModuleType("__main__")
        main.__dict__.update({"__builtins__": builtins, "__file__": filename, "__cached__": None})
        if filename == "<stdin>" or filename.startswith("<"):
            del main.__file__
        return main

    def run(
        self,
        source: bytes,
        filename: str,
        argv: list[str],
        env: dict[str, str],
        keep_globals: bool,
    ) -> tuple[int, str]:
        """Returns the exit status and the type name of the uncaught exception, if any."""
        if self._main is None or not keep_globals:
            self._main = self._fresh_main(filename)
        sys.modules["__main__"] = self._main
        sys.argv = list(argv)
        if os.environ:
            os.environ.clear()
        os.environ.update(env)
        if not self._seeded:  # the snapshot's state is every instance's: reseed each one once
            random.seed()
            for reseed in self.reseed_hooks:
                reseed()
            self._seeded = True
        self._install_streams()
        scratch.begin_run(fresh=not keep_globals)
        try:
            outcome = self._execute(source, filename)
            if not keep_globals and outcome[1] != HardExit.__name__:
                atexit._run_exitfuncs()
        finally:
            flush_standard_streams()
            scratch.send_outputs(host_api.output_file)
        return outcome

    def _install_streams(self) -> None:
        """The snapshot's streams, unless an earlier call of a session closed them (or read
        from stdin: each run reads its own stdin, with nothing left over from the last)."""
        if self._stdout.closed:
            self._stdout = _TimelyTextStream(host_api.STDOUT)
        if self._stderr.closed:
            self._stderr = _TimelyTextStream(host_api.STDERR)
        sys.stdout = sys.__stdout__ = self._stdout
        sys.stderr = sys.__stderr__ = self._stderr
        if self._stdin.closed or self._stdin._agentbox_raw.used:
            self._stdin = _stdin_stream()
        sys.stdin = sys.__stdin__ = self._stdin

    def _execute(self, source: bytes, filename: str) -> tuple[int, str]:
        try:
            _check_source(source, filename)
            code = compile(source, filename, "exec", dont_inherit=True)
        except (SyntaxError, ValueError) as error:
            # Like `python FILE`: a script that does not compile gets no traceback.
            flush_standard_streams()
            traceback.print_exception(type(error), error, None, file=sys.stderr, chain=False)
            return SCRIPT_ERROR_EXIT, type(error).__name__
        linecache.cache[filename] = (
            len(source),
            None,
            source.decode("utf-8", "replace").splitlines(keepends=True),
            filename,
        )
        try:
            exec(code, self._main.__dict__)
        except SystemExit as exit_request:
            return _exit_status(exit_request.code), ""
        except HardExit as hard_exit:
            return hard_exit.status, HardExit.__name__
        except BaseException as error:  # noqa: BLE001 - like Py_Main: report anything
            _print_exception(error)
            return SCRIPT_ERROR_EXIT, type(error).__name__
        return 0, ""


def _check_source(source: bytes, filename: str) -> None:
    """Raise the SyntaxError `python FILE` reports for null bytes and undeclared non-UTF-8.

    `compile()` words both differently from the interpreter reading a file.
    """
    null = source.find(b"\0")
    if null >= 0:
        line_start = source.rfind(b"\n", 0, null) + 1
        text = source[line_start:null].decode("utf-8", "replace")
        line_number = source.count(b"\n", 0, null) + 1
        raise SyntaxError(
            "source code cannot contain null bytes", (filename, line_number, None, text)
        )
    try:
        source.decode("utf-8")
        return
    except UnicodeDecodeError as error:
        bad_byte, line_number = source[error.start], source.count(b"\n", 0, error.start) + 1
    try:
        declared, _ = tokenize.detect_encoding(io.BytesIO(source).readline)
    except SyntaxError:
        declared = "utf-8"
    if declared in ("utf-8", "utf-8-sig"):
        raise SyntaxError(
            f"Non-UTF-8 code starting with '\\x{bad_byte:02x}' in file {filename} "
            f"on line {line_number}, but no encoding declared; "
            "see https://peps.python.org/pep-0263/ for details"
        )


def _exit_status(code: object) -> int:
    """What `sys.exit(code)` makes the process return."""
    if code is None:
        return 0
    if isinstance(code, int) and not isinstance(code, bool):
        return code
    if isinstance(code, bool):
        return int(code)
    flush_standard_streams()
    print(code, file=sys.stderr)
    return SCRIPT_ERROR_EXIT


def _print_exception(error: BaseException) -> None:
    """The traceback `python` prints, minus the runner's own frame."""
    flush_standard_streams()
    traceback_ = error.__traceback__
    if traceback_ is not None and traceback_.tb_frame.f_code is ScriptRunner._execute.__code__:
        traceback_ = traceback_.tb_next
    traceback.print_exception(type(error), error, traceback_, file=sys.stderr)
