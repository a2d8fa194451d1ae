"""Reading a tasks file and resuming a results file (the `agentbox batch` command's I/O)."""

import json
import os
from dataclasses import dataclass, field

from agentbox.batch.tasks import Task, TaskResult, id_key, parse_task_line
from agentbox.errors import UsageError


def parse_tasks(data: bytes, name: str) -> list[Task | TaskResult]:
    """Every line of a tasks file: a task, or the error result standing in for a bad line.

    Blank lines are skipped. A repeated id refuses the whole batch (UsageError): which of the
    two was meant cannot be guessed, and results are keyed by id."""
    items: list[Task | TaskResult] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        item = parse_task_line(line, number)
        items.append(item)
        if item.id is None:
            continue
        key = id_key(item.id)
        if key in first_line:
            raise UsageError(
                f"{name}: duplicate task id {key} on lines {first_line[key]} and {number} "
                "(ids must be unique)"
            )
        first_line[key] = number
    return items


@dataclass
class Done:
    """What a results file already holds: ids, and the lines of id-less error results."""

    ids: set[str] = field(default_factory=set)
    lines: set[int] = field(default_factory=set)
    repaired: bool = False

    def __len__(self) -> int:
        return len(self.ids) + len(self.lines)

    def covers(self, item: Task | TaskResult) -> bool:
        if item.id is not None:
            return id_key(item.id) in self.ids
        return isinstance(item, TaskResult) and item.line in self.lines


def resume(path: str) -> Done:
    """The results already in `path` (none if it does not exist).

    A last line without its newline (the process was killed mid-write: Ctrl-C never leaves
    one) is cut off, so that task runs again. A complete line that is not a result means
    `path` is some other file: refused rather than appended to."""
    done = Done()
    try:
        with open(path, "rb") as file:
            data = file.read()
    except FileNotFoundError:
        return done
    except IsADirectoryError:
        raise UsageError(f"cannot write results to {path!r}: it is a directory") from None
    except OSError as error:
        raise UsageError(f"cannot read {path!r}: {error.strerror or error}") from None
    complete, _, partial = data.rpartition(b"\n")
    if partial:
        with open(path, "r+b") as file:
            file.truncate(len(complete) + 1 if b"\n" in data else 0)
        done.repaired = True
    for number, line in enumerate(complete.split(b"\n") if complete else [], start=1):
        if not line.strip():
            continue
        try:
            result = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError):
            result = None
        if not isinstance(result, dict) or "id" not in result:
            raise UsageError(
                f"{path!r} is not a results file (line {number} is not a result): "
                "name a new file, or the results of an earlier run of this batch"
            )
        if result["id"] is not None:
            done.ids.add(id_key(result["id"]))
        elif isinstance(result.get("line"), int):
            done.lines.add(result["line"])
    return done


def append_line(descriptor: int, line: bytes) -> None:
    """Write one whole line (a loop: a pipe may take it in parts)."""
    view = memoryview(line)
    while view:
        written = os.write(descriptor, view)
        view = view[written:]
