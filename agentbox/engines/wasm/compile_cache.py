"""The compiled guest, cached on disk so only the first run of a version pays the compile.

Layout: `<cache dir>/<key>.cwasm` plus `<key>.stamp`. The key covers everything that makes a
compiled artifact valid: wasmtime version, engine configuration, guest sha256, OS and CPU.
Files are written to a temporary name and renamed, so a reader never sees half a file and two
processes compiling at once both succeed.

The artifact is native code that wasmtime maps and runs, so it is only used when nothing but
this user could have changed it since it was written:
- the cache folder must be private (`native_folders.problem`: owner, mode, no symbolic link,
  no folder above it that others could swap); if not, the guest is compiled in memory for this
  run, with one warning line, and nothing is read from or written to that folder;
- the stamp records, at write time, the artifact's size, inode, mtime, ctime and the sha256 of
  the bytes written. A file whose status still matches (one link, same inode and times: a write,
  truncation or replacement changes the ctime, which no one can set back) is used as is, which
  costs one `lstat`; any other is hashed and used only if its bytes are the ones written, else
  compiled again. `rw` mounts of the cache are refused (`agentbox.mounts`), so no script can
  reach it.
wasmtime itself also rejects artifacts of another version or configuration.
"""

import contextlib
import json
import os
import platform
import shutil
import stat
import sys
import tempfile
import time
import zlib
from functools import cache
from pathlib import Path
from typing import BinaryIO, Protocol, TypeVar

import wasmtime
from wasmtime import Engine, Module, WasmtimeError
from wasmtime.component import Component

from agentbox import native_folders
from agentbox.engines.base import Progress
from agentbox.engines.wasm.guest_image import GuestImage


class Compilable(Protocol):
    """What the cache needs of an image: its bytes' sha256 (the default guest or the data image)."""

    @property
    def sha256(self) -> str: ...


_Compiled = TypeVar("_Compiled", Component, Module)


def cache_key(guest: Compilable, engine_description: str) -> str:
    """Readable and unique: guest, wasmtime version, engine settings, OS and CPU.

    (No hashlib here: importing it loads OpenSSL, a cost every `agentbox run` would pay.)
    """
    settings = f"{zlib.crc32(engine_description.encode()):08x}"
    return "-".join(
        [
            guest.sha256[:16],
            f"wasmtime{wasmtime_version()}",
            settings,
            sys.platform,
            platform.machine(),
        ]
    )


@cache
def wasmtime_version() -> str:
    """wasmtime-py's version, from its dist-info folder when it sits beside the package (a
    directory listing, where importlib.metadata costs ~20 ms of imports per start)."""
    package = Path(wasmtime.__file__).parent
    for info in package.parent.glob("wasmtime-*.dist-info"):
        return info.name[len("wasmtime-") : -len(".dist-info")]
    from importlib import metadata

    return metadata.version("wasmtime")


def artifact_path(guest: Compilable, engine_description: str, prefix: str = "guest") -> Path:
    """`prefix` tells the images apart in the folder: "guest" (the default one), "data"..."""
    return native_folders.cache_dir() / f"{prefix}-{cache_key(guest, engine_description)}.cwasm"


def _stamp_path(artifact: Path) -> Path:
    return artifact.with_suffix(".stamp")


def _sha256(data: bytes | Path) -> str:
    import hashlib  # only when writing or re-checking: loading OpenSSL costs every start

    if isinstance(data, bytes):
        return hashlib.sha256(data).hexdigest()
    with data.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def _status(info: os.stat_result) -> dict[str, int]:
    return {
        "size": info.st_size,
        "inode": info.st_ino,
        "mtime_ns": info.st_mtime_ns,
        "ctime_ns": info.st_ctime_ns,
    }


def _is_ours(info: os.stat_result) -> bool:
    """A regular file with one link, and (outside Windows) owned by us and private."""
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        return False
    return os.name == "nt" or (
        info.st_uid == os.geteuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )


def _verified(artifact: Path) -> bool:
    """True when the artifact holds, byte for byte, what this user's agentbox wrote."""
    try:
        stamp = json.loads(_stamp_path(artifact).read_text())
        info = os.lstat(artifact)
    except (OSError, ValueError):
        return False
    if not isinstance(stamp, dict) or not _is_ours(info) or info.st_size != stamp.get("size"):
        return False
    if _status(info) == {key: stamp.get(key) for key in _status(info)}:
        return True
    # Changed on disk since it was written (copied back, touched, rewritten): hash it.
    try:
        if _sha256(artifact) != stamp.get("sha256"):
            return False
    except OSError:
        return False
    with contextlib.suppress(OSError):  # verified; without a new stamp the next start hashes
        _write_stamp(artifact, stamp["sha256"])
    return True


