"""The onefile binary's payload (wasmtime's library, the guest, extension modules), unpacked
into the cache, is loaded only as the binary carries it: a swapped or changed file is replaced
before use, and a cache folder others could write is not used.

These run the real payload runtime and the real payload writer of packaging/build_binary.py
(PyInstaller is not run: the binary itself is checked by tests/binary and packaging/smoke.py),
with small files standing in for the libraries.
"""

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from agentbox import native_folders
from tests.helpers import HANG_GUARD_SECONDS

ROOT = Path(__file__).resolve().parent.parent.parent
LIBRARY = "wasmtime/linux-x86_64/_libwasmtime.so"
CONTENTS = {
    LIBRARY: b"\x7fELF real wasmtime library " * 4000,
    "guest/sandbox.wasm": b"\0asm real guest " * 3000,
    "extensions/_ssl.so": b"\x7fELF real extension " * 2000,
}
EVIL = b"\x7fELF a same-size library of the attacker's ".ljust(len(CONTENTS[LIBRARY]), b"!")


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def payload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated payload modules (index, blob, runtime), as a binary would carry them."""
    folder = tmp_path_factory.mktemp("payload")
    build_binary = _load("build_binary", ROOT / "packaging" / "build_binary.py")
    build_binary.write_payload_modules(folder, CONTENTS, {}, {})
    return folder


def start(payload: Path, cache: Path, umask: int = 0o022) -> subprocess.CompletedProcess[str]:
    """What a start of the binary does before loading wasmtime: find (or unpack) the payload."""
    code = f"import sys; sys.path.insert(0, {str(payload)!r}); import _agentbox_payload as p; print(p.folder())"
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_SECONDS,
        umask=umask,
        env={**os.environ, native_folders.CACHE_DIR_VARIABLE: str(cache)},
    )


def unpacked(payload: Path, cache: Path) -> Path:
    result = start(payload, cache)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    return Path(result.stdout.strip())


def restamp(payload: Path, target: Path) -> None:
    """Record the folder's current state as the binary does after unpacking (what an attacker
    who could write the folder would also do)."""
    runtime = _load("_agentbox_payload_under_test", payload / "_agentbox_payload.py")
    runtime._write_stamp(target, CONTENTS)


def test_first_start_unpacks_private_files_whatever_the_umask(
    payload: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "a" / "cache"
    result = start(payload, cache, umask=0)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    target = Path(result.stdout.strip())
    assert target.parent == cache
    for folder in (
        tmp_path / "a",
        cache,
        target,
        *(target / name for name in ("wasmtime", "guest")),
    ):
        assert folder.stat().st_mode & 0o777 == 0o700, folder
    for name, data in CONTENTS.items():
        assert (target / name).read_bytes() == data
        assert (target / name).stat().st_mode & 0o077 == 0, name
    assert unpacked(payload, cache) == target  # the next start finds it, silently


@pytest.mark.parametrize("how", ["replaced", "written in place, mtime restored"])
def test_a_same_size_library_swapped_in_is_replaced_before_use(
    payload: Path, tmp_path: Path, how: str
) -> None:
    target = unpacked(payload, tmp_path / "cache")
    library = target / LIBRARY
    info = library.stat()
    if how == "replaced":
        (target / "evil").write_bytes(EVIL)
        os.replace(target / "evil", library)
    else:
        with library.open("r+b") as file:
            file.write(EVIL)
        os.utime(library, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert library.read_bytes() == EVIL and library.stat().st_size == info.st_size  # it ran
    result = start(payload, tmp_path / "cache")
    assert (result.returncode, result.stdout.strip()) == (0, str(target))
    assert result.stderr.splitlines() == [
        f"agentbox: {target} is not what this binary unpacked (changed or damaged); "
        "unpacking it again"
    ]
    assert library.read_bytes() == CONTENTS[LIBRARY]


def test_an_unchanged_payload_is_not_unpacked_again(payload: Path, tmp_path: Path) -> None:
    target = unpacked(payload, tmp_path / "cache")
    inode = (target / LIBRARY).stat().st_ino
    os.utime(target / LIBRARY, ns=(1, 1))  # a status change alone costs a hash, not an unpack
    assert unpacked(payload, tmp_path / "cache") == target
    assert unpacked(payload, tmp_path / "cache") == target
    assert (target / LIBRARY).stat().st_ino == inode


def test_positive_control_a_restamped_payload_in_a_private_folder_is_used(
    payload: Path, tmp_path: Path
) -> None:
    """Why the folder checks matter: whoever can write the folder can restamp it."""
    target = unpacked(payload, tmp_path / "cache")
    (target / LIBRARY).write_bytes(EVIL)
    restamp(payload, target)
    assert unpacked(payload, tmp_path / "cache") == target
    assert (target / LIBRARY).read_bytes() == EVIL


@pytest.mark.parametrize("how", ["mode 0777", "owned by nobody", "a symbolic link"])
def test_a_cache_folder_others_could_write_is_not_used(
    payload: Path, tmp_path: Path, how: str
) -> None:
    if how == "owned by nobody" and os.geteuid() != 0:
        pytest.skip("giving a folder to another user needs root (the suite runs as root in CI)")
    real = tmp_path / "cache"
    target = unpacked(payload, real)
    (target / LIBRARY).write_bytes(EVIL)
    restamp(payload, target)
    cache = real
    if how == "mode 0777":
        real.chmod(0o777)
    elif how == "owned by nobody":
        os.chown(real, 65534, 65534)
    else:
        cache = tmp_path / "link"
        cache.symlink_to(real)
    result = start(payload, cache)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"agentbox: not using {cache} for native code")
    used = Path(result.stdout.strip())
    try:
        assert real not in used.resolve().parents
        assert (used / LIBRARY).read_bytes() == CONTENTS[LIBRARY]
        assert used.parent.stat().st_mode & 0o777 == 0o700
    finally:
        shutil.rmtree(used.parent)  # the binary's own folder deletes it; this process is not one
    assert (target / LIBRARY).read_bytes() == EVIL  # still there, never used
