"""`agentbox warmup`: compile and cache the sandbox now, so the first real run is fast."""

import time

import click


@click.command()
@click.option("--fuel", is_flag=True, help="Also prepare the fuel-metered variant (for --fuel).")
def warmup(fuel: bool) -> None:
    """Compile the sandbox for this machine and cache it (done on first run otherwise)."""
    from agentbox.engines.wasm.runtime import get_runtime

    started = time.perf_counter()
    for metered in (False, True) if fuel else (False,):
        get_runtime(metered, progress=lambda message: click.echo(message, err=True))
    click.echo(f"agentbox: sandbox ready ({time.perf_counter() - started:.2f} s)", err=True)
