"""What `agentbox run` does while the script runs: its output reaches the terminal or pipe as
the script flushes it, the host's stdin is read as the script asks, and Ctrl-C or SIGTERM end
the process with 130 or 143 after what the script printed.

Output is written with `os.write` on the process's descriptors, not through `sys.stdout`: a
write blocked on a full pipe then holds no lock the exit path needs, so a signal still ends
the process at once.
"""

import os
import select
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import BinaryIO

from agentbox.exit_codes import ExitCode
from agentbox.output import StreamName

# How long an interrupted CLI waits for a write in progress (to a slow reader) before exiting.
INTERRUPT_WRITE_WAIT_SECONDS = 1.0

SIGNAL_EXIT_CODES = {
    signal.SIGINT: ExitCode.INTERRUPTED,
    signal.SIGTERM: ExitCode.TERMINATED,
}


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived: raised on the main thread, wherever it waits."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.exit_code = SIGNAL_EXIT_CODES[signal.Signals(signum)]
        self.name = signal.Signals(signum).name


_interrupted = threading.Event()


def _raise_interrupted(signum: int, _frame: FrameType | None) -> None:
    if _interrupted.is_set():  # a second signal while the first one is being handled: now
        os._exit(SIGNAL_EXIT_CODES[signal.Signals(signum)])
    _interrupted.set()
    raise Interrupted(signum)


@contextmanager
def interrupts_raised() -> Iterator[None]:
    """While the block runs, SIGINT and SIGTERM raise `Interrupted` in the main thread (a second
    one while the first is handled exits at once). The previous handlers come back after, for
    a host that invokes the command in its own process (Click's test runner)."""
    _interrupted.clear()
    previous = {signum: signal.signal(signum, _raise_interrupted) for signum in SIGNAL_EXIT_CODES}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _descriptor(stream: object) -> int | None:
    try:
        return stream.fileno()  # type: ignore[attr-defined, no-any-return]
    except (AttributeError, OSError, ValueError):
        return None


class LiveWriter:
    """`on_output` for the CLI: writes each piece to the process's stdout or stderr at once
    (`collect=True`, for `--json`: keeps it instead). A stream whose reader went away
    (`... | head -1`) is no longer written; the script runs on, as with the other stream."""

    def __init__(self, collect: bool = False) -> None:
        self._collect = collect
        self.collected: dict[StreamName, list[bytes]] = {"stdout": [], "stderr": []}
        self._closed: set[StreamName] = set()
        self._lock = threading.Lock()
        self._stopped = False

    def __call__(self, stream: StreamName, data: bytes) -> None:
        with self._lock:
            if self._stopped or stream in self._closed:
                return
            if self._collect:
                self.collected[stream].append(data)
                return
            try:
                _write(sys.stdout if stream == "stdout" else sys.stderr, data)
            except BrokenPipeError:
                self._closed.add(stream)

    def stop(self) -> None:
        """No more writes: the process is about to say its last line and exit. Waits briefly
        for a write in progress, so a line is not cut by the message that follows."""
        acquired = self._lock.acquire(timeout=INTERRUPT_WRITE_WAIT_SECONDS)
        self._stopped = True
        if acquired:
            self._lock.release()

    def text(self, stream: StreamName) -> bytes:
        return b"".join(self.collected[stream])


def _write(stream: object, data: bytes) -> None:
    descriptor = _descriptor(stream)
    if descriptor is None:  # replaced by an embedding host: its own write
        binary: BinaryIO = getattr(stream, "buffer", stream)  # type: ignore[arg-type]
        binary.write(data)
        binary.flush()
        return
    view = memoryview(data)
    while view:
        try:
            written = os.write(descriptor, view)
        except BlockingIOError:  # a non-blocking descriptor (inherited): wait until writable
            select.select([], [descriptor], [])
            continue
        view = view[written:]


class HostStdin:
    """The host's stdin for the script to read on demand: a raw read returns what is there
    (a line typed or piped), so a script gets each line as it arrives, as with `python`."""

    def __init__(self, descriptor: int) -> None:
        self._descriptor = descriptor

    def read(self, size: int = -1, /) -> bytes:
        return self.read1(size)

    def read1(self, size: int = -1, /) -> bytes:
        if size <= 0:
            return b""
        while True:
            try:
                return os.read(self._descriptor, size)
            except BlockingIOError:  # a non-blocking descriptor (inherited): wait for input
                select.select([self._descriptor], [], [])


def host_stdin() -> HostStdin | None:
    """The process's stdin, if it has one."""
    if sys.stdin is None or sys.stdin.closed:
        return None
    descriptor = _descriptor(sys.stdin)
    return None if descriptor is None else HostStdin(descriptor)
