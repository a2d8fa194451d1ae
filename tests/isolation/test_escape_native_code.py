"""What agentbox loads natively (the compiled guest, mapped and run by wasmtime) cannot be
changed by a script, nor taken from a folder others can write, and a changed one never runs.

The poisoned artifact used here is a real compiled guest whose machine code (.text) is filled
with `int3`: a process that runs it dies with SIGTRAP. Its stamp is written to match, so the
positive control shows that agentbox would run it from a private folder: only the checks under
test keep it out.
"""

import hashlib
import os
import shutil
import signal
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from agentbox import Mount, UsageError, native_folders
from agentbox.engines.wasm import compile_cache
from agentbox.engines.wasm.guest_image import guest_image
from agentbox.engines.wasm.runtime import engine_description
from tests.helpers import (
    HANG_GUARD_SECONDS,
    PRINT_OK,
    PROCESS_HANG_GUARD_SECONDS,
    run_compiling,
    wait_until,
)

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
linux_only = pytest.mark.skipif(
    sys.platform != "linux", reason="the poisoned artifact patches an ELF .text section"
)


# The test session's own cache (AGENTBOX_CACHE_DIR or the user cache), read before any test
# points the variable elsewhere.
SESSION_CACHE = native_folders.cache_dir()


def warm_artifact() -> bytes:
    """The compiled guest from the session's cache (filled by the warm-up fixture)."""
    return artifact_in(SESSION_CACHE).read_bytes()


def artifact_in(cache: Path) -> Path:
    return cache / compile_cache.artifact_path(guest_image(), engine_description(False)).name


def fill_cache(cache: Path, data: bytes) -> Path:
    """A private cache folder holding `data` as the artifact, stamped as agentbox stamps it."""
    cache.mkdir(mode=0o700, parents=True, exist_ok=True)
    artifact = artifact_in(cache)
    compile_cache.store(artifact, data)
    return artifact


def poisoned(data: bytes) -> bytes:
    """`data` (an ELF64 artifact) with every byte of its .text section replaced by int3."""
    image = bytearray(data)
    (section_headers,) = struct.unpack_from("<Q", image, 0x28)
    entry_size, count, names_index = struct.unpack_from("<HHH", image, 0x3A)

    def section(index: int) -> tuple[int, int, int]:
        name, _, _, _, offset, size = struct.unpack_from(
            "<IIQQQQ", image, section_headers + index * entry_size
        )
        return name, offset, size

    names = section(names_index)[1]
    for index in range(count):
        name, offset, size = section(index)
        if image[names + name : image.index(b"\0", names + name)] == b".text":
            image[offset : offset + size] = b"\xcc" * size
            return bytes(image)
    raise AssertionError("no .text section in the compiled guest")


# Runs may compile the guest: seconds, minutes on a loaded machine. A hang guard, not a speed
# check; the script's own deadline counts from the start, compile included.
def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- mounts cannot reach the cache, the config folder or agentbox's install ----------------


def truncate(path: str) -> bytes:
    """The attack: print the artifact's size (proof the path is right), then truncate it."""
    return f"""
import os
print("SIZE", os.path.getsize({path!r}))
try:
    open({path!r}, "r+b").truncate(0)
except OSError as error:
    print("BLOCKED", type(error).__name__)
else:
    print("TRUNCATED")
""".encode()


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    folder = tmp_path / "home" / "cache"
    fill_cache(folder, warm_artifact())
    return folder


MOUNT_FORMS = ["parent", "cache itself", "inside the cache", "symlink", "dot-dot", "root"]


