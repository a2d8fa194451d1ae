"""`agentbox warmup`: compile and cache the sandbox now, so the first real run is fast."""

import time

import click

from agentbox.cli.options import image_option


@click.command()
@click.option("--fuel", is_flag=True, help="Also prepare the fuel-metered variant (for --fuel).")
@image_option
def warmup(fuel: bool, image: str) -> None:
    """Compile the sandbox for this machine and cache it (done on first run otherwise)."""
    from agentbox.engines.wasm.engine import WasmEngine
    from agentbox.engines.wasm.images import DEFAULT_IMAGE

    def progress(message: str) -> None:
        click.echo(message, err=True)

    engine = WasmEngine(progress, image)
    started = time.perf_counter()
    for metered in (False, True) if fuel else (False,):
        if image != DEFAULT_IMAGE and not engine.runtime_ready(metered):
            progress(
                f"agentbox: loading the {image} image; compiling it for this machine, if not "
                "cached yet, takes minutes (once per machine and agentbox version)"
            )
        engine.runtime(metered)
    click.echo(f"agentbox: sandbox ready ({time.perf_counter() - started:.2f} s)", err=True)
