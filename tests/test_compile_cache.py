"""The compiled-guest cache: recovers from damage, survives concurrent first runs."""

import subprocess
import sys
from pathlib import Path

import pytest

from agentbox import native_folders
from agentbox.engines.wasm import compile_cache
from agentbox.engines.wasm.guest_image import guest_image
from agentbox.engines.wasm.runtime import engine_description
from tests.helpers import PRINT_OK, PROCESS_HANG_GUARD_SECONDS, run_cli, run_compiling


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(native_folders.CACHE_DIR_VARIABLE, str(folder))
    return folder


def _artifact(cache_dir: Path) -> Path:
    return compile_cache.artifact_path(guest_image(), engine_description(False))


def _run_ok(cache_dir: Path) -> subprocess.CompletedProcess[bytes]:
    result = run_compiling(cache_dir)
    assert (result.returncode, result.stdout) == (0, b"ok\n"), result.stderr
    return result


def test_first_run_compiles_with_progress_then_reuses(cache_dir: Path) -> None:
    first = _run_ok(cache_dir)
    assert b"compiling the sandbox" in first.stderr
    assert b"sandbox compiled in" in first.stderr
    assert _artifact(cache_dir).is_file()
    second = _run_ok(cache_dir)
    assert second.stderr == b""


def test_key_covers_wasmtime_engine_guest_and_platform(cache_dir: Path) -> None:
    guest = guest_image()
    keys = {
        compile_cache.cache_key(guest, engine_description(False)),
        compile_cache.cache_key(guest, engine_description(True)),
    }
    assert len(keys) == 2
    assert _artifact(cache_dir).parent == cache_dir


@pytest.mark.parametrize("damage", ["truncate", "corrupt", "foreign", "empty"])
def test_damaged_cache_is_rebuilt_and_the_run_succeeds(cache_dir: Path, damage: str) -> None:
    _run_ok(cache_dir)
    artifact = _artifact(cache_dir)
    data = artifact.read_bytes()
    if damage == "truncate":
        artifact.write_bytes(data[: len(data) // 2])
    elif damage == "corrupt":
        middle = len(data) // 2
        artifact.write_bytes(
            data[:middle]
            + bytes(b ^ 0xFF for b in data[middle : middle + 4096])
            + data[middle + 4096 :]
        )
    elif damage == "foreign":
        artifact.write_bytes(b"\x7fELF" + b"\0" * len(data))
    else:
        artifact.write_bytes(b"")
    rebuilt = _run_ok(cache_dir)
    assert b"compiling the sandbox" in rebuilt.stderr
    assert artifact.read_bytes() == data


def test_missing_stamp_is_rebuilt(cache_dir: Path) -> None:
    _run_ok(cache_dir)
    _artifact(cache_dir).with_suffix(".stamp").unlink()
    assert b"compiling the sandbox" in _run_ok(cache_dir).stderr


def test_two_processes_compiling_at_once_both_succeed(cache_dir: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "agentbox",
        "run",
        "--timeout",
        str(PROCESS_HANG_GUARD_SECONDS),
        "-",
    ]
    env = {"AGENTBOX_CACHE_DIR": str(cache_dir), "PATH": "/usr/bin:/bin"}
    processes = [
        subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        for _ in range(2)
    ]
    for process in processes:  # both scripts handed over before either is waited for
        assert process.stdin is not None
        process.stdin.write(PRINT_OK)
        process.stdin.close()
    outputs = []
    for process in processes:  # a few lines of output each: the pipes cannot fill up
        process.wait(timeout=PROCESS_HANG_GUARD_SECONDS)
        assert process.stdout is not None and process.stderr is not None
        outputs.append((process.stdout.read(), process.stderr.read()))
    for process, (stdout, stderr) in zip(processes, outputs, strict=True):
        assert (process.returncode, stdout) == (0, b"ok\n"), stderr
    assert b"compiling the sandbox" in outputs[0][1] + outputs[1][1]
    assert [path.name for path in cache_dir.iterdir() if path.suffix == ".tmp"] == []
    assert _run_ok(cache_dir).stderr == b""


def test_unwritable_cache_still_runs(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = run_compiling(blocker / "sub")
    assert (result.returncode, result.stdout) == (0, b"ok\n")
    assert b"could not cache the compiled sandbox" in result.stderr


def test_cache_clear_and_dir(cache_dir: Path) -> None:
    _run_ok(cache_dir)
    shown = run_cli("cache", "dir", env={"AGENTBOX_CACHE_DIR": str(cache_dir)})
    assert shown.stdout.decode().strip() == str(cache_dir)
    cleared = run_cli("cache", "clear", env={"AGENTBOX_CACHE_DIR": str(cache_dir)})
    assert cleared.returncode == 0 and b"removed" in cleared.stdout
    assert not cache_dir.exists()


def test_a_compile_that_finishes_second_keeps_the_file_the_first_cached(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes compiling at once: the one that finishes second keeps and loads the file
    the first cached (whose memory image the first has mapped; a recycled instance restores
    from that very file) instead of replacing it with its own copy."""
    from wasmtime import Engine, Module, wat2wasm

    source = cache_dir.parent / "tiny.wasm"
    source.write_bytes(wat2wasm('(module (memory 1) (data (i32.const 0) "x"))'))
    native_folders.make_private(cache_dir)
    artifact = cache_dir / "tiny.cwasm"
    real_compile = Module.from_file
    cached_by_the_other: list[int] = []

    def compile_while_another_process_caches(engine: Engine, path: str) -> Module:
        compiled = real_compile(engine, path)
        compile_cache.store(artifact, bytes(compiled.serialize()))  # the other process
        cached_by_the_other.append(artifact.stat().st_ino)
        return compiled

    monkeypatch.setattr(Module, "from_file", compile_while_another_process_caches)
    engine = Engine()
    compile_cache._load(engine, source, artifact, lambda _: None, Module, "the test")
    assert artifact.stat().st_ino == cached_by_the_other[0]
    # The control: storing over the file, as the old code did, shows as a new inode.
    compile_cache.store(artifact, artifact.read_bytes())
    assert artifact.stat().st_ino != cached_by_the_other[0]
