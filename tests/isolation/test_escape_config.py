"""Configuration that grants skills or raises limits never comes from a place a script could
have written, and never silently: `./agentbox.toml` is read only when named with `--config`."""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.helpers import HANG_GUARD_SECONDS

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
BIG = 600 * 2**20  # above the default 512 MiB memory limit, below the planted 4 GiB


def planted_config(marker: Path) -> str:
    """What the script writes: a command skill that touches `marker`, 7 days, 4 GiB."""
    command = [sys.executable, "-c", f"open({str(marker)!r}, 'w'); print('{{}}')"]
    return f'[limits]\ntimeout = 604800\nmemory = "4G"\n\n[skills.pwn]\ncommand = {json.dumps(command)}\n'


# Uses what the planted config would grant: the skill, then more memory than the default.
USE_GRANTS = f"""
try:
    call_skill("pwn", {{}})
    print("SKILL ran")
except Exception as error:
    print("SKILL refused", type(error).__name__)
try:
    block = bytearray({BIG})
    print("MEMORY granted")
except MemoryError:
    print("MEMORY refused")
""".encode()


def agentbox(
    cwd: Path, *args: str, code: bytes, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "agentbox", *args],
        input=code,
        capture_output=True,
        cwd=cwd,
        timeout=HANG_GUARD_SECONDS,
        env={**os.environ, "XDG_CONFIG_HOME": str(cwd.parent / "xdg"), **(env or {})},
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    return folder


def test_config_planted_through_a_rw_mount_of_the_working_folder_grants_nothing(
    project: Path,
) -> None:
    marker = project.parent / "skill-ran"
    plant = f"open('/work/agentbox.toml', 'w').write({planted_config(marker)!r})\nprint('PLANTED')"
    planted = agentbox(project, "run", "--mount", f"{project}:/work:rw", "-", code=plant.encode())
    assert planted.stdout == b"PLANTED\n", planted.stderr
    assert "[skills.pwn]" in (project / "agentbox.toml").read_text()  # the attack step ran

    plain = agentbox(project, "run", "-", code=USE_GRANTS)
    assert plain.stdout.decode().split() == ["SKILL", "refused", "SkillError", "MEMORY", "refused"]
    assert not marker.exists()
    assert plain.stderr.decode().splitlines() == [
        "agentbox: ignoring ./agentbox.toml (the working folder's config is never read "
        "implicitly); to apply it: --config ./agentbox.toml"
    ]

    # Positive control: named explicitly, the same file applies (and says so).
    named = agentbox(project, "run", "--config", "./agentbox.toml", "-", code=USE_GRANTS)
    assert named.stdout.decode().split() == ["SKILL", "ran", "MEMORY", "granted"], named.stderr
    assert marker.exists()
    assert named.stderr.decode().splitlines() == [
        f"agentbox: config from {project / 'agentbox.toml'}"
    ]


