"""The compiled guest, cached on disk so only the first run of a version pays the compile.

Layout: `<cache dir>/<key>.cwasm` plus `<key>.stamp` (JSON: size, mtime, crc32). The key
covers everything that makes a compiled artifact valid: wasmtime version, engine configuration,
guest sha256, OS and CPU. Files are written to a temporary name and renamed, so a reader never
sees half a file and two processes compiling at once both succeed. wasmtime itself rejects
artifacts of another version or configuration; the stamp catches truncation and corruption
(a changed file is re-checksummed before use, and rebuilt if it does not match).
"""

import json
import os
import platform
import shutil
import sys
import tempfile
import time
import zlib
from functools import cache
from pathlib import Path

import platformdirs
import wasmtime
from wasmtime import Engine, WasmtimeError
from wasmtime.component import Component

from agentbox.engines.base import Progress
from agentbox.engines.wasm.guest_image import GuestImage

CACHE_DIR_VARIABLE = "AGENTBOX_CACHE_DIR"


def cache_dir() -> Path:
    override = os.environ.get(CACHE_DIR_VARIABLE)
    return Path(override) if override else Path(platformdirs.user_cache_dir("agentbox"))


def cache_key(guest: GuestImage, engine_description: str) -> str:
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


def artifact_path(guest: GuestImage, engine_description: str) -> Path:
    return cache_dir() / f"guest-{cache_key(guest, engine_description)}.cwasm"


def _stamp_path(artifact: Path) -> Path:
    return artifact.with_suffix(".stamp")


def _crc32(path: Path) -> int:
    crc = 0
    with path.open("rb") as file:
        while chunk := file.read(1 << 22):
            crc = zlib.crc32(chunk, crc)
    return crc


def _stamp_matches(artifact: Path) -> bool:
    """True when the artifact is, byte for byte, the one that was written."""
    try:
        stamp = json.loads(_stamp_path(artifact).read_text())
        info = artifact.stat()
    except (OSError, ValueError):
        return False
    if not isinstance(stamp, dict) or info.st_size != stamp.get("size"):
        return False
    if info.st_mtime_ns == stamp.get("mtime_ns"):
        return True
    return _crc32(artifact) == stamp.get("crc32")


def _write_atomically(path: Path, data: bytes) -> None:
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _store(artifact: Path, serialized: bytes) -> None:
    artifact.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(artifact, serialized)
    info = artifact.stat()
    stamp = {"size": info.st_size, "mtime_ns": info.st_mtime_ns, "crc32": zlib.crc32(serialized)}
    _write_atomically(_stamp_path(artifact), json.dumps(stamp).encode())


def load_component(
    engine: Engine, guest: GuestImage, engine_description: str, progress: Progress
) -> Component:
    """The compiled guest for `engine`: from the cache, or compiled (and cached) now."""
    artifact = artifact_path(guest, engine_description)
    if _stamp_matches(artifact):
        try:
            return Component.deserialize_file(engine, str(artifact))
        except WasmtimeError:
            pass  # foreign or damaged beyond what the stamp sees: rebuild below
    started = time.perf_counter()
    progress("agentbox: compiling the sandbox for this machine (first run only)...")
    component = Component.from_file(engine, str(guest.path))
    serialized = bytes(component.serialize())
    try:
        _store(artifact, serialized)
    except OSError as error:
        progress(f"agentbox: could not cache the compiled sandbox ({error}); continuing")
    progress(f"agentbox: sandbox compiled in {time.perf_counter() - started:.1f} s")
    return component


def clear() -> int:
    """Delete the whole cache folder; return the number of bytes freed."""
    folder = cache_dir()
    if not folder.exists():
        return 0
    freed = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
    shutil.rmtree(folder)
    return freed
