"""Mounts: a mounted folder is readable; read-only (the default) denies every change; nothing
outside the mounted folder is reachable through it (symlinks, `..`)."""

import hashlib
import os
import textwrap
from pathlib import Path

import pytest

from agentbox import ExitCode, Sandbox
from tests.helpers import run_cli

CONTENT = b"original content\nline 2\n"
SECRET = b"TOP-SECRET-outside-the-mount\n"


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    """`mounted/` (what the guest sees) next to `outside/secret.txt` (what it must not see)."""
    mounted = tmp_path / "mounted"
    outside = tmp_path / "outside"
    (mounted / "sub").mkdir(parents=True)
    outside.mkdir()
    (mounted / "file.txt").write_bytes(CONTENT)
    (mounted / "sub" / "inner.txt").write_bytes(CONTENT)
    (outside / "secret.txt").write_bytes(SECRET)
    (mounted / "abs-link").symlink_to(outside / "secret.txt")
    (mounted / "rel-link").symlink_to(Path("..") / "outside" / "secret.txt")
    (mounted / "dir-link").symlink_to(outside)
    (mounted / "root-link").symlink_to("/")
    return {"tmp": tmp_path, "mounted": mounted, "outside": outside}


def snapshot(root: Path) -> dict[str, tuple[str, int, str]]:
    """Every entry under `root` (links not followed): kind, mode and content hash."""
    state = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        if path.is_symlink():
            state[str(path)] = ("link", info.st_mode, os.readlink(path))
        elif path.is_dir():
            state[str(path)] = ("dir", info.st_mode, "")
        else:
            state[str(path)] = ("file", info.st_mode, hashlib.sha256(path.read_bytes()).hexdigest())
    return state


ATTEMPT = textwrap.dedent(
    """
    import os, sys
    try:
        exec(sys.argv[1])
    except OSError as error:
        print("BLOCKED", type(error).__name__)
    else:
        print("DONE")
    """
)


def test_read_works(layout: dict[str, Path]) -> None:
    box = Sandbox(timeout=20, mounts=[str(layout["mounted"])])
    code = "import os\nprint(sorted(os.listdir('/data')))\nprint(open('/data/file.txt').read(), end='')"
    result = box.run(code)
    assert result.exit_code == ExitCode.OK, result.stderr
    assert result.stdout.splitlines() == [
        "['abs-link', 'dir-link', 'file.txt', 'rel-link', 'root-link', 'sub']",
        *CONTENT.decode().splitlines(),
    ]


WRITES = {
    "write": "open('/data/file.txt', 'w').write('pwned')",
    "append": "open('/data/file.txt', 'a').write('pwned')",
    "r+ write": "f = open('/data/file.txt', 'r+b'); f.write(b'X'); f.flush()",
    "r+ truncate": "open('/data/file.txt', 'r+').truncate(0)",
    "os.truncate": "os.truncate('/data/file.txt', 0)",
    "O_TRUNC": "os.open('/data/file.txt', os.O_RDONLY | os.O_TRUNC)",
    "O_RDWR": "os.write(os.open('/data/file.txt', os.O_RDWR), b'X')",
    "create": "open('/data/new.txt', 'x')",
    "create in subdir": "open('/data/sub/new.txt', 'w')",
    "rename": "os.rename('/data/file.txt', '/data/renamed.txt')",
    "replace": "os.replace('/data/sub/inner.txt', '/data/file.txt')",
    "delete": "os.remove('/data/file.txt')",
    "rmdir": "os.rmdir('/data/sub')",
    "mkdir": "os.mkdir('/data/newdir')",
    "symlink": "os.symlink('/etc/passwd', '/data/new-link')",
    "hardlink": "os.link('/data/file.txt', '/data/hard')",
    "utime": "os.utime('/data/file.txt', (0, 0))",
    "unlink symlink": "os.unlink('/data/abs-link')",
}