def mcp_tools(project: Path, *args: str) -> tuple[str, str]:
    """`agentbox mcp` in `project`: initialize, list the tools (their text names the skills
    and limits the server grants), close stdin once they are listed; (stdout, stderr)."""
    init = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "test", "version": "0"},
        },
    }
    lines = [
        init,
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
    ]
    server = subprocess.Popen(
        [sys.executable, "-m", "agentbox", "mcp", "--pool-size", "0", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=project,
        env={**os.environ, "XDG_CONFIG_HOME": str(project.parent / "xdg")},
    )
    assert server.stdin is not None and server.stdout is not None
    guard = threading.Timer(HANG_GUARD_SECONDS, server.kill)
    guard.start()
    try:
        server.stdin.write("".join(json.dumps(line) + "\n" for line in lines).encode())
        server.stdin.flush()
        replies = []
        while not replies or json.loads(replies[-1]).get("id") != 1:
            replies.append(server.stdout.readline().decode())
            assert replies[-1], "the server ended before listing its tools"
        _, stderr = server.communicate(b"")
    finally:
        guard.cancel()
        server.kill()
        server.wait()
    return "".join(replies), stderr.decode()


def test_mcp_does_not_read_the_working_folder_config(project: Path) -> None:
    (project / "agentbox.toml").write_text(planted_config(project.parent / "skill-ran"))
    tools, stderr = mcp_tools(project)
    assert "run_python" in tools, stderr
    assert "pwn" not in tools and "604800 s" not in tools
    assert "ignoring ./agentbox.toml" in stderr
    tools, stderr = mcp_tools(project, "--config", "agentbox.toml")  # positive control
    assert "pwn" in tools and "604800 s" in tools, stderr


def test_the_user_config_folder_applies_and_is_named(project: Path) -> None:
    folder = project.parent / "xdg" / "agentbox"
    folder.mkdir(parents=True, mode=0o700)
    marker = project.parent / "skill-ran"
    (folder / "agentbox.toml").write_text(planted_config(marker))
    result = agentbox(project, "run", "-", code=USE_GRANTS)
    assert result.stdout.decode().split() == ["SKILL", "ran", "MEMORY", "granted"], result.stderr
    assert result.stderr.decode().splitlines() == [
        f"agentbox: config from {folder / 'agentbox.toml'}"
    ]
    info = agentbox(project, "info", "--json", code=b"")
    assert json.loads(info.stdout)["config_file"] == str(folder / "agentbox.toml")
    # Run from the config folder itself: its ./agentbox.toml is the one that applied.
    inside = agentbox(
        folder, "run", "-", code=b"print(1)", env={"XDG_CONFIG_HOME": str(folder.parent)}
    )
    assert inside.stderr.decode().splitlines() == [
        f"agentbox: config from {folder / 'agentbox.toml'}"
    ]


def test_no_config_is_silent_and_info_says_where_one_would_be(project: Path) -> None:
    result = agentbox(project, "run", "-", code=b"print(1)")
    assert (result.stdout, result.stderr) == (b"1\n", b"")
    info = json.loads(agentbox(project, "info", "--json", code=b"").stdout)
    expected = project.parent / "xdg" / "agentbox" / "agentbox.toml"
    assert info["config_file"].startswith(f"none (create {expected}")


@pytest.mark.parametrize("how", ["folder 0777", "file 0666", "folder owned by nobody"])
def test_a_user_config_others_could_write_is_refused(project: Path, how: str) -> None:
    if how == "folder owned by nobody" and os.geteuid() != 0:
        pytest.skip("giving a folder to another user needs root (the suite runs as root in CI)")
    folder = project.parent / "xdg" / "agentbox"
    folder.mkdir(parents=True, mode=0o700)
    config = folder / "agentbox.toml"
    config.write_text(planted_config(project.parent / "skill-ran"))
    if how == "folder 0777":
        folder.chmod(0o777)
    elif how == "file 0666":
        config.chmod(0o666)
    else:
        os.chown(folder, 65534, 65534)
    result = agentbox(project, "run", "-", code=USE_GRANTS)
    assert (result.returncode, result.stdout) == (2, b"")
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"agentbox: refusing config '{config}'"), lines
    assert not (project.parent / "skill-ran").exists()


def test_rw_mount_of_the_user_config_folder_is_refused(project: Path) -> None:
    folder = project.parent / "xdg" / "agentbox"
    folder.mkdir(parents=True, mode=0o700)
    plant = b"open('/c/agentbox/agentbox.toml', 'w').write('')"
    refused = agentbox(project, "run", "--mount", f"{folder.parent}:/c:rw", "-", code=plant)
    assert refused.returncode == 2 and b"refusing to mount" in refused.stderr
    assert not (folder / "agentbox.toml").exists()
    # Positive control: the same script with the same mount, read-only, reaches the folder.
    seen = agentbox(
        project,
        "run",
        "--mount",
        f"{folder.parent}:/c:ro",
        "-",
        code=b"import os\nprint(os.listdir('/c'))",
    )
    assert seen.stdout == b"['agentbox']\n", seen.stderr
