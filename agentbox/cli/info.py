"""`agentbox info`: versions of every part, the guest's identity, the cache and the config."""

import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

import click


def collect() -> dict[str, Any]:
    from agentbox import __version__
    from agentbox.config import user_config_file
    from agentbox.engines.wasm import compile_cache
    from agentbox.engines.wasm.guest_image import guest_image
    from agentbox.engines.wasm.runtime import engine_description
    from agentbox.sandbox import Sandbox

    guest = guest_image()
    artifact = compile_cache.artifact_path(guest, engine_description(False))
    cache_state = _cache_state(artifact)
    if cache_state == COMPILED:  # asking the guest costs a few milliseconds
        guest_python = (
            Sandbox(progress=_echo_progress)
            .run("import sys; print(sys.version.split()[0])")
            .stdout.strip()
        )
    else:  # asking it would first compile it for tens of seconds: `info` never does
        guest_python = "unknown until the sandbox is compiled (agentbox warmup)"
    return {
        "agentbox": __version__,
        "wasmtime": compile_cache.wasmtime_version(),
        "host_python": platform.python_version(),
        "guest_python": guest_python,
        "guest_sha256": guest.sha256,
        "guest_size": guest.size,
        "componentize_py": guest.componentize_py,
        "platform": f"{sys.platform}-{platform.machine()}",
        "cache_dir": str(artifact.parent),
        "cache_state": cache_state,
        "config_file": _config_file(user_config_file()),
    }


COMPILED = "compiled"
NOT_COMPILED = "empty (compiled on first run, or now by `agentbox warmup`)"


def _echo_progress(message: str) -> None:
    click.echo(message, err=True)


def _cache_state(artifact: Path) -> str:
    from agentbox import native_folders

    if not artifact.parent.exists():
        return NOT_COMPILED
    problem = native_folders.problem(artifact.parent)
    if problem is not None:
        return f"not used for compiled code: {problem}"
    return COMPILED if artifact.exists() else NOT_COMPILED


def _config_file(user_file: Path) -> str:
    """Which config `run`, `mcp` and `serve` apply when no `--config` is given."""
    named = os.environ.get("AGENTBOX_CONFIG")
    if named:
        return f"{named} (from AGENTBOX_CONFIG)"
    if user_file.is_file():
        return str(user_file)
    return f"none (create {user_file} or pass --config FILE; ./agentbox.toml is never implicit)"


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def info(as_json: bool) -> None:
    """Show agentbox, wasmtime and guest Python versions, the guest sha256 and the cache."""
    details = collect()
    if as_json:
        click.echo(json.dumps(details))
        return
    width = max(len(key) for key in details)
    for key, value in details.items():
        click.echo(f"{key.replace('_', ' '):<{width}}  {value}")
