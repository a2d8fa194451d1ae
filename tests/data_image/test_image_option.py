"""`--image`, AGENTBOX_IMAGE, the config key and `Sandbox(image=)`: bad values are one line with
their exit code, and a data image that is not installed names the command that installs it.
No data image needed (the data folder is an empty one)."""

import json
import os
from pathlib import Path

import pytest

from agentbox import ExitCode, Sandbox
from agentbox.errors import ImageNotInstalledError, UsageError
from tests.helpers import run_cli


@pytest.fixture
def no_images(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "AGENTBOX_DATA_DIR": str(tmp_path / "data")}


@pytest.mark.parametrize("command", [["run", "-"], ["mcp"], ["serve", "--port", "0"], ["warmup"]])
def test_a_missing_data_image_is_one_line_naming_the_install(
    no_images: dict[str, str], command: list[str]
) -> None:
    result = run_cli(command[0], "--image", "data", *command[1:], stdin=b"print(1)", env=no_images)
    assert result.returncode == ExitCode.IMAGE
    assert result.stdout == b""
    assert result.stderr.decode().splitlines() == [
        "agentbox: the data image is not installed: run `agentbox image install data`"
    ]


def test_the_environment_variable_and_the_config_key_choose_the_image(
    no_images: dict[str, str], tmp_path: Path
) -> None:
    by_env = run_cli("run", "-", stdin=b"print(1)", env={**no_images, "AGENTBOX_IMAGE": "data"})
    assert by_env.returncode == ExitCode.IMAGE
    config = tmp_path / "agentbox.toml"
    config.write_text('image = "data"\n')
    by_config = run_cli("run", "--config", str(config), "-", stdin=b"print(1)", env=no_images)
    assert by_config.returncode == ExitCode.IMAGE
    # an explicit option wins over the config file (positive control: it runs)
    explicit = run_cli(
        "run", "--config", str(config), "--image", "default", "-", stdin=b"print(1)", env=no_images
    )
    assert (explicit.returncode, explicit.stdout) == (0, b"1\n"), explicit.stderr


def test_an_unknown_image_is_a_usage_error(no_images: dict[str, str], tmp_path: Path) -> None:
    result = run_cli("run", "--image", "big", "-", stdin=b"print(1)", env=no_images)
    assert result.returncode == ExitCode.USAGE
    assert len(result.stderr.decode().splitlines()) == 1
    assert b"'big' is not one of 'default', 'data'" in result.stderr
    as_json = run_cli("run", "--json", "--image", "big", "-", stdin=b"", env=no_images)
    assert json.loads(as_json.stdout)["exit_code"] == ExitCode.USAGE
    config = tmp_path / "agentbox.toml"
    config.write_text('image = "big"\n')
    bad_config = run_cli("run", "--config", str(config), "-", stdin=b"print(1)", env=no_images)
    assert bad_config.returncode == ExitCode.USAGE
    assert len(bad_config.stderr.decode().splitlines()) == 1


def test_the_api_refuses_what_the_cli_refuses(
    no_images: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTBOX_DATA_DIR", no_images["AGENTBOX_DATA_DIR"])
    with pytest.raises(UsageError, match="unknown image 'big'"):
        Sandbox(image="big")
    with pytest.raises(UsageError, match="the data image needs --memory of at least 256M"):
        Sandbox(image="data", memory="128M")
    with pytest.raises(UsageError, match="wasm engine only"):
        Sandbox(image="data", engine="restricted")
    with pytest.raises(ImageNotInstalledError, match="agentbox image install data"):
        Sandbox(image="data")
    assert Sandbox(image="default").run("print(2)").stdout == "2\n"  # positive control
