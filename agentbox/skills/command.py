"""Skills backed by an external command: `--skill NAME=COMMAND` or `[skills.NAME] command = ...`.

The command is started once per call, never through a shell (split like a POSIX shell would,
with shlex). The call's data arrives as JSON on its stdin; its stdout must be the JSON result.
A non-zero exit becomes a SkillError carrying the last line of its stderr.

Nothing a call starts outlives it: the command runs in a process group of its own (a new
session), which is killed when the call ends, at the latest at its timeout or its run's
deadline. It sees a minimal environment (PASSED_VARIABLES), not agentbox's own, which may hold
secrets such as API keys.
"""

import atexit
import contextlib
import json
import os
import shlex
import subprocess
import sys
import threading
import time
from typing import Any

from agentbox.errors import UsageError
from agentbox.skills.bridge import Skill, SkillFailure, call_deadline

# What a command needs to find programs, its home, its locale and a temporary folder; on
# Windows also what a process needs to start at all. Nothing else of agentbox's environment.
PASSED_VARIABLES = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR")
PASSED_VARIABLES_WINDOWS = ("SYSTEMROOT", "PATHEXT", "TEMP", "TMP", "USERPROFILE", "COMSPEC")


def command_environment() -> dict[str, str]:
    """The environment a command skill starts with."""
    names = PASSED_VARIABLES + (PASSED_VARIABLES_WINDOWS if sys.platform == "win32" else ())
    return {name: os.environ[name] for name in names if name in os.environ}


def split_command(command: str | list[str]) -> list[str]:
    argv = list(command) if isinstance(command, list) else shlex.split(command, posix=True)
    if not argv:
        raise UsageError("a skill command must not be empty")
    return argv


def parse_skill_option(text: str) -> tuple[str, str]:
    """`NAME=COMMAND` -> (name, command)."""
    name, separator, command = text.partition("=")
    name = name.strip()
    if not separator or not name.isidentifier() or not command.strip():
        raise UsageError(f"invalid --skill {text!r}: use NAME=COMMAND (NAME a Python identifier)")
    return name, command


def command_skill(
    name: str,
    command: str | list[str],
    *,
    description: str = "",
    parameters: dict[str, Any] | None = None,
    timeout: float | None = None,
) -> Skill:
    """A Skill that runs `command` per call (killed after `timeout` seconds)."""
    argv = split_command(command)

    def run_command(data: Any = None) -> Any:
        deadline = call_deadline()
        limit = timeout if deadline is None else max(0.0, deadline - time.monotonic())
        returncode, stdout, stderr = run_process_group(name, argv, json.dumps(data).encode(), limit)
        if returncode != 0:
            lines = stderr.decode("utf-8", "replace").strip().splitlines()
            detail = lines[-1] if lines else "no error message"
            raise SkillFailure(f"skill {name!r} exited with {returncode}: {detail}")
        try:
            return json.loads(stdout)
        except ValueError:
            raise SkillFailure(f"skill {name!r} did not print a JSON result") from None

    return Skill(
        name=name,
        function=run_command,
        description=description or f"Runs `{shlex.join(argv)}` on the host.",
        parameters=parameters or {"type": "object"},
        timeout=timeout,
        raw_data=True,
    )


def run_process_group(
    name: str, argv: list[str], data: bytes, timeout: float | None
) -> tuple[int, bytes, bytes]:
    """Run `argv` with `data` on its stdin; its whole process group is killed when it returns
    or when `timeout` passes (TimeoutError). On Windows only the process itself is killed."""
    new_group: dict[str, Any] = (
        {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}  # type: ignore[attr-defined]
        if sys.platform == "win32"
        else {"start_new_session": True}
    )
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=command_environment(),
            **new_group,
        )
    except OSError as error:
        raise SkillFailure(f"skill {name!r} could not start: {error.strerror or error}") from None
    with _live_lock:
        _live.add(process)
    try:
        stdout, stderr = process.communicate(data, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise TimeoutError from None
    finally:
        _kill_group(process)
        with _live_lock:
            _live.discard(process)
    return process.returncode, stdout, stderr


# Commands still running, so that agentbox ending (an abandoned call's thread does not run its
# cleanup when the interpreter exits) still ends them.
_live: "set[subprocess.Popen[bytes]]" = set()
_live_lock = threading.Lock()


@atexit.register
def end_running_commands() -> None:
    """End every command skill still running (and what it started). Runs at interpreter exit;
    the CLI, which leaves with `os._exit` (no atexit), calls it itself."""
    with _live_lock:
        running = list(_live)
    for process in running:
        _kill_group(process)


def _kill_group(process: "subprocess.Popen[bytes]") -> None:
    """End the command and everything it started (its group outlives it while members do)."""
    if sys.platform != "win32":
        import signal

        with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone
            os.killpg(process.pid, signal.SIGKILL)
    if process.poll() is None:
        process.kill()
    process.wait()
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            stream.close()
