"""The interface every engine implements, and the request it receives."""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from agentbox.limits import Limits
from agentbox.mounts import Mount
from agentbox.result import RunResult
from agentbox.skills import RunSkills

# Where an engine reports slow one-time work (compiling the guest), one line at a time.
Progress = Callable[[str], None]

# The name a script read from stdin (or given as a string) runs under, as with `python -`.
DEFAULT_FILENAME = "<stdin>"


@dataclass(frozen=True)
class ScriptRequest:
    """One script and what it sees of the outside."""

    source: bytes
    filename: str = DEFAULT_FILENAME
    args: Sequence[str] = ()
    stdin: bytes = b""
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunSettings:
    """What a `Sandbox` fixes for all its runs."""

    limits: Limits = field(default_factory=Limits)
    mounts: Sequence[Mount] = ()
    files: Sequence[tuple[str, bytes]] = ()
    """Input files copied into the run, read-only: (guest path under /input, bytes)."""


class Engine(Protocol):
    """Runs scripts; must never raise for anything the script does."""

    name: str

    def run(self, request: ScriptRequest, settings: RunSettings, skills: RunSkills) -> RunResult:
        """Run one script in a fresh interpreter."""
        ...
