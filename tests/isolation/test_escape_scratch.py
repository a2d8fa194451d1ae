"""Attacks on the scratch space (/tmp, /output) and on the names of returned files (issue 16).

Each attack beside a positive control: the same operation, within the limit, works.
"""

import json
import os
import textwrap
from pathlib import Path

import pytest

from agentbox import ExitCode, Sandbox
from tests.helpers import HANG_GUARD_SECONDS, run_cli


def _errno_of(sandbox: Sandbox, code: str) -> str:
    result = sandbox.run(
        "import errno, os\ntry:\n"
        + textwrap.indent(textwrap.dedent(code), "    ")
        + "\nexcept OSError as error:\n    print(errno.errorcode.get(error.errno, error.errno))\n"
        "else:\n    print('ok')\n"
    )
    assert result.exit_code == ExitCode.OK, result.stderr
    return result.stdout.strip()


def test_writing_past_the_scratch_limit_is_enospc_in_the_script() -> None:
    small = Sandbox(scratch="1M", timeout=60)
    write = "with open('/tmp/f', 'wb') as f:\n    for _ in range(40): f.write(b'x' * 65536)\n"
    assert _errno_of(small, write) == "ENOSPC"
    assert _errno_of(Sandbox(scratch="4M", timeout=60), write) == "ok"  # positive control
    # /tmp and /output share the limit; the script goes on and can free room.
    result = small.run(
        "import os\nopen('/output/a', 'wb').write(b'a' * 600_000)\n"
        "try:\n    open('/tmp/b', 'wb').write(b'b' * 600_000)\nexcept OSError as e:\n"
        "    print(e.strerror)\nos.remove('/output/a')\n"
        "open('/tmp/b', 'wb').write(b'b' * 600_000)\nprint('freed')\n"
    )
    assert result.stdout == "No space left on device\nfreed\n", result.stderr


def test_seek_past_the_end_and_truncate_count_against_the_limit() -> None:
    small = Sandbox(scratch="1M", timeout=60)
    assert (
        _errno_of(small, "f = open('/tmp/s', 'wb'); f.seek(10**9); f.write(b'x'); f.flush()")
        == "ENOSPC"
    )
    assert _errno_of(small, "os.truncate(open('/tmp/t', 'wb').name, 10**9)") == "ENOSPC"
    assert _errno_of(small, "open('/tmp/t', 'wb').truncate(500_000)") == "ok"


def test_thousands_of_empty_files_or_folders_hit_the_limit() -> None:
    small = Sandbox(scratch="1M", timeout=120)
    result = small.run(
        "import errno, os\nn = 0\ntry:\n    while True:\n"
        "        open(f'/tmp/{n}', 'w').close(); n += 1\n"
        "except OSError as e:\n    print(errno.errorcode[e.errno], 1000 < n < 5000)\n"
    )
    assert result.stdout == "ENOSPC True\n", result.stderr
    folders = small.run(
        "import errno, os\nn = 0\ntry:\n    while True:\n"
        "        os.mkdir(f'/tmp/d{n}'); n += 1\n"
        "except OSError as e:\n    print(errno.errorcode[e.errno], 1000 < n < 5000)\n"
    )
    assert folders.stdout == "ENOSPC True\n", folders.stderr


def test_a_deep_tree_and_long_names_are_refused_cleanly(sandbox: Sandbox) -> None:
    deep = Sandbox(timeout=HANG_GUARD_SECONDS).run(
        "import errno, os\npath = '/tmp'\ntry:\n    while True:\n"
        "        path += '/d' * 1; os.mkdir(path)\n"
        "except OSError as e:\n    print(errno.errorcode[e.errno], len(path))\n"
    )
    assert deep.exit_code == ExitCode.OK, deep.stderr
    assert deep.stdout == "ENAMETOOLONG 4098\n"  # the first path past 4096 bytes
    assert _errno_of(sandbox, "open('/tmp/' + 'n' * 256, 'w')") == "ENAMETOOLONG"
    assert _errno_of(sandbox, "open('/tmp/' + 'n' * 255, 'w')") == "ok"  # positive control