@pytest.mark.parametrize("statement", WRITES.values(), ids=WRITES.keys())
def test_read_only_mount_denies_changes(layout: dict[str, Path], statement: str) -> None:
    before = snapshot(layout["tmp"])
    box = Sandbox(timeout=20, mounts=[str(layout["mounted"])])
    result = box.run(ATTEMPT, args=[statement])
    assert result.exit_code == ExitCode.OK, result.stderr
    assert result.stdout.startswith("BLOCKED "), result.stdout
    assert snapshot(layout["tmp"]) == before
    assert (layout["mounted"] / "file.txt").read_bytes() == CONTENT


def test_read_only_mount_chmod_leaves_the_host_unchanged(layout: dict[str, Path]) -> None:
    """WASI has no chmod: CPython's `os.chmod` is a silent no-op there. The host must not move."""
    before = snapshot(layout["tmp"])
    box = Sandbox(timeout=20, mounts=[str(layout["mounted"])])
    code = ATTEMPT + "print(oct(os.stat('/data/file.txt').st_mode & 0o777))\n"
    result = box.run(code, args=["os.chmod('/data/file.txt', 0o777)"])
    assert result.exit_code == ExitCode.OK, result.stderr
    assert result.stdout.splitlines()[0] in ("BLOCKED PermissionError", "DONE")
    assert result.stdout.splitlines()[1] != "0o777"
    assert snapshot(layout["tmp"]) == before


ESCAPES = {
    "absolute symlink": "/data/abs-link",
    "relative symlink": "/data/rel-link",
    "symlinked dir": "/data/dir-link/secret.txt",
    "root symlink": "/data/root-link" + "/tmp/x",
    "dotdot": "/data/../outside/secret.txt",
    "dotdot twice": "/data/sub/../../outside/secret.txt",
    "many dotdots": "/data/../../../../../../../../{outside}/secret.txt",
    "absolute host path": "{outside}/secret.txt",
    "dotdot to absolute": "/data/../../../..{outside}/secret.txt",
}


@pytest.mark.parametrize("pattern", ESCAPES.values(), ids=ESCAPES.keys())
def test_nothing_outside_the_mount_can_be_read(layout: dict[str, Path], pattern: str) -> None:
    path = pattern.replace("/tmp/x", str(layout["outside"] / "secret.txt")).format(
        outside=layout["outside"]
    )
    box = Sandbox(timeout=20, mounts=[str(layout["mounted"])])
    code = textwrap.dedent(
        """
        import os, sys
        path = sys.argv[1]
        for attempt in (lambda: open(path, "rb").read(), lambda: os.listdir(path)):
            try:
                value = attempt()
            except OSError as error:
                print("BLOCKED", type(error).__name__)
            else:
                print("LEAK", value)
        """
    )
    result = box.run(code, args=[path])
    assert result.exit_code == ExitCode.OK, result.stderr
    assert SECRET.decode().strip() not in result.stdout
    assert all(line.startswith("BLOCKED ") for line in result.stdout.splitlines()), result.stdout


def test_listing_the_mount_parent_shows_nothing(layout: dict[str, Path]) -> None:
    box = Sandbox(timeout=20, mounts=[str(layout["mounted"])])
    code = ATTEMPT + "\n"
    for statement in ("print(os.listdir('/data/..'))", "print(os.listdir('/'))"):
        result = box.run(code, args=[statement])
        assert "outside" not in result.stdout
        assert result.stdout.startswith("BLOCKED ") or result.stdout.startswith("[]"), result.stdout


def test_rw_mount_allows_writes(layout: dict[str, Path]) -> None:
    """Positive control: the same operations succeed on a `rw` mount."""
    box = Sandbox(timeout=20, mounts=[f"{layout['mounted']}:/work:rw"])
    code = textwrap.dedent(
        """
        import os
        open("/work/new.txt", "w").write("written by the guest")
        os.rename("/work/new.txt", "/work/renamed.txt")
        open("/work/file.txt", "r+").truncate(0)
        os.mkdir("/work/newdir")
        os.remove("/work/sub/inner.txt")
        print("ok")
        """
    )
    result = box.run(code)
    assert (result.exit_code, result.stdout) == (ExitCode.OK, "ok\n"), result.stderr
    mounted = layout["mounted"]
    assert (mounted / "renamed.txt").read_text() == "written by the guest"
    assert (mounted / "file.txt").read_bytes() == b""
    assert (mounted / "newdir").is_dir()
    assert not (mounted / "sub" / "inner.txt").exists()
    assert (layout["outside"] / "secret.txt").read_bytes() == SECRET


