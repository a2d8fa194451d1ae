"""`agentbox info`: versions of every part, the guest's identity and the cache state."""

import json
import platform
import sys
from typing import Any

import click


def collect() -> dict[str, Any]:
    from agentbox import __version__
    from agentbox.engines.wasm import compile_cache
    from agentbox.engines.wasm.guest_image import guest_image
    from agentbox.engines.wasm.runtime import engine_description
    from agentbox.sandbox import Sandbox

    guest = guest_image()
    artifact = compile_cache.artifact_path(guest, engine_description(False))
    cached = artifact.exists()
    guest_python = Sandbox().run("import sys; print(sys.version.split()[0])").stdout.strip()
    return {
        "agentbox": __version__,
        "wasmtime": compile_cache.wasmtime_version(),
        "host_python": platform.python_version(),
        "guest_python": guest_python,
        "guest_sha256": guest.sha256,
        "guest_size": guest.size,
        "componentize_py": guest.componentize_py,
        "platform": f"{sys.platform}-{platform.machine()}",
        "cache_dir": str(compile_cache.cache_dir()),
        "cache_state": "compiled" if cached else "empty (compiled on first run)",
    }


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
