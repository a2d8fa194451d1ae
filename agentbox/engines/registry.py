"""Engine names, how to get one, and what each guarantees (the table docs/engines.md shows).

Engines are imported lazily: `restricted` and `asteval` need the `fallback` extra, and `wasm`
needs wasmtime, which is exactly what `auto` probes.
"""

import warnings

from agentbox._version import DISTRIBUTION
from agentbox.engines.base import Engine, Progress
from agentbox.errors import UsageError

ENGINES = ("wasm", "restricted", "asteval", "auto")

FALLBACK_WARNING = (
    "warning: wasmtime is not available; running with the weaker `restricted` engine "
    "(Python-level restrictions, see docs/engines.md)"
)


class FallbackWarning(UserWarning):
    """`auto` fell back from the wasm engine to the `restricted` one."""


# (guarantee, wasm, restricted, asteval): what holds and by which mechanism.
GUARANTEES: list[tuple[str, str, str, str]] = [
    (
        "network",
        "none: the guest has no socket imports (WebAssembly boundary)",
        "no socket module importable; Linux: seccomp refuses `socket` (macOS/Windows: policy only)",
        "no imports at all; Linux: seccomp refuses `socket` (macOS/Windows: policy only)",
    ),
    (
        "files",
        "only `--mount` directories, via WASI preopens",
        "no `open`, mounts refused; Linux: seccomp refuses every open and file-system change",
        "`open` removed, mounts refused; Linux: seccomp refuses every open and file-system change",
    ),
    (
        "env",
        "only the variables given to the Sandbox",
        "none: no `os`; empty environment in the child; Linux: /proc/<parent> unreadable",
        "none: no `os`; empty environment in the child; Linux: /proc/<parent> unreadable",
    ),
    (
        "processes",
        "none: WASI has no process spawning",
        "no `os`/`subprocess`; Linux: seccomp refuses fork/exec; process group killed at the end",
        "no imports; Linux: seccomp refuses fork/exec; process group killed at the end",
    ),
    (
        "timeout",
        "epoch deadline traps the guest",
        "child process killed at the deadline",
        "child process killed at the deadline",
    ),
    (
        "memory",
        "Store memory limit on the linear memory",
        "RLIMIT_AS on the child (Linux only)",
        "RLIMIT_AS on the child (Linux only); asteval caps string and power sizes",
    ),
    (
        "fuel",
        "wasmtime fuel (`--fuel`)",
        "not supported: a fuel limit is refused (UsageError)",
        "not supported: a fuel limit is refused (UsageError)",
    ),
    (
        "output cap",
        "host-side cap on stdout/stderr",
        "capped in the child and again in the host",
        "capped in the child and again in the host",
    ),
    (
        "skills",
        "host bridge: limits, approval, call log",
        "same bridge, proxied from the child over a pipe (JSON only)",
        "same bridge, proxied from the child over a pipe (JSON only)",
    ),
    (
        "isolation boundary",
        "WebAssembly: the script's CPython is compiled to wasm",
        "RestrictedPython guards and curated module views in the script's own interpreter",
        "asteval's AST walker in the script's own interpreter",
    ),
]


def markdown_table() -> str:
    """The guarantees as a Markdown table (a test keeps docs/engines.md in sync)."""
    rows = ["| guarantee | wasm | restricted | asteval |", "| --- | --- | --- | --- |"]
    rows += [f"| {' | '.join(row)} |" for row in GUARANTEES]
    return "\n".join(rows)


def _wasm_engine(progress: Progress | None) -> Engine:
    from agentbox.engines.wasm.engine import WasmEngine

    return WasmEngine(progress)


def _fallback_engine(name: str) -> Engine:
    try:
        if name == "restricted":
            from agentbox.engines.restricted import RestrictedEngine

            return RestrictedEngine()
        from agentbox.engines.asteval_engine import AstevalEngine

        return AstevalEngine()
    except ImportError as error:
        raise UsageError(
            f"the {name!r} engine needs the fallback extra: pip install '{DISTRIBUTION}[fallback]' "
            f"({error})"
        ) from None


def resolve_engine(name: str, progress: Progress | None = None) -> tuple[Engine, str | None]:
    """The engine for `name`, and the one warning line to show when `auto` fell back."""
    if name not in ENGINES:
        raise UsageError(f"unknown engine {name!r}: choose one of {', '.join(ENGINES)}")
    if name == "wasm":
        return _wasm_engine(progress), None
    if name != "auto":
        return _fallback_engine(name), None
    try:
        return _wasm_engine(progress), None
    except (ImportError, OSError, RuntimeError):
        # wasmtime is missing or its native library cannot load on this platform.
        return _fallback_engine("restricted"), FALLBACK_WARNING


def get_engine(name: str, progress: Progress | None = None) -> Engine:
    """`resolve_engine`, emitting the fallback line as a `FallbackWarning` (shown once)."""
    engine, warning = resolve_engine(name, progress)
    if warning is not None:
        warnings.warn(warning, FallbackWarning, stacklevel=2)
    return engine
