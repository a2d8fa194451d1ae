"""`agentbox licenses`: the licenses of the third-party software agentbox ships."""

import click


@click.command()
def licenses() -> None:
    """Print the licenses of the third-party software agentbox carries: in the binary, of
    everything its build collected; in the Python package, of the guest's runtime and CPython."""
    from importlib import resources

    resource = resources.files("agentbox") / "THIRD_PARTY_LICENSES"
    try:
        text = resource.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise click.ClickException(
            "THIRD_PARTY_LICENSES is not packaged: run `python packaging/licenses.py`"
        ) from None
    click.echo(text, nl=False)