def test_rw_mount_still_confines_symlinks(layout: dict[str, Path]) -> None:
    """Writable does not mean escapable: writing through a link that leaves the mount fails."""
    before = (layout["outside"] / "secret.txt").read_bytes()
    box = Sandbox(timeout=20, mounts=[f"{layout['mounted']}:/data:rw"])
    for statement in (
        "open('/data/abs-link', 'w').write('pwned')",
        "open('/data/dir-link/new.txt', 'w').write('pwned')",
        "open('/data/../outside/new.txt', 'w').write('pwned')",
    ):
        result = box.run(ATTEMPT, args=[statement])
        assert result.stdout.startswith("BLOCKED "), (statement, result.stdout)
    assert (layout["outside"] / "secret.txt").read_bytes() == before
    assert sorted(p.name for p in layout["outside"].iterdir()) == ["secret.txt"]


@pytest.mark.parametrize("target", ["{outside}", "/"])
def test_guest_cannot_plant_an_absolute_symlink_in_a_rw_mount(
    layout: dict[str, Path], target: str
) -> None:
    box = Sandbox(timeout=20, mounts=[f"{layout['mounted']}:/data:rw"])
    target = target.format(outside=layout["outside"])
    code = ATTEMPT + "print(os.listdir('/data/evil'))\n"
    result = box.run(code, args=[f"os.symlink({target!r}, '/data/evil')"])
    assert "secret.txt" not in result.stdout
    assert result.stdout.startswith("BLOCKED "), result.stdout
    assert not os.path.lexists(layout["mounted"] / "evil")


@pytest.mark.parametrize("target", ["../outside", "../outside/secret.txt"])
def test_relative_symlink_planted_in_a_rw_mount_cannot_be_followed_by_the_guest(
    layout: dict[str, Path], target: str
) -> None:
    """Known and documented (docs/security.md, "Writable mounts"): wasmtime lets the guest
    create a relative link whose text points outside a rw mount. The guest can never follow
    it; a host program that later walks the folder could. This test pins both facts down so a
    change in wasmtime's behaviour is noticed."""
    box = Sandbox(timeout=20, mounts=[f"{layout['mounted']}:/data:rw"])
    code = (
        f"import os\nos.symlink({target!r}, '/data/evil')\n"
        "for attempt in (lambda: os.listdir('/data/evil'), lambda: open('/data/evil').read()):\n"
        "    try:\n        print('FOLLOWED', attempt())\n"
        "    except OSError as error:\n        print('BLOCKED', type(error).__name__)\n"
    )
    result = box.run(code)
    assert result.exit_code == ExitCode.OK, result.stderr
    assert "FOLLOWED" not in result.stdout
    assert result.stdout.count("BLOCKED") == 2, result.stdout
    assert "secret" not in result.stdout.lower()
    assert os.path.lexists(layout["mounted"] / "evil")  # the documented residual risk


def test_cli_mount_is_read_only_by_default(layout: dict[str, Path]) -> None:
    before = snapshot(layout["tmp"])
    code = b"open('/data/file.txt', 'w').write('pwned')\n"
    completed = run_cli("run", "--mount", str(layout["mounted"]), "-", stdin=code)
    assert completed.returncode == ExitCode.SCRIPT_ERROR
    assert b"PermissionError" in completed.stderr
    assert snapshot(layout["tmp"]) == before
    completed = run_cli(
        "run", "--mount", str(layout["mounted"]), "-", stdin=b"print(open('/data/file.txt').read())"
    )
    assert completed.returncode == ExitCode.OK
    assert completed.stdout.startswith(CONTENT)
