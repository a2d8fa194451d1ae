"""Helpers for tests that drive the real `agentbox` process."""

import os
import subprocess
import sys


def run_cli(
    *args: str,
    stdin: bytes | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60,
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