def _write_atomically(path: Path, data: bytes) -> None:
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _write_stamp(artifact: Path, sha256: str) -> None:
    stamp = {**_status(os.lstat(artifact)), "sha256": sha256}
    _write_atomically(_stamp_path(artifact), json.dumps(stamp).encode())


def store(artifact: Path, serialized: bytes) -> None:
    """Write `serialized` as the artifact, then its stamp (the record `_verified` trusts)."""
    _write_atomically(artifact, serialized)
    _write_stamp(artifact, _sha256(serialized))


def _private_folder(folder: Path, progress: Progress) -> bool:
    """Create the cache folder (0700) if needed; False, after one warning, if it is not private."""
    if not os.path.lexists(folder):
        try:
            native_folders.make_private(folder)
        except OSError as error:
            progress(f"agentbox: could not cache the compiled sandbox ({error}); continuing")
            return False
    problem = native_folders.problem(folder)
    if problem is None:
        return True
    progress(
        f"agentbox: not using the cache folder {folder} for compiled code: {problem}; "
        f"compiling in memory (slow: give {native_folders.CACHE_DIR_VARIABLE} a private folder)"
    )
    return False


def load_component(
    engine: Engine, guest: GuestImage, engine_description: str, progress: Progress
) -> Component:
    """The compiled guest for `engine`: from the cache, or compiled (and cached) now."""
    artifact = artifact_path(guest, engine_description)
    return _load(engine, guest.path, artifact, progress, Component, "the sandbox")


def open_artifact(guest: Compilable, engine_description: str) -> BinaryIO | None:
    """The cached compiled file `load_component` has just loaded, opened (None if there is
    none: the guest was compiled in memory). Whether it is the very file the loaded component
    maps, its inode tells: a file replaced in between is another inode."""
    try:
        return artifact_path(guest, engine_description).open("rb")
    except OSError:
        return None


def load_module(
    engine: Engine,
    image: Compilable,
    path: Path,
    engine_description: str,
    progress: Progress,
    prefix: str = "data",
) -> Module:
    """A core-module image (the data image) for `engine`, with the same cache and checks as the
    default guest; keyed on the image's sha256 and the engine settings."""
    artifact = artifact_path(image, engine_description, prefix)
    return _load(engine, path, artifact, progress, Module, f"the {prefix} image")


def _load(
    engine: Engine,
    source: Path,
    artifact: Path,
    progress: Progress,
    compiled_kind: type[_Compiled],
    what: str,
) -> _Compiled:
    if not _private_folder(artifact.parent, progress):
        return compiled_kind.from_file(engine, str(source))
    present = os.path.lexists(artifact)
    if present and _verified(artifact):
        try:
            return compiled_kind.deserialize_file(engine, str(artifact))
        except WasmtimeError:
            pass  # foreign or damaged beyond what the stamp sees: rebuild below
    started = time.perf_counter()
    if present:
        progress(
            f"agentbox: {artifact} is not what agentbox wrote (changed or damaged); "
            f"compiling {what} again..."
        )
    else:
        progress(f"agentbox: compiling {what} for this machine (first run only)...")
    compiled = compiled_kind.from_file(engine, str(source))
    elapsed = time.perf_counter() - started
    progress(f"agentbox: {what.removeprefix('the ')} compiled in {elapsed:.1f} s")
    # Another process that compiled at the same time may have cached it first: its file is
    # kept, never replaced under the processes that have mapped it.
    if not (os.path.lexists(artifact) and _verified(artifact)):
        try:
            store(artifact, bytes(compiled.serialize()))
        except OSError as error:
            progress(f"agentbox: could not cache the compiled sandbox ({error}); continuing")
            return compiled
    # Run from the cached file, as every later process will: its memory image is then mapped
    # from the file (shared with them, and what a recycled instance restores from).
    try:
        return compiled_kind.deserialize_file(engine, str(artifact))
    except WasmtimeError:
        return compiled


def clear() -> int:
    """Delete the whole cache folder; return the number of bytes freed."""
    folder = native_folders.cache_dir()
    if not folder.exists():
        return 0
    freed = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
    shutil.rmtree(folder)
    return freed
