"""The interface every engine implements, and the request it receives."""

import io
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from agentbox.limits import Limits
from agentbox.mounts import Mount
from agentbox.output import LiveOutput
from agentbox.result import RunResult
from agentbox.skills import RunSkills

# Where an engine reports slow one-time work (compiling the guest), one line at a time.
Progress = Callable[[str], None]

# Reads at most `size` bytes of a script's stdin as it asks for them (fewer when that is what is
# available; b"" at the end). Called on the run's thread; it may block (the deadline still holds).
StdinReader = Callable[[int], bytes]


class SupportsRead(Protocol):
    """What `stdin=` may also be: a binary stream (`io.BytesIO`, an open file, a pipe).
    `read1` is used when it has one, so a script reading a line gets it as it arrives."""

    def read(self, size: int = -1, /) -> bytes: ...


def read_all_within(read: StdinReader, timeout: float) -> tuple[bytes, bool, OSError | None]:
    """What `read` yields until its end, its first error or `timeout`, read on a thread of its
    own (a pipe left open is never waited for past `timeout`): (the bytes, whether it ended,
    the error that ended it). The thread is left reading if it did not end."""
    chunks: list[bytes] = []
    errors: list[OSError] = []

    def collect() -> None:
        try:
            while data := read(1 << 20):
                chunks.append(data)
        except OSError as error:
            errors.append(error)

    collector = threading.Thread(target=collect, name="agentbox-stdin", daemon=True)
    collector.start()
    collector.join(timeout)
    ended = not collector.is_alive()
    return b"".join(chunks), ended, errors[0] if errors else None


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
    stdin_reader: StdinReader | None = None
    """Where `sys.stdin` reads on demand instead of `stdin`."""
    argv0: str | None = None
    """`sys.argv[0]` when it differs from `filename` (`-` for `agentbox run -`)."""
    on_output: LiveOutput | None = None
    """Receives the output the run keeps, as the script produces it."""
    files: Sequence[tuple[str, bytes]] = ()
    """This run's own input files, added to the sandbox's (the same path: this run's wins)."""

    def stdin_source(self) -> StdinReader:
        """What the script's `sys.stdin` reads: the caller's reader, else `stdin`'s bytes."""
        return self.stdin_reader if self.stdin_reader is not None else io.BytesIO(self.stdin).read


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
