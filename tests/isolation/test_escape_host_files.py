"""Host files: without a mount the guest sees no host file system at all (no WASI preopens)."""

import os
import shutil
import tempfile
import textwrap
from collections.abc import Iterator
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
def test_host_file_cannot_be_read(image_sandbox: Sandbox, path: str) -> None:
    assert Path("/etc/passwd").exists()  # the files exist on the host, just not in the guest
    result = image_sandbox.run(PROBE, args=[path])
    assert result.exit_code == ExitCode.OK, result.stderr
    assert result.stdout.startswith("BLOCKED "), result.stdout


@pytest.mark.parametrize("path", ["/", "/..", "/../..", ".", "..", "/etc", "/proc", str(ROOT)])
def test_directories_cannot_be_listed(image_sandbox: Sandbox, path: str) -> None:
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
    result = image_sandbox.run(code, args=[path])
    assert result.stdout.startswith("BLOCKED "), result.stdout


def test_walk_and_scandir_find_nothing(sandbox: Sandbox) -> None:
    code = textwrap.dedent(
        """
        import glob, os
        print(list(os.walk("/")), glob.glob("/*"), glob.glob("/**/passwd", recursive=True))
        print(os.path.exists("/etc/passwd"), os.path.exists("/"))
        print(os.listdir("/tmp"), os.listdir("/output"))
        """
    )
    assert os.listdir("/tmp"), "positive control: the host's /tmp is not empty"
    result = sandbox.run(code)
    assert result.exit_code == ExitCode.OK, result.stderr
    # /tmp and /output are the run's own empty in-memory folders (issue 16), never the host's.
    assert result.stdout == "[] [] []\nFalse False\n[] []\n"


def test_no_file_descriptors_beyond_stdio(image_sandbox: Sandbox, image: str) -> None:
    """No preopened directory (fd 3+) exists to escape through with `openat` tricks; the data
    image has exactly its own three, read-only: the stdlib zip's folder, matplotlib's data and
    the empty folder in the build's /tmp slot (docs/images.md)."""
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
    result = image_sandbox.run(code)
    assert result.stdout == ("[]\n" if image == "default" else "[3, 4, 5]\n"), result.stderr
    if image == "data":
        writes = image_sandbox.run(
            "import os\nfor fd in (3, 4, 5):\n    try:\n"
            "        os.close(os.open('planted', os.O_CREAT | os.O_WRONLY, dir_fd=fd))\n"
            "        print('WROTE', fd)\n    except (OSError, NotImplementedError):\n"
            "        print('refused', fd)\n"
        )
        assert writes.stdout == "refused 3\nrefused 4\nrefused 5\n", writes.stderr


@pytest.fixture
def host_folder_outside_tmp() -> Iterator[Path]:
    """A host folder whose path is not under /tmp (the guest's /tmp is its own scratch)."""
    folder = Path(tempfile.mkdtemp(prefix="agentbox-test-", dir=Path.home()))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_write_outside_does_not_reach_the_host(
    sandbox: Sandbox, host_folder_outside_tmp: Path
) -> None:
    tmp_path = host_folder_outside_tmp
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


def test_writes_to_a_host_path_under_tmp_stay_in_the_guests_scratch(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """The guest's /tmp is its own: writing the host's /tmp/... path creates nothing there."""
    code = (
        "import os, sys\n"
        "os.makedirs(sys.argv[1] + '/a/b')\n"
        "open(sys.argv[1] + '/x.txt', 'w').write('pwned')\n"
        "print(sorted(os.listdir(sys.argv[1])))\n"
    )
    result = sandbox.run(code, args=[str(tmp_path)])
    assert result.exit_code == ExitCode.OK, result.stderr
    assert result.stdout == "['a', 'x.txt']\n"  # positive control: the writes worked in the guest
    assert list(tmp_path.iterdir()) == []


def test_cwd_is_an_empty_root(sandbox: Sandbox) -> None:
    code = "import os\nprint(os.getcwd())\ntry:\n    os.chdir('/etc')\nexcept OSError:\n    print('no')"
    result = sandbox.run(code)
    assert result.stdout == "/\nno\n"
