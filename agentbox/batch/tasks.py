"""Batch tasks and their results: the JSON Lines formats of `agentbox batch`, defined once.

A task is one JSON object per line: `id` (a string or an integer, unique in the batch) and
`code`, optionally `stdin`, `args`, `files` (read-only inputs under /input, as MCP's `files`:
`[{"name": ..., "text" or "base64": ...}]`) and the per-task limits `timeout`, `memory`,
`max_output` and `fuel`, each capped by the batch's own. A result is one JSON object per line
with the task's `id`, the run's `exit_code`, `stdout`, `stderr`, `limit`, `duration_ms`,
`skill_calls`, `truncated`, `message`, `files` (what the task left in /output, base64) and
`files_dropped`, and `error` (null unless the task could not be run at all: a malformed line,
a bad field, a worker that died twice on it).
"""

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from agentbox.errors import UsageError
from agentbox.input_files import from_wire, guest_path
from agentbox.limits import Limits, parse_size
from agentbox.result import RunResult

TaskId = str | int
Status = Literal["passed", "failed", "limit", "error"]

_LIMIT_FIELDS = ("timeout", "memory", "max_output", "fuel")
FIELDS = frozenset({"id", "code", "stdin", "args", "files", *_LIMIT_FIELDS})


class TaskError(ValueError):
    """A task that cannot be run: it becomes an error result, never a crash."""


@dataclass(frozen=True)
class Task:
    """One program to run in a fresh sandbox. Limits left None are the batch's own."""

    id: TaskId
    code: str
    stdin: str = ""
    args: tuple[str, ...] = ()
    files: tuple[tuple[str, bytes], ...] = ()
    """Read-only inputs: (path under /input, bytes)."""
    timeout: float | None = None
    memory: int | None = None
    max_output: int | None = None
    fuel: int | None = None

    @classmethod
    def from_json(cls, data: Any) -> "Task":
        """A task from a decoded JSON object (or any mapping); TaskError says what is wrong."""
        if isinstance(data, Task):
            return data
        if not isinstance(data, Mapping):
            raise TaskError(f"a task must be a JSON object, not {_json_type(data)}")
        unknown = sorted(set(data) - FIELDS)
        if unknown:
            raise TaskError(f"unknown field {unknown[0]!r} (fields: {', '.join(sorted(FIELDS))})")
        if "id" not in data:
            raise TaskError("the task has no 'id'")
        task_id = data["id"]
        if isinstance(task_id, bool) or not isinstance(task_id, str | int):
            raise TaskError(f"'id' must be a string or an integer, not {_json_type(task_id)}")
        code = data.get("code")
        if not isinstance(code, str):
            raise TaskError(f"'code' must be a string, not {_json_type(code)}")
        stdin = data.get("stdin", "")
        if not isinstance(stdin, str):
            raise TaskError(f"'stdin' must be a string, not {_json_type(stdin)}")
        args = data.get("args", [])
        if not isinstance(args, list) or not all(isinstance(arg, str) for arg in args):
            raise TaskError("'args' must be a list of strings")
        try:
            files = tuple(
                (guest_path(name), content)
                for name, content in from_wire(data.get("files", [])).items()
            )
        except UsageError as error:
            raise TaskError(f"'files': {error.message}") from None
        limits: dict[str, Any] = {}
        for name in _LIMIT_FIELDS:
            value = data.get(name)
            if value is None:
                continue
            try:
                limits[name] = _limit_value(name, value)
            except UsageError as error:
                raise TaskError(f"'{name}': {error.message}") from None
        return cls(id=task_id, code=code, stdin=stdin, args=tuple(args), files=files, **limits)

    def limits_within(self, caps: Limits) -> Limits:
        """This task's limits, each capped by the batch's (`caps`); invalid ones raise."""
        fuel = caps.fuel if self.fuel is None else min(self.fuel, caps.fuel or self.fuel)
        try:
            return dataclasses.replace(
                caps,
                timeout=min(self.timeout or caps.timeout, caps.timeout),
                memory=min(self.memory or caps.memory, caps.memory),
                max_output=min(
                    caps.max_output if self.max_output is None else self.max_output,
                    caps.max_output,
                ),
                fuel=fuel,
            )
        except UsageError as error:
            raise TaskError(error.message) from None


def _limit_value(name: str, value: Any) -> float | int:
    if isinstance(value, bool):
        raise UsageError(f"not a number: {value!r}")
    if name in ("memory", "max_output"):
        if isinstance(value, str):
            return parse_size(value)
        if isinstance(value, int) and value >= 0:
            return value
        raise UsageError(f"a size (bytes, or a string like '256M'), not {value!r}")
    if name == "fuel":
        if isinstance(value, int) and value > 0:
            return value
        raise UsageError(f"a positive integer, not {value!r}")
    if isinstance(value, int | float) and value > 0:
        return float(value)
    raise UsageError(f"a positive number of seconds, not {value!r}")


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)


@dataclass(frozen=True)
class TaskResult:
    """What one task did: a `RunResult`'s fields, or `error` when it could not run at all."""

    id: TaskId | None
    exit_code: int | None
    stdout: str = ""
    stderr: str = ""
    limit: str | None = None
    duration_ms: float = 0.0
    skill_calls: list[dict[str, Any]] = field(default_factory=list)
    truncated: bool = False
    message: str | None = None
    files: list[dict[str, Any]] = field(default_factory=list)
    files_dropped: int = 0
    error: str | None = None
    line: int | None = None
    """The input line, for a result whose line had no usable id."""

    @property
    def status(self) -> Status:
        if self.error is not None:
            return "error"
        if self.limit is not None:
            return "limit"
        return "passed" if self.exit_code == 0 else "failed"

    @property
    def ok(self) -> bool:
        return self.status == "passed"

    @classmethod
    def from_run(cls, task_id: TaskId, result: RunResult) -> "TaskResult":
        data = result.to_json(file_contents=True)
        return cls(
            id=task_id,
            exit_code=int(result.exit_code),
            stdout=result.stdout,
            stderr=result.stderr,
            limit=result.limit,
            duration_ms=round(result.duration_ms, 3),
            skill_calls=data["skill_calls"],
            truncated=result.truncated,
            message=result.message,
            files=data["files"],
            files_dropped=result.files_dropped,
        )

    @classmethod
    def failure(cls, task_id: TaskId | None, error: str, line: int | None = None) -> "TaskResult":
        return cls(id=task_id, exit_code=None, error=error, line=line)

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if data["line"] is None:
            del data["line"]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "TaskResult":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})

    def dumps(self) -> bytes:
        """One line of the results file, newline included."""
        return (json.dumps(self.to_json(), ensure_ascii=False) + "\n").encode("utf-8")


def parse_task_line(line: bytes, number: int) -> "Task | TaskResult":
    """A task from one line of a tasks file, or the error result that stands in for it."""
    try:
        data = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return TaskResult.failure(None, f"line {number}: not valid JSON: {error}", line=number)
    try:
        return Task.from_json(data)
    except TaskError as error:
        task_id = data.get("id") if isinstance(data, dict) else None
        if isinstance(task_id, bool) or not isinstance(task_id, str | int):
            return TaskResult.failure(None, f"line {number}: {error}", line=number)
        return TaskResult.failure(task_id, f"line {number}: {error}")


def id_key(task_id: TaskId) -> str:
    """Ids compare as JSON values: `1` and `"1"` are different tasks."""
    return json.dumps(task_id)
