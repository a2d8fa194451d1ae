"""What a run returns."""

import base64
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

LimitName = Literal["timeout", "memory", "fuel", "crash"]


@dataclass(frozen=True)
class SkillCall:
    """One call the script made through the skill bridge (the first 1000 of a run are kept)."""

    name: str
    """The name the script asked for; past 200 characters, cut with a `...[N more characters]`
    marker (so are errors, past 1000)."""
    duration_ms: float
    ok: bool
    error: str | None = None


@dataclass(frozen=True)
class OutputFile:
    """A file the script left in `/output` (`name` is relative to it, `/`-separated)."""

    name: str
    data: bytes
    media_type: str

    @property
    def size(self) -> int:
        return len(self.data)

    def to_json(self, with_content: bool = False) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": self.name,
            "size": self.size,
            "media_type": self.media_type,
        }
        if with_content:
            entry["base64"] = base64.b64encode(self.data).decode("ascii")
        return entry


@dataclass(frozen=True)
class RunResult:
    """The outcome of one script run. `stdout`/`stderr` are decoded views of the raw bytes."""

    stdout_bytes: bytes
    stderr_bytes: bytes
    exit_code: int
    duration_ms: float
    limit: LimitName | None = None
    """Which limit ended the run (`crash`: the sandbox trapped), or None."""
    message: str | None = None
    """agentbox's own explanation when a limit ended the run or output was dropped."""
    truncated: bool = False
    """True when stdout or stderr went past `max_output` and the excess was dropped."""
    skill_calls: list[SkillCall] = field(default_factory=list)
    skill_calls_unrecorded: int = 0
    """Skill calls made after `skill_calls` was full (it keeps a run's first 1000 calls)."""
    engine: str = "wasm"
    session_reset: bool = False
    """For session runs: the session's interpreter was lost (limit or crash) and starts anew."""
    files: list[OutputFile] = field(default_factory=list)
    """What the script left in `/output`, within `max_output_files` (see `files_dropped`)."""
    files_dropped: int = 0
    """Files in `/output` that did not come back (over the caps); named in `message`."""

    @property
    def stdout(self) -> str:
        return self.stdout_bytes.decode("utf-8", "replace")

    @property
    def stderr(self) -> str:
        return self.stderr_bytes.decode("utf-8", "replace")

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.limit is None

    def to_json(self, file_contents: bool = False) -> dict[str, Any]:
        """The `--json` object (also what the MCP server and the HTTP API return); files are
        listed, with their bytes in base64 when `file_contents`."""
        return {
            "stdout": self.stdout,
            "stderr": self.stderr,
            "exit_code": self.exit_code,
            "duration_ms": round(self.duration_ms, 3),
            "limit": self.limit,
            "message": self.message,
            "truncated": self.truncated,
            "skill_calls": [asdict(call) for call in self.skill_calls],
            "skill_calls_unrecorded": self.skill_calls_unrecorded,
            "engine": self.engine,
            "files": [file.to_json(file_contents) for file in self.files],
            "files_dropped": self.files_dropped,
        }