def test_links_out_of_the_scratch_space_are_refused(sandbox: Sandbox, tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("host secret")
    mounted = Sandbox(mounts=[f"{tmp_path}:/data:rw"], timeout=20)
    for attempt in (
        "os.symlink('/data/secret.txt', '/tmp/link')",
        "os.symlink('/etc/passwd', '/output/passwd')",
        "os.link('/data/secret.txt', '/tmp/hard')",
        "os.symlink('/tmp/x', '/data/link-into-tmp')",
    ):
        assert _errno_of(mounted, attempt) == "EPERM", attempt
    # A rename between the scratch space and a mount never moves anything across.
    assert _errno_of(mounted, "open('/tmp/x', 'w').write('x'); os.rename('/tmp/x', '/data/x')") == (
        "EXDEV"
    )
    assert _errno_of(mounted, "os.rename('/data/secret.txt', '/output/secret.txt')") == "EXDEV"
    assert sorted(os.listdir(tmp_path)) == ["secret.txt"]
    # Positive control: copying through Python works (the script may read what is mounted).
    result = mounted.run("import shutil\nshutil.copy('/data/secret.txt', '/output/s.txt')")
    assert [(file.name, file.data) for file in result.files] == [("s.txt", b"host secret")]
    # `..` never leaves /tmp for the host's file system.
    assert _errno_of(sandbox, "open('/tmp/../etc/passwd')") == "ENOENT"


def test_scratch_larger_than_memory_ends_in_memory_error_not_host_growth() -> None:
    greedy = Sandbox(scratch="2G", memory="128M", timeout=60)
    result = greedy.run(
        "with open('/tmp/f', 'wb') as f:\n    while True: f.write(b'x' * (1 << 20))\n"
    )
    assert result.limit == "memory" or "MemoryError" in result.stderr, result.stderr
    assert greedy.run("print(1)").stdout == "1\n"  # the sandbox is usable after it


HOSTILE_NAMES = [
    "../escape.txt",
    "../../escape2.txt",
    "/abs.txt",
    "sub/../../escape3.txt",
    "CON",
    "nul.txt",
    "com1",
    "LPT9.log",
    "a\\\\..\\\\b.txt",
    "c:evil.txt",
    "trailing. ",
    "x" * 300,
    "",
    "ok/" * 40 + "deep.txt",
]


def test_hostile_output_names_never_leave_the_output_dir(tmp_path: Path) -> None:
    """The raw host call carries any name the script picks: none lands outside DIR."""
    out = tmp_path / "out"
    code = (
        "from wit_world.imports.host import output_file\n"
        f"for name in {HOSTILE_NAMES!r} + ['fine/ok.txt']:\n"
        "    if output_file(name, '', True):\n"
        "        output_file(name, 'data', False)\n"
    )
    result = run_cli("run", "--json", "--output-dir", str(out), "-", stdin=code.encode())
    assert result.returncode == 0, result.stderr
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == ["out/fine/ok.txt"]  # positive control: a safe name is written
    assert result.stderr.count(b"not a safe file name") >= len(HOSTILE_NAMES) - 2


def test_a_symlink_in_the_output_dir_is_not_followed(tmp_path: Path) -> None:
    out, outside = tmp_path / "out", tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    (out / "sub").symlink_to(outside)
    (out / "top.txt").symlink_to(outside / "top.txt")
    code = (
        "import os\nos.mkdir('/output/sub')\nopen('/output/sub/x.txt', 'w').write('x')\n"
        "open('/output/top.txt', 'w').write('t')\n"
    )
    result = run_cli("run", "--overwrite", "--output-dir", str(out), "-", stdin=code.encode())
    assert result.returncode == 0
    assert list(outside.iterdir()) == []
    assert b"symbolic link" in result.stderr


def test_thousands_of_output_files_are_capped_and_reported(tmp_path: Path) -> None:
    code = "for n in range(3000):\n    open(f'/output/{n:04}.txt', 'w').write(str(n))\n"
    result = run_cli("run", "--json", "--output-dir", str(tmp_path), "-", stdin=code.encode())
    payload = json.loads(result.stdout)
    assert len(payload["files"]) == 1000 and payload["files_dropped"] == 2000
    assert "2000 files in /output were not returned" in payload["message"]
    assert len(list(tmp_path.iterdir())) == 1000


@pytest.mark.parametrize("size", ["0", "100"])
def test_tiny_scratch_limits_refuse_every_file(size: str) -> None:
    assert _errno_of(Sandbox(scratch=size), "open('/tmp/a', 'w')") == "ENOSPC"


def test_a_script_that_lifts_its_own_scratch_count_still_hits_memory() -> None:
    """The count lives in the guest, so a script can tamper with it; what protects the host is
    that every byte is guest memory, which `--memory` bounds from outside."""
    box = Sandbox(scratch="1M", memory="128M", timeout=60)
    code = (
        "from agentbox_guest import scratch\nscratch.FS.limit = 1 << 40\n"
        "with open('/tmp/f', 'wb') as f:\n    while True: f.write(b'x' * (1 << 20))\n"
    )
    result = box.run(code)
    assert result.limit == "memory" or "MemoryError" in result.stderr, result.stderr
    assert box.run("print(1)").stdout == "1\n"
