"""Helpers for tests that drive the real `agentbox` process."""

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

# Long enough that no working limit comes near it (they end runs within seconds): a guard that
# turns a hang into a failure, not a speed check (speed is measured in benchmarks/).
HANG_GUARD_SECONDS = 120.0
# A whole CLI process on a busy 2-core machine may also compile the sandbox (tens of seconds,
# minutes under load): its guard is longer still.
PROCESS_HANG_GUARD_SECONDS = 600.0
PRINT_OK = b"print('ok')"


def run_cli(
    *args: str,
    stdin: bytes | None = None,
    env: dict[str, str] | None = None,
    timeout: float = PROCESS_HANG_GUARD_SECONDS,
    new_session: bool = False,
) -> subprocess.CompletedProcess[bytes]:
    """Run `python -m agentbox ARGS` in a subprocess: the real entry point users run.

    `new_session` detaches it from the controlling terminal (as under CI).
    """
    return subprocess.run(
        [sys.executable, "-m", "agentbox", *args],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        start_new_session=new_session,
    )


_POLL_SECONDS = 0.01


def wait_until(condition: Callable[[], bool]) -> bool:
    """Poll `condition` until it holds (True) or the hang guard's worth of polls ran out
    (False): for what happens on another thread, with no event to wait on."""
    for _ in range(int(HANG_GUARD_SECONDS / _POLL_SECONDS)):
        if condition():
            return True
        time.sleep(_POLL_SECONDS)
    return condition()


def returns(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`function(*args, **kwargs)`, failing the test if it has not returned within the guard.

    The attacks on the wall-clock limit sleep for an hour: without the guard, a broken limit
    would hang the test suite instead of failing it.
    """
    box: dict[str, Any] = {}

    def call() -> None:
        try:
            box["value"] = function(*args, **kwargs)
        except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread
            box["error"] = error

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(HANG_GUARD_SECONDS)
    if worker.is_alive():
        raise AssertionError(f"did not return within {HANG_GUARD_SECONDS:g} s: the limit failed")
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


# An attack run in the sandbox: `argv[2]` is the attempt, with `MARKER` (argv[1]) a host path
# it would create if it got out. Prints `BLOCKED <error type>` when refused, `LEAK` otherwise.
MARKER_ATTACK = textwrap.dedent(
    """
    import sys
    MARKER = sys.argv[1]
    try:
        exec(sys.argv[2])
    except BaseException as error:
        print("BLOCKED", type(error).__name__)
    else:
        print("LEAK")
    """
)


def run_compiling(
    cache: "os.PathLike[str] | str", *args: str, code: bytes = PRINT_OK
) -> subprocess.CompletedProcess[bytes]:
    """`agentbox run ARGS -` with `cache` as its cache folder, where it may compile the sandbox
    first: the script's deadline and the process's guard both outlast a compile under load."""
    return run_cli(
        "run",
        "--timeout",
        str(PROCESS_HANG_GUARD_SECONDS),
        *args,
        "-",
        stdin=code,
        env={"AGENTBOX_CACHE_DIR": os.fspath(cache)},
    )
