"""`agentbox licenses`: the licenses of the third-party software agentbox ships."""

import click


@click.command()
def licenses() -> None:
    """Print the licenses of the third-party software agentbox carries: in the binary, of
    everything its build collected; in the Python package, of the guest's runtime and CPython."""
    from importlib import resources

    package = resources.files("agentbox")
    # A binary built by packaging/build_binary.py carries its own list, gzipped (a onefile
    # binary unpacks its data files on every start); the Python package carries the guest's.
    compressed = package / "THIRD_PARTY_LICENSES.gz"
    if compressed.is_file():
        import gzip

        click.echo(gzip.decompress(compressed.read_bytes()).decode("utf-8"), nl=False)
        return
    try:
        text = (package / "THIRD_PARTY_LICENSES").read_text(encoding="utf-8")
    except FileNotFoundError:
        raise click.ClickException(
            "THIRD_PARTY_LICENSES is not packaged: run `python packaging/licenses.py`"
        ) from None
    click.echo(text, nl=False)
