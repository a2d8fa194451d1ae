"""Skills backed by an external command: `--skill NAME=COMMAND` or `[skills.NAME] command = ...`.

The command is started once per call, never through a shell (split like a POSIX shell would,
with shlex). The call's data arrives as JSON on its stdin; its stdout must be the JSON result.
A non-zero exit becomes a SkillError carrying the last line of its stderr.
"""

import json
import shlex
from typing import Any

from agentbox.errors import UsageError
from agentbox.skills import Skill, SkillFailure


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
        import subprocess

        try:
            completed = subprocess.run(
                argv, input=json.dumps(data).encode(), capture_output=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            raise TimeoutError from None
        except OSError as error:
            reason = error.strerror or error
            raise SkillFailure(f"skill {name!r} could not start: {reason}") from None
        if completed.returncode != 0:
            lines = completed.stderr.decode("utf-8", "replace").strip().splitlines()
            detail = lines[-1] if lines else "no error message"
            raise SkillFailure(f"skill {name!r} exited with {completed.returncode}: {detail}")
        try:
            return json.loads(completed.stdout)
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
