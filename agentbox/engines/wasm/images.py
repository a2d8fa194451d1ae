"""Which guest image a sandbox runs: "default" (the component, built in) or "data" (numpy,
pandas, matplotlib...: a core module installed with `agentbox image install data`).

The data image is loaded from the installed store (`data_image.store.installed_image`).
"""

from typing import TYPE_CHECKING

from agentbox.errors import UsageError
from agentbox.limits import MIB

if TYPE_CHECKING:
    from agentbox.engines.wasm.data_image.store import DataImage

DEFAULT_IMAGE = "default"
DATA_IMAGE = "data"
IMAGES = (DEFAULT_IMAGE, DATA_IMAGE)
IMAGE_VARIABLE = "AGENTBOX_IMAGE"
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


def load_data_image() -> "DataImage":
    """The installed data image; `ImageNotInstalledError` (naming `agentbox image install data`)
    when it is not installed."""
    from agentbox.engines.wasm.data_image.store import installed_image

    return installed_image(DATA_IMAGE)
