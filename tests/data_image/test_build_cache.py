"""The compiled instrumented python.wasm is kept in agentbox's compile cache (a rebuild after a
change of the init source skips minutes of compiling), under the cache's own rules."""

from pathlib import Path

import pytest
import wasmtime

from agentbox.engines.wasm.data_image import build

MODULE = wasmtime.wat2wasm('(module (func (export "f") (result i32) (i32.const 7)))')


def _call(module: wasmtime.Module, engine: wasmtime.Engine) -> int:
    store = wasmtime.Store(engine)
    result: int = wasmtime.Instance(store, module, []).exports(store)["f"](store)
    return result


def test_the_compiled_module_is_cached_and_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("AGENTBOX_CACHE_DIR", str(cache))
    engine = wasmtime.Engine()
    compile_module = build.cached_compile(lambda message: None)
    assert _call(compile_module(engine, MODULE), engine) == 7
    (artifact,) = cache.glob("preinit-*.cwasm")
    written = artifact.stat().st_mtime_ns
    assert _call(compile_module(engine, MODULE), engine) == 7  # from the cache
    assert artifact.stat().st_mtime_ns == written


def test_a_damaged_artifact_is_compiled_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attack: bytes that agentbox did not write are never deserialised."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("AGENTBOX_CACHE_DIR", str(cache))
    engine = wasmtime.Engine()
    compile_module = build.cached_compile(lambda message: None)
    compile_module(engine, MODULE)
    (artifact,) = cache.glob("preinit-*.cwasm")
    artifact.write_bytes(b"not a compiled module")
    assert _call(compile_module(engine, MODULE), engine) == 7
    assert artifact.read_bytes() != b"not a compiled module"  # written again


def test_a_shared_cache_folder_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o777)
    cache.chmod(0o777)
    monkeypatch.setenv("AGENTBOX_CACHE_DIR", str(cache))
    said: list[str] = []
    engine = wasmtime.Engine()
    assert _call(build.cached_compile(said.append)(engine, MODULE), engine) == 7
    assert list(cache.iterdir()) == []
    assert "writable by other users" in said[0]
