"""Replacements for the few stdlib functions whose WASI behaviour defeats the host's control.

- `time.sleep` returns to WebAssembly every 20 ms. A guest blocked inside a host call is not
  interrupted by wasmtime's epoch deadline, so one long sleep would outlive the run's timeout;
  slices let the deadline fire on time. This is a fast path only: the host's watchdog is what
  guarantees the timeout (see docs/security.md).
- asyncio's event loop needs no self-pipe (WASI cannot create sockets, and there are no other
  threads to wake the loop) and waits in the same short slices as `time.sleep`.
- `os._exit(n)` flushes stdout/stderr and ends the script with status `n`. The raw WASI exit can
  only report success or failure (0 or 1), and would drop output still buffered in the guest.
"""

import asyncio
import contextlib
import os
import selectors
import sys
import time

SLICE_SECONDS = 0.02
_raw_sleep = time.sleep
_monotonic = time.monotonic


class HardExit(BaseException):
    """Raised by `os._exit`; the runner turns it into the exit status without running atexit."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def flush_standard_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a script may have replaced or closed them
            stream.flush()


def sliced_sleep(seconds: float) -> None:
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    flush_standard_streams()
    deadline = _monotonic() + seconds
    while True:
        remaining = deadline - _monotonic()
        if remaining <= 0:
            return
        _raw_sleep(min(remaining, SLICE_SECONDS))


def hard_exit(status: int) -> None:
    flush_standard_streams()
    raise HardExit(int(status))


class SandboxSelector(selectors.SelectSelector):
    """With no descriptor to watch (sockets are denied), waiting is sleeping: sliced."""

    def select(self, timeout: float | None = None):
        if self.get_map():
            return super().select(timeout)
        if timeout is None:
            while True:
                sliced_sleep(SLICE_SECONDS * 50)
        if timeout > 0:
            sliced_sleep(timeout)
        return []


class SandboxEventLoop(asyncio.SelectorEventLoop):
    """`asyncio.run()` works: no self-pipe, sliced waits."""

    def __init__(self, selector: selectors.BaseSelector | None = None) -> None:
        super().__init__(selector or SandboxSelector())

    def _make_self_pipe(self) -> None:
        pass

    def _close_self_pipe(self) -> None:
        pass

    def _write_to_self(self) -> None:
        pass


def install() -> None:
    sliced_sleep.__doc__ = _raw_sleep.__doc__
    hard_exit.__doc__ = os._exit.__doc__
    time.sleep = sliced_sleep
    os._exit = hard_exit
    asyncio.SelectorEventLoop = asyncio.EventLoop = SandboxEventLoop
    asyncio.DefaultEventLoopPolicy._loop_factory = SandboxEventLoop
