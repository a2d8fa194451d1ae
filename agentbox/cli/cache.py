"""`agentbox cache`: where the compiled sandbox lives, and how to remove it."""

import click


@click.group()
def cache() -> None:
    """Manage the compiled-sandbox cache (AGENTBOX_CACHE_DIR overrides its location; it must
    be private to you, or compiled code is not kept there)."""


@cache.command("dir")
def cache_dir() -> None:
    """Print the cache folder."""
    from agentbox.native_folders import cache_dir as folder

    click.echo(str(folder()))


@cache.command("clear")
def clear() -> None:
    """Delete every cached artifact; the next run compiles again."""
    from agentbox.engines.wasm.compile_cache import clear
    from agentbox.native_folders import cache_dir

    freed = clear()
    click.echo(f"removed {freed / 2**20:.1f} MiB from {cache_dir()}")
