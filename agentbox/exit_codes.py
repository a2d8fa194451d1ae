"""Exit codes of `agentbox run`: the one table the CLI, the docs and the tests use.

A script's own `sys.exit(n)` is passed through unchanged, so these codes can also come from a
script; `--json` says which limit (if any) ended the run, which removes the ambiguity.
"""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    SCRIPT_ERROR = 1
    USAGE = 2
    IMAGE = 69
    INTERNAL = 70
    TIMEOUT = 124
    INTERRUPTED = 130
    CRASH = 134
    MEMORY = 137
    TERMINATED = 143
    FUEL = 152


DESCRIPTIONS: dict[ExitCode, str] = {
    ExitCode.OK: "the script finished (or called `sys.exit(0)`)",
    ExitCode.SCRIPT_ERROR: "the script raised an uncaught exception (traceback on stderr), "
    "including SyntaxError",
    ExitCode.USAGE: "bad command line or unreadable input (missing file, directory, bad option); "
    "with `--json`, said in a JSON object on stdout",
    ExitCode.IMAGE: "a guest image is not installed or cannot be installed (`agentbox image "
    "install data`: no network, a wrong sha256, a changed installed file)",
    ExitCode.INTERNAL: "agentbox itself failed (a bug: please report it)",
    ExitCode.TIMEOUT: "the wall-clock limit (`--timeout`) ended the run",
    ExitCode.INTERRUPTED: "interrupted by Ctrl-C (SIGINT), after writing what the script had "
    "printed (128 + 2, as for `python`); `agentbox mcp` and `agentbox serve` stop cleanly with it",
    ExitCode.CRASH: "the sandbox trapped (e.g. C-level stack exhaustion); the host is unaffected",
    ExitCode.MEMORY: "the memory limit (`--memory`) ended the run (uncaught MemoryError or trap)",
    ExitCode.TERMINATED: "ended by SIGTERM, after writing what the script had printed (128 + 15); "
    "`agentbox mcp` and `agentbox serve` stop cleanly with it",
    ExitCode.FUEL: "the instruction budget (`--fuel`) ran out",
}


def markdown_table() -> str:
    """The table as README.md shows it (a test keeps the README in sync)."""
    rows = ["| code | meaning |", "| --- | --- |"]
    rows += [f"| {int(code)} | {DESCRIPTIONS[code]} |" for code in ExitCode]
    return "\n".join(rows)


def for_stop_signal(number: int | None) -> ExitCode:
    """A long-lived server's exit code: OK when its input ended, else the signal's (the shell
    convention, 128 + the signal number)."""
    import signal

    if number is None:
        return ExitCode.OK
    return ExitCode.INTERRUPTED if number == signal.SIGINT else ExitCode.TERMINATED