def mount_of(form: str, tmp_path: Path, cache: Path) -> tuple[str, str]:
    """A host folder containing (or inside) the cache, and the artifact's path in the guest."""
    home, name = cache.parent, artifact_in(cache).name
    if form == "symlink":
        (tmp_path / "link").symlink_to(home)
        return str(tmp_path / "link"), f"/x/cache/{name}"
    if form == "dot-dot":
        (home / "work").mkdir()
        return f"{home}/work/..", f"/x/cache/{name}"
    if form == "inside the cache":
        (cache / "sub").mkdir()
        return str(cache / "sub"), f"/x/../{name}"
    if form == "root":
        return "/", f"/x{artifact_in(cache)}"
    if form == "cache itself":
        return str(cache), f"/x/{name}"
    return str(home), f"/x/cache/{name}"


@pytest.mark.parametrize("form", MOUNT_FORMS)
def test_rw_mount_reaching_the_cache_is_refused(tmp_path: Path, cache: Path, form: str) -> None:
    host, guest = mount_of(form, tmp_path, cache)
    before = sha256(artifact_in(cache))
    result = run_compiling(cache, "--mount", f"{host}:/x:rw", code=truncate(guest))
    assert (result.returncode, result.stdout) == (2, b"")
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("agentbox: refusing to mount"), lines
    assert sha256(artifact_in(cache)) == before


