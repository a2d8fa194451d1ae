"""The compile cache's Module variant (the data image is a core module): keyed on the image's
sha256 and the engine settings, with the component cache's stamp checks. A small real module
stands in for the 99 MB image, so this needs no data image."""

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from wasmtime import wat2wasm

from agentbox import native_folders
from agentbox.engines.wasm import compile_cache
from agentbox.engines.wasm.core_runtime import _engine, engine_description

WAT = '(module (func (export "answer") (result i32) (i32.const 42)))'


@dataclass(frozen=True)
class TinyImage:
    sha256: str


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(native_folders.CACHE_DIR_VARIABLE, str(folder))
    return folder


def _load(path: Path, image: TinyImage, fuel: bool = False) -> list[str]:
    said: list[str] = []
    engine = _engine(fuel)
    module = compile_cache.load_module(
        engine, image, path, engine_description(fuel), said.append, "tiny"
    )
    assert [export.name for export in module.exports] == ["answer"]
    return said


def test_compiled_once_then_loaded_from_the_cache(cache_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "tiny.wasm"
    path.write_bytes(wat2wasm(WAT))
    image = TinyImage("ab" * 32)
    first = _load(path, image)
    assert first[0] == "agentbox: compiling the tiny image for this machine (first run only)..."
    assert first[1].startswith("agentbox: tiny image compiled in ")
    [artifact] = cache_dir.glob("tiny-abababababababab-*.cwasm")
    assert artifact.with_suffix(".stamp").is_file()
    assert _load(path, image) == []  # from the cache: nothing to say
    assert _load(path, image, fuel=True)[0].startswith("agentbox: compiling")  # other settings
    assert _load(path, TinyImage("cd" * 32))[0].startswith("agentbox: compiling")  # other image


def test_a_changed_artifact_is_compiled_again(cache_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "tiny.wasm"
    path.write_bytes(wat2wasm(WAT))
    image = TinyImage("ef" * 32)
    _load(path, image)
    [artifact] = cache_dir.glob("tiny-*.cwasm")
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0xFF
    artifact.write_bytes(bytes(data))
    said = _load(path, image)
    assert "is not what agentbox wrote" in said[0]


def test_a_shared_cache_folder_is_not_used(cache_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "tiny.wasm"
    path.write_bytes(wat2wasm(WAT))
    cache_dir.mkdir(mode=0o700)
    os.chmod(cache_dir, 0o777)
    said = _load(path, TinyImage("12" * 32))
    assert "not using the cache folder" in said[0]
    assert list(cache_dir.iterdir()) == []
