"""Host files: without a mount the guest sees no host file system at all (no WASI preopens)."""

import textwrap
from pathlib import Path

import pytest

from agentbox import ExitCode, Sandbox

ROOT = Path(__file__).resolve().parents[2]

PROBE = textwrap.dedent(
    """
    import sys
    path = sys.argv[1]
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        print("BLOCKED", type(error).__name__)
    else:
        print("LEAK", len(data))
    """
)


@pytest.mark.parametrize(
    "path",
    [
        "/etc/passwd",
        "/etc/hostname",
        "/proc/self/environ",
        "/proc/self/maps",
        "/proc/self/cmdline",
        "/proc/self/mem",
        "/dev/zero",
        str(ROOT / "pyproject.toml"),
        str(ROOT / "agentbox" / "sandbox.py"),
        str(Path(__file__).resolve()),
        "../../../../../../etc/passwd",
        "//etc/passwd",
    ],
)
def test_host_file_cannot_be_read(sandbox: Sandbox, path: str) -> None:
    assert Path("/etc/passwd").exists()  # the files exist on the host, just not in the guest
    result = sandbox.run(PROBE, args=[path])
    assert result.exit_code == ExitCode.OK, result.stderr
    assert result.stdout.startswith("BLOCKED "), result.stdout


@pytest.mark.parametrize("path", ["/", "/..", "/../..", ".", "..", "/etc", "/proc", str(ROOT)])
def test_directories_cannot_be_listed(sandbox: Sandbox, path: str) -> None:
    code = textwrap.dedent(
        """
        import os, sys
        try:
            entries = os.listdir(sys.argv[1])
        except OSError as error:
            print("BLOCKED", type(error).__name__)
        else:
            print("LEAK", entries)
        """
    )
    result = sandbox.run(code, args=[path])
    assert result.stdout.startswith("BLOCKED "), result.stdout


def test_walk_and_scandir_find_nothing(sandbox: Sandbox) -> None:
    code = textwrap.dedent(
        """
        import glob, os
        print(list(os.walk("/")), glob.glob("/*"), glob.glob("/**/passwd", recursive=True))
        print(os.path.exists("/etc/passwd"), os.path.isdir("/tmp"), os.path.exists("/"))
        """
    )
    result = sandbox.run(code)
    assert result.exit_code == ExitCode.OK, result.stderr
    assert result.stdout == "[] [] []\nFalse False False\n"


def test_no_file_descriptors_beyond_stdio(sandbox: Sandbox) -> None:
    """No preopened directory (fd 3+) exists to escape through with `openat` tricks."""
    code = textwrap.dedent(
        """
        import os
        open_fds = []
        for fd in range(3, 256):
            try:
                os.fstat(fd)
            except OSError:
                continue
            open_fds.append(fd)
        print(open_fds)
        """
    )
    result = sandbox.run(code)
    assert result.stdout == "[]\n", result.stderr


def test_write_outside_does_not_reach_the_host(sandbox: Sandbox, tmp_path: Path) -> None:
    target = tmp_path / "created-by-guest.txt"
    sub = tmp_path / "made-by-guest"
    code = textwrap.dedent(
        """
        import os, sys
        target, sub = sys.argv[1], sys.argv[2]
        attempts = [
            lambda: open(target, "w").write("pwned"),
            lambda: open(target, "x"),
            lambda: os.open(target, os.O_CREAT | os.O_WRONLY),
            lambda: os.mkdir(sub),
            lambda: os.makedirs(sub + "/a/b"),
            lambda: os.symlink("/etc/passwd", target),
        ]
        for attempt in attempts:
            try:
                attempt()
            except OSError as error:
                print("BLOCKED", type(error).__name__)
            else:
                print("LEAK")
        """
    )
    result = sandbox.run(code, args=[str(target), str(sub)])
    assert result.exit_code == ExitCode.OK, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 6
    assert all(line.startswith("BLOCKED ") for line in lines), lines
    assert list(tmp_path.iterdir()) == []


def test_cwd_is_an_empty_root(sandbox: Sandbox) -> None:
    code = "import os\nprint(os.getcwd())\ntry:\n    os.chdir('/etc')\nexcept OSError:\n    print('no')"
    result = sandbox.run(code)
    assert result.stdout == "/\nno\n"