def test_positive_control_the_same_mount_reaches_the_artifact(tmp_path: Path, cache: Path) -> None:
    """Read-only, the parent mount shows the real artifact (the attack aimed right), and the
    same truncation succeeds against a copy in a folder that may be mounted rw."""
    host, guest = mount_of("parent", tmp_path, cache)
    size = artifact_in(cache).stat().st_size
    seen = run_compiling(cache, "--mount", f"{host}:/x:ro", code=truncate(guest))
    assert seen.stdout.decode().split() == ["SIZE", str(size), "BLOCKED", "PermissionError"], (
        seen.stderr
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copyfile(artifact_in(cache), elsewhere / "copy.cwasm")
    done = run_compiling(cache, "--mount", f"{elsewhere}:/x:rw", code=truncate("/x/copy.cwasm"))
    assert done.stdout.decode().split() == ["SIZE", str(size), "TRUNCATED"], done.stderr
    assert (elsewhere / "copy.cwasm").stat().st_size == 0


def test_rw_mount_of_config_or_install_folders_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    config = native_folders.config_dir()
    config.mkdir(parents=True)
    package = Path(compile_cache.__file__).parent
    for folder in (config, tmp_path / "config", package, package.parent, Path(sys.executable)):
        host = folder if folder.is_dir() else folder.parent
        with pytest.raises(UsageError, match=r"refusing to mount .* read-write"):
            Mount(host, "/x", writable=True)
        assert Mount(host, "/x").host == host.resolve()  # read-only is fine


# --- the artifact: changed, truncated while mapped, in a folder others can write ------------


@linux_only
def test_positive_control_a_stamped_poisoned_artifact_in_a_private_folder_runs(
    tmp_path: Path,
) -> None:
    """Why the folder checks matter: a matching stamp in a private folder is trusted."""
    fill_cache(tmp_path / "cache", poisoned(warm_artifact()))
    result = run_compiling(tmp_path / "cache")
    assert result.returncode == -signal.SIGTRAP, result.stderr


@linux_only
def test_artifact_changed_in_place_with_its_mtime_restored_never_runs(tmp_path: Path) -> None:
    """The attack a rw mount allowed: same size, mtime set back. ctime still moves, the hash
    differs, the artifact is compiled again (the poisoned bytes would have died of SIGTRAP)."""
    original = warm_artifact()
    artifact = fill_cache(tmp_path / "cache", original)
    info = artifact.stat()
    with artifact.open("r+b") as file:
        file.write(poisoned(original))
    os.utime(artifact, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert artifact.stat().st_size == info.st_size and sha256(artifact) != sha256_of(original)
    result = run_compiling(tmp_path / "cache")
    assert (result.returncode, result.stdout) == (0, b"ok\n"), result.stderr
    assert b"is not what agentbox wrote" in result.stderr
    assert artifact.read_bytes() == original and artifact.stat().st_ino != info.st_ino


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_an_unchanged_artifact_touched_is_hashed_and_kept(tmp_path: Path) -> None:
    """A status change alone (a touch, a backup restored) costs a hash, not a compile."""
    artifact = fill_cache(tmp_path / "cache", warm_artifact())
    os.utime(artifact, ns=(1, 1))
    result = run_compiling(tmp_path / "cache")
    assert (result.returncode, result.stdout, result.stderr) == (0, b"ok\n", b"")
    assert run_compiling(tmp_path / "cache").stderr == b""


def test_a_hard_link_to_the_artifact_makes_it_untrusted(tmp_path: Path) -> None:
    """A second name (say, inside a folder a script may write) is a way to change it."""
    artifact = fill_cache(tmp_path / "cache", warm_artifact())
    os.link(artifact, tmp_path / "second-name")
    result = run_compiling(tmp_path / "cache")
    assert (result.returncode, result.stdout) == (0, b"ok\n"), result.stderr
    assert b"compiling the sandbox again" in result.stderr
    assert artifact.stat().st_nlink == 1


def test_truncating_the_artifact_while_mapped_does_not_crash_a_later_run(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    artifact = fill_cache(cache, warm_artifact())
    holder = subprocess.Popen(
        [sys.executable, "-m", "agentbox", "mcp"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, native_folders.CACHE_DIR_VARIABLE: str(cache)},
    )
    try:
        maps = Path(f"/proc/{holder.pid}/maps")
        assert wait_until(lambda: str(artifact) in maps.read_text()), "never mapped"
        os.truncate(artifact, artifact.stat().st_size // 2)
        result = run_compiling(cache)
        assert (result.returncode, result.stdout) == (0, b"ok\n"), result.stderr
        assert b"compiling the sandbox again" in result.stderr
        assert run_compiling(cache).stderr == b""
    finally:
        holder.kill()
        holder.wait(timeout=HANG_GUARD_SECONDS)


NOT_PRIVATE = {
    "mode 0777": lambda folder: folder.chmod(0o777),
    "group-writable": lambda folder: folder.chmod(0o770),
    "owned by nobody": lambda folder: os.chown(folder, 65534, 65534),
}


@linux_only
@pytest.mark.parametrize("how", [*NOT_PRIVATE, "a symbolic link"])
def test_a_stamped_poisoned_artifact_in_a_folder_not_private_never_runs(
    tmp_path: Path, how: str
) -> None:
    if how == "owned by nobody" and not IS_ROOT:
        pytest.skip("giving a folder to another user needs root (the suite runs as root in CI)")
    real = tmp_path / "cache"
    artifact = fill_cache(real, poisoned(warm_artifact()))
    cache = real
    if how == "a symbolic link":
        cache = tmp_path / "link"
        cache.symlink_to(real)
    else:
        NOT_PRIVATE[how](real)
    before = artifact.stat()
    result = run_compiling(cache)
    assert (result.returncode, result.stdout) == (0, b"ok\n"), result.stderr
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"agentbox: not using the cache folder {cache}")
    after = artifact.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert sorted(path.name for path in real.iterdir()) == [
        artifact.name,
        artifact.with_suffix(".stamp").name,
    ]


def test_created_cache_folders_are_private_whatever_the_umask(tmp_path: Path) -> None:
    cache = tmp_path / "new" / "nested" / "cache"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "agentbox",
            "run",
            "--timeout",
            str(PROCESS_HANG_GUARD_SECONDS),
            "-",
        ],
        input=PRINT_OK,
        capture_output=True,
        timeout=PROCESS_HANG_GUARD_SECONDS,
        env={**os.environ, native_folders.CACHE_DIR_VARIABLE: str(cache)},
        umask=0,
    )
    assert (result.returncode, result.stdout) == (0, b"ok\n"), result.stderr
    for folder in (tmp_path / "new", tmp_path / "new" / "nested", cache):
        assert folder.stat().st_mode & 0o777 == 0o700, folder
    for file in cache.iterdir():
        assert file.stat().st_mode & 0o777 == 0o600, file
