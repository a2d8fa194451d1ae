"""Resource limits of a run: defaults, size parsing, validation. Defined once, used everywhere."""

import dataclasses
import math
import re
from dataclasses import dataclass

from agentbox.errors import UsageError

MIB = 1024 * 1024

DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_MEMORY_BYTES = 512 * MIB
DEFAULT_MAX_OUTPUT_BYTES = 10 * MIB
# What /tmp and /output may hold together (in the guest's memory, so within --memory too).
DEFAULT_SCRATCH_BYTES = 64 * MIB
# What the files a run leaves in /output may total when they come back (RunResult.files).
DEFAULT_MAX_OUTPUT_FILES_BYTES = 16 * MIB
# At most this many files come back from /output; names longer than this are dropped.
MAX_OUTPUT_FILE_COUNT = 1000
MAX_OUTPUT_NAME_BYTES = 1024
# The most file content one MCP tool result carries (images and embedded resources).
MCP_MAX_FILE_CONTENT_BYTES = 8 * MIB
# Below this the snapshotted interpreter cannot even start (its memory image is ~40 MiB).
MIN_MEMORY_BYTES = 64 * MIB
# A wasm32 linear memory cannot grow past 4 GiB: a larger limit would be meaningless.
MAX_MEMORY_BYTES = 4 * 1024 * MIB
# Long enough for any real job; beyond it deadlines no longer fit the host's clocks.
MAX_TIMEOUT_SECONDS = 7 * 24 * 3600.0

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_size(text: str | int) -> int:
    """`512M`, `1.5G`, `64MiB`, `1048576` -> bytes (binary units: the sandbox's memory is paged)."""
    if isinstance(text, int):
        return text
    match = _SIZE.match(text)
    if not match:
        raise UsageError(f"invalid size {text!r}: use a number with an optional K, M or G suffix")
    number, unit, _ = match.groups()
    return int(float(number) * _UNITS[unit.lower()])


def _size_text(size: int) -> str:
    for unit, name in ((1024**3, "GiB"), (MIB, "MiB"), (1024, "KiB")):
        if size >= unit and size % unit == 0:
            return f"{size // unit} {name}"
    return f"{size} bytes"


# What each limit accepts, as its error messages say it ("must be ...", after the limit's name).
TIMEOUT_RANGE = f"more than 0 and at most {MAX_TIMEOUT_SECONDS:g} seconds (7 days)"
MEMORY_RANGE = f"{_size_text(MIN_MEMORY_BYTES)}..{_size_text(MAX_MEMORY_BYTES)}"
MAX_OUTPUT_RANGE = "0 bytes or more"
FUEL_RANGE = "a whole number of units, 1 or more"


def check_timeout(value: float) -> None:
    """Raise a one-line UsageError ("must be ...") unless `value` is a valid timeout."""
    valid = isinstance(value, int | float) and not isinstance(value, bool)
    if not (valid and math.isfinite(value) and 0 < value <= MAX_TIMEOUT_SECONDS):
        shown = f"{value:g}" if valid else repr(value)
        raise UsageError(f"must be {TIMEOUT_RANGE}, not {shown}")


def check_memory(value: int) -> None:
    if not MIN_MEMORY_BYTES <= value <= MAX_MEMORY_BYTES:
        raise UsageError(
            f"must be {MEMORY_RANGE} (the most a wasm32 sandbox can use), not {_size_text(value)}"
        )


def check_max_output(value: int) -> None:
    """Also for the other byte caps (`scratch`, `max_output_files`): 0 or more."""
    if value < 0:
        raise UsageError(f"must be {MAX_OUTPUT_RANGE}, not {value}")


def check_fuel(value: int | None) -> None:
    if value is not None and value <= 0:
        raise UsageError(f"must be {FUEL_RANGE}, not {value}")


_CHECKS = {
    "timeout": check_timeout,
    "memory": check_memory,
    "max_output": check_max_output,
    "fuel": check_fuel,
    "scratch": check_max_output,
    "max_output_files": check_max_output,
}


@dataclass(frozen=True)
class Limits:
    """What a single run may use. `None` for fuel means no instruction budget."""

    timeout: float = DEFAULT_TIMEOUT_SECONDS
    memory: int = DEFAULT_MEMORY_BYTES
    max_output: int = DEFAULT_MAX_OUTPUT_BYTES
    fuel: int | None = None
    scratch: int = DEFAULT_SCRATCH_BYTES
    max_output_files: int = DEFAULT_MAX_OUTPUT_FILES_BYTES

    def __post_init__(self) -> None:
        for name, check in _CHECKS.items():
            try:
                check(getattr(self, name))
            except UsageError as error:
                raise UsageError(f"{name.replace('_', ' ')} {error.message}") from None

    def with_timeout(self, timeout: float | None) -> "Limits":
        """These limits with a per-run wall-clock override (validated like any other)."""
        return self if timeout is None else dataclasses.replace(self, timeout=timeout)


# What one long-lived server process (`agentbox mcp`, `agentbox serve`) holds at most.
# A run the watchdog abandoned (blocked in a host call past its deadline) keeps its Store until
# its worker returns: new runs are refused while this many are held, or this much memory (the
# sum of their memory limits).
MAX_ABANDONED_RUNS = 4
MAX_ABANDONED_MEMORY_BYTES = 1024 * MIB
# Runs without a session in progress at once (sessions have their own cap, --max-sessions).
MAX_ONE_SHOT_RUNS = 8
# The largest HTTP request body and the longest MCP request line (a script travels in it).
MAX_REQUEST_BYTES = 16 * MIB
# `agentbox serve`: a connection must deliver a complete request head this soon after it opens
# (or after its previous response); at most this many connections are open at once.
HTTP_HEAD_TIMEOUT_SECONDS = 10.0
MAX_HTTP_CONNECTIONS = 128
