"""`agentbox licenses`: the licenses of the third-party software agentbox ships."""

import click


@click.command()
def licenses() -> None:
    """Print the licenses of the third-party software agentbox carries: in the binary, of
    everything its build collected; in the Python package, of the guest's runtime and CPython;
    and, when the data image is installed, the licenses it bundles."""
    from importlib import resources

    package = resources.files("agentbox")
    # A binary built by packaging/build_binary.py carries its own list, gzipped (a onefile
    # binary unpacks its data files on every start); the Python package carries the guest's.
    compressed = package / "THIRD_PARTY_LICENSES.gz"
    if compressed.is_file():
        import gzip

        click.echo(gzip.decompress(compressed.read_bytes()).decode("utf-8"), nl=False)
        _data_image_licenses()
        return
    try:
        text = (package / "THIRD_PARTY_LICENSES").read_text(encoding="utf-8")
    except FileNotFoundError:
        raise click.ClickException(
            "THIRD_PARTY_LICENSES is not packaged: run `python packaging/licenses.py`"
        ) from None
    click.echo(text, nl=False)
    _data_image_licenses()


def _data_image_licenses() -> None:
    """The licenses the data image bundles, when it is installed (`agentbox image install
    data`): each text file in full; other files (tqdm's MPL-2.0 source) by path."""
    from agentbox.engines.wasm.data_image import store

    for listed in store.list_images():
        if listed.installed is None:
            continue
        folder = listed.installed.licenses
        click.echo(f"\n{'=' * 78}\nThe {listed.name} image (installed in {folder.parent}):")
        for path in sorted(folder.iterdir()):
            if path.suffix == ".txt" or path.name.endswith("LICENSE"):
                click.echo(f"\n{'-' * 78}\n{path.stem}\n{'-' * 78}")
                click.echo(path.read_text(encoding="utf-8", errors="replace"), nl=False)
            else:
                click.echo(f"\n{'-' * 78}\n{path.name}: the source, as its license asks: {path}")
