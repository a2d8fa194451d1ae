"""The onefile binary's payload: wasmtime's native library and the guest, unpacked once.

A PyInstaller onefile binary unpacks every collected file on every start, so the two heavy
pieces (libwasmtime ~24 MB, the guest ~35 MB) travel instead as one zlib blob inside the PYZ
(which is read in place, never unpacked) and are written once to
`<cache dir>/binary-<agentbox version>-<payload sha256>/`. That folder is created under a
temporary name and renamed into place, so a reader never sees half of it and two processes
unpacking at once both succeed.

`packaging/build_binary.py` copies this file into the frozen app as the top-level module
`_agentbox_payload`, next to two generated modules: `_agentbox_payload_index` (KEY, FILES,
EXTENSIONS, LIBRARIES) and `_agentbox_payload_blob` (BLOB, imported only to unpack). The
runtime hook `pyi_rth_agentbox.py` calls `install()` before the app's first import. Only the
standard library and platformdirs are used here: importing `agentbox` imports wasmtime, which
needs the library in place first.
"""

import base64
import importlib
import os
import shutil
import sys
import tempfile
import zlib
from collections.abc import Sequence
from functools import cache
from importlib.machinery import ModuleSpec, PathFinder
from importlib.util import spec_from_file_location
from pathlib import Path
from types import ModuleType

import platformdirs

CACHE_DIR_VARIABLE = (
    "AGENTBOX_CACHE_DIR"  # the same variable as agentbox.engines.wasm.compile_cache
)


def _cache_dir() -> Path:
    override = os.environ.get(CACHE_DIR_VARIABLE)
    return Path(override) if override else Path(platformdirs.user_cache_dir("agentbox"))


def _is_complete(folder: Path, files: dict[str, int]) -> bool:
    try:
        return all((folder / name).stat().st_size == size for name, size in files.items())
    except OSError:
        return False


def _unpack_into(parent: Path, target: Path, files: dict[str, int]) -> None:
    blob: str = importlib.import_module("_agentbox_payload_blob").BLOB
    data = memoryview(zlib.decompress(base64.b64decode(blob)))
    parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(dir=parent, prefix=f".{target.name}-"))
    try:
        offset = 0
        for name, size in files.items():
            path = temporary / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data[offset : offset + size])
            offset += size
        try:
            os.rename(temporary, target)
        except OSError:
            if _is_complete(target, files):
                return  # another process unpacked the same payload first
            # A damaged copy is in the way: move it aside, then put ours in place.
            aside = Path(tempfile.mkdtemp(dir=parent, prefix=f".{target.name}-stale-"))
            os.rename(target, aside / "old")
            os.rename(temporary, target)
            shutil.rmtree(aside, ignore_errors=True)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


@cache
def folder() -> Path:
    """The unpacked payload (`wasmtime/<os>-<arch>/<library>`, `guest/`), unpacked if needed."""
    index = importlib.import_module("_agentbox_payload_index")
    files: dict[str, int] = index.FILES
    parent = _cache_dir()
    target = parent / f"binary-{index.KEY}"
    if _is_complete(target, files):
        return target
    try:
        _unpack_into(parent, target, files)
    except OSError as error:
        # No writable cache: unpack into this run's own folder, which the bootloader deletes.
        print(
            f"agentbox: cannot unpack into {parent} ({error}); using a temporary copy",
            file=sys.stderr,
        )
        parent = Path(tempfile.mkdtemp(dir=getattr(sys, "_MEIPASS", None)))
        target = parent / target.name
        _unpack_into(parent, target, files)
    return target


class PayloadFinder:
    """Serves what the payload holds in place of files the bootloader would unpack each start.

    - `wasmtime._ffi` gets a `__file__` inside the unpacked payload: wasmtime-py loads its
      library from `Path(__file__).parent / "<os>-<arch>" / <library>` (its only use of
      `__file__`); the module's code still comes from the PYZ.
    - the extension modules listed in the index's EXTENSIONS (needed by rarely used commands,
      such as `agentbox mcp`) are loaded from the unpacked payload.
    - before `_ssl` or `_hashlib` (Linux), the OpenSSL libraries listed for it in LIBRARIES are
      loaded from the payload, libcrypto first: the dynamic linker then resolves the extension's
      `libssl.so.3`/`libcrypto.so.3` to these loaded copies, not to the system's.
    """

    extensions: dict[str, str] = {}
    libraries: dict[str, list[str]] = {}

    @classmethod
    def find_spec(
        cls, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname == "wasmtime._ffi":
            spec = PathFinder.find_spec(fullname, path, target)
            if spec is not None:
                spec.origin = str(folder() / "wasmtime" / "_ffi.py")
            return spec
        relative = cls.extensions.get(fullname)
        if relative is None:
            return None
        if cls.libraries.get(fullname):
            import ctypes  # only here: ctypes is not needed before

            for library in cls.libraries[fullname]:
                ctypes.CDLL(str(folder() / library), mode=ctypes.RTLD_GLOBAL)
        return spec_from_file_location(fullname, folder() / relative)


def install() -> None:
    index = importlib.import_module("_agentbox_payload_index")
    PayloadFinder.extensions, PayloadFinder.libraries = index.EXTENSIONS, index.LIBRARIES
    if PayloadFinder not in sys.meta_path:
        sys.meta_path.insert(0, PayloadFinder)
