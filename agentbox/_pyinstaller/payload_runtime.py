"""The onefile binary's payload: wasmtime's native library and the guest, unpacked once.

A PyInstaller onefile binary unpacks every collected file on every start, so the two heavy
pieces (libwasmtime ~24 MB, the guest ~35 MB) travel instead as one zlib blob inside the PYZ
(which is read in place, never unpacked) and are written once to
`<cache dir>/binary-<agentbox version>-<payload sha256>/`. That folder is created under a
temporary name and renamed into place, so a reader never sees half of it and two processes
unpacking at once both succeed.

What is unpacked is native code, so it is loaded only when nothing but this user could have
changed it: the cache folder, the payload folder and its subfolders must be private
(`agentbox.native_folders.problem`), and each file must still have the status recorded in
`.stamp.json` when it was unpacked (size, inode, mtime, ctime, one link). A file whose status
changed is hashed and compared with the sha256 the binary carries (computed at build time); if
any differs, the payload is unpacked again, with one line on stderr. When the cache folder is
not private, the payload goes to a private temporary folder for this run (one warning line).

`packaging/build_binary.py` copies this file into the frozen app as the top-level module
`_agentbox_payload`, next to two generated modules: `_agentbox_payload_index` (KEY, FILES,
SHA256, EXTENSIONS, LIBRARIES) and `_agentbox_payload_blob` (BLOB, imported only to unpack).
The runtime hook `pyi_rth_agentbox.py` calls `install()` before the app's first import. Only
the standard library, platformdirs and `agentbox.native_folders` (which imports nothing more)
are used here: the rest of agentbox imports wasmtime, which needs the library in place first.
"""

import base64
import importlib
import json
import os
import shutil
import stat
import sys
import tempfile
import zlib
from collections.abc import Sequence
from functools import cache
from importlib.machinery import ModuleSpec, PathFinder
from importlib.util import spec_from_file_location
from pathlib import Path
from types import ModuleType

from agentbox import native_folders

STAMP_NAME = ".stamp.json"


def _status(path: Path) -> list[int] | None:
    """What a private, unchanged unpacked file still shows; None if it is not one of ours."""
    info = os.lstat(path)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        return None
    if os.name != "nt" and (info.st_uid != os.geteuid() or info.st_mode & 0o022):
        return None
    return [info.st_size, info.st_ino, info.st_mtime_ns, info.st_ctime_ns]


def _sha256(path: Path) -> str:
    import hashlib  # only when a file changed: loading OpenSSL costs every start

    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def _write_stamp(folder: Path, files: dict[str, int]) -> None:
    stamp = {name: _status(folder / name) for name in files}
    descriptor = os.open(folder / f"{STAMP_NAME}.tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(stamp, file)
    os.replace(folder / f"{STAMP_NAME}.tmp", folder / STAMP_NAME)


def _folders(target: Path, files: dict[str, int]) -> list[Path]:
    return sorted({target, *((target / name).parent for name in files)})


def _verified(target: Path, files: dict[str, int], hashes: dict[str, str]) -> bool:
    """True when every file in `target` is, byte for byte, what this binary carries."""
    if any(native_folders.problem(folder) for folder in _folders(target, files)):
        return False
    try:
        stamp = json.loads((target / STAMP_NAME).read_text())
        changed = [name for name in files if _status(target / name) != stamp.get(name)]
        if not changed:
            return True
        if any(_status(target / name) is None for name in changed):
            return False
        if any(_sha256(target / name) != hashes[name] for name in changed):
            return False
        _write_stamp(target, files)
    except (OSError, ValueError, AttributeError):
        return False
    return True


def _unpack_into(parent: Path, target: Path, files: dict[str, int], hashes: dict[str, str]) -> None:
    blob: str = importlib.import_module("_agentbox_payload_blob").BLOB
    data = memoryview(zlib.decompress(base64.b64decode(blob)))
    temporary = Path(tempfile.mkdtemp(dir=parent, prefix=f".{target.name}-"))  # 0700
    try:
        offset = 0
        for name, size in files.items():
            path = temporary / name
            for folder in reversed(path.relative_to(temporary).parents[:-1]):
                (temporary / folder).mkdir(mode=0o700, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o700)
            with os.fdopen(descriptor, "wb") as file:
                file.write(data[offset : offset + size])
            offset += size
        _write_stamp(temporary, files)
        try:
            os.rename(temporary, target)
        except OSError:
            if _verified(target, files, hashes):
                return  # another process unpacked the same payload first
            # A changed or damaged copy is in the way: move it aside, then put ours in place.
            aside = Path(tempfile.mkdtemp(dir=parent, prefix=f".{target.name}-stale-"))
            os.rename(target, aside / "old")
            os.rename(temporary, target)
            shutil.rmtree(aside, ignore_errors=True)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def _private_cache(parent: Path) -> str | None:
    """Create the cache folder (0700) if needed; why it cannot hold the payload, if it cannot."""
    if not os.path.lexists(parent):
        try:
            native_folders.make_private(parent)
        except OSError as error:
            return f"cannot create it ({error.strerror})"
    return native_folders.problem(parent)


@cache
def folder() -> Path:
    """The unpacked payload (`wasmtime/<os>-<arch>/<library>`, `guest/`), unpacked if needed."""
    index = importlib.import_module("_agentbox_payload_index")
    files: dict[str, int] = index.FILES
    hashes: dict[str, str] = index.SHA256
    parent = native_folders.cache_dir()
    target = parent / f"binary-{index.KEY}"
    problem = _private_cache(parent)
    if problem is None:
        if _verified(target, files, hashes):
            return target
        if os.path.lexists(target):
            print(
                f"agentbox: {target} is not what this binary unpacked (changed or damaged); "
                "unpacking it again",
                file=sys.stderr,
            )
        try:
            _unpack_into(parent, target, files, hashes)
            return target
        except OSError as error:
            problem = str(error)
    # Not private, or not writable: unpack into this run's own folder (0700, deleted at exit).
    print(
        f"agentbox: not using {parent} for native code ({problem}); using a private temporary copy",
        file=sys.stderr,
    )
    parent = Path(tempfile.mkdtemp(dir=getattr(sys, "_MEIPASS", None)))
    target = parent / target.name
    _unpack_into(parent, target, files, hashes)
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
