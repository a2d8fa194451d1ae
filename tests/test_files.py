"""Scratch space and returned files (issue 16), through the API and the real CLI."""

import base64
import json
import os
from pathlib import Path

import pytest

from agentbox import ExitCode, Sandbox
from agentbox.errors import UsageError
from tests.files_script import SCRIPT, png_bytes
from tests.helpers import run_cli


def test_a_script_uses_tmp_and_returns_a_png_and_a_text(sandbox: Sandbox) -> None:
    result = sandbox.run(SCRIPT)
    assert result.exit_code == ExitCode.OK, result.stderr
    assert result.stdout == "8\n"
    files = {file.name: file for file in result.files}
    assert sorted(files) == ["red.png", "summary.txt"]
    assert files["red.png"].data == png_bytes()
    assert files["red.png"].media_type == "image/png"
    assert files["summary.txt"].data == b"total 8\n"
    assert files["summary.txt"].media_type == "text/plain"
    assert result.files_dropped == 0 and result.message is None


def test_tmp_and_output_start_empty_in_every_run(sandbox: Sandbox) -> None:
    assert sandbox.run(SCRIPT).files
    listing = sandbox.run("import os\nprint(os.listdir('/tmp'), os.listdir('/output'))")
    assert listing.stdout == "[] []\n"
    assert listing.files == []


def test_tempfile_and_pathlib_work_in_tmp(sandbox: Sandbox) -> None:
    code = (
        "import os, pathlib, shutil, tempfile\n"
        "with tempfile.TemporaryFile() as t:\n"
        "    t.write(b'abc'); t.seek(0); print(t.read())\n"
        "with tempfile.NamedTemporaryFile('w+', suffix='.txt') as t:\n"
        "    t.write('x'); t.flush(); print(os.path.getsize(t.name))\n"
        "fd, name = tempfile.mkstemp(); os.write(fd, b'12'); os.close(fd)\n"
        "print(open(name, 'rb').read()); os.unlink(name)\n"
        "with tempfile.TemporaryDirectory() as d:\n"
        "    p = pathlib.Path(d, 'a', 'b.txt'); p.parent.mkdir(); p.write_text('hi')\n"
        "    print(p.read_text(), [q.name for q in pathlib.Path(d).rglob('*')])\n"
        "print(os.listdir('/tmp'), tempfile.gettempdir())\n"
    )
    result = sandbox.run(code)
    assert result.exit_code == ExitCode.OK, result.stderr
    assert result.stdout == "b'abc'\n1\nb'12'\nhi ['a', 'b.txt']\n[] /tmp\n"


def test_a_session_keeps_tmp_and_output_and_returns_new_or_changed_files(
    sandbox: Sandbox,
) -> None:
    with sandbox.session() as session:
        first = session.run(
            "open('/tmp/state', 'w').write('kept')\nopen('/output/o.txt', 'w').write('1')"
        )
        second = session.run("print(open('/tmp/state').read(), open('/output/o.txt').read())")
        third = session.run(
            "open('/output/o.txt', 'w').write('2')\nopen('/output/p.txt', 'w').write('p')"
        )
        renamed = session.run("import os\nos.rename('/output/p.txt', '/output/q.txt')")
        cleared = session.run("import os\nos.unlink('/output/o.txt')\nprint(os.listdir('/output'))")
    assert [(file.name, file.data) for file in first.files] == [("o.txt", b"1")]
    assert second.stdout == "kept 1\n" and second.files == []
    assert [(file.name, file.data) for file in third.files] == [("o.txt", b"2"), ("p.txt", b"p")]
    assert [file.name for file in renamed.files] == ["q.txt"]
    assert cleared.stdout == "['q.txt']\n" and cleared.files == []


def test_a_run_gets_its_own_input_files_beside_the_sandboxs() -> None:
    sandbox = Sandbox(files={"shared.txt": b"shared"})
    code = "import os\nprint(sorted(os.listdir('/input')), open('/input/own.txt').read())"
    result = sandbox.run(code, files={"own.txt": b"own"})
    assert result.exit_code == ExitCode.OK, result.stderr
    assert result.stdout == "['own.txt', 'shared.txt'] own\n"
    override = sandbox.run("print(open('/input/shared.txt').read())", files={"shared.txt": b"x"})
    assert override.stdout == "x\n"
    assert sandbox.run("import os; print(os.listdir('/input'))").stdout == "['shared.txt']\n"


def test_a_session_call_sees_its_own_input_files(sandbox: Sandbox) -> None:
    with sandbox.session() as session:
        first = session.run("print(open('/input/a.txt').read())", files={"a.txt": b"A"})
        second = session.run("import os; print(os.listdir('/input'))", files={"b.txt": b"B"})
    assert first.stdout == "A\n"
    assert second.stdout == "['b.txt']\n"


def test_run_files_that_clash_or_overflow_are_refused_before_the_run() -> None:
    sandbox = Sandbox(memory="64M", files={"dir/a.txt": b"a"})
    with pytest.raises(UsageError, match="clashes"):
        sandbox.run("print(1)", files={"dir": b"x"})
    with pytest.raises(UsageError, match="half of --memory"):
        sandbox.run("print(1)", files={"big.bin": bytes(33 * 1024 * 1024)})
    assert sandbox.run("print(1)").stdout == "1\n"


@pytest.mark.parametrize("engine", ["restricted", "asteval"])
def test_fallback_engines_refuse_input_files(engine: str) -> None:
    with pytest.raises(UsageError, match="has no files"):
        Sandbox(engine=engine, files={"a.txt": b"a"}).run("print(1)")
    with pytest.raises(UsageError, match="has no files"):
        Sandbox(engine=engine).run("print(1)", files={"a.txt": b"a"})


def test_output_files_past_the_cap_are_dropped_and_reported() -> None:
    sandbox = Sandbox(max_output_files="10K")
    code = (
        "open('/output/small.txt', 'w').write('s' * 100)\n"
        "open('/output/zbig.bin', 'wb').write(b'b' * 20000)\n"
    )
    result = sandbox.run(code)
    assert result.exit_code == ExitCode.OK
    assert [file.name for file in result.files] == ["small.txt"]
    assert result.files_dropped == 1
    assert result.message is not None and "'zbig.bin'" in result.message


def test_cli_output_dir_writes_the_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_cli("run", "--output-dir", str(out), "-", stdin=SCRIPT.encode())
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"8\n"
    assert (out / "red.png").read_bytes() == png_bytes()
    assert (out / "summary.txt").read_bytes() == b"total 8\n"


def test_cli_never_overwrites_unless_asked(tmp_path: Path) -> None:
    (tmp_path / "summary.txt").write_text("mine")
    result = run_cli("run", "--output-dir", str(tmp_path), "-", stdin=SCRIPT.encode())
    assert result.returncode == 0
    assert (tmp_path / "summary.txt").read_text() == "mine"
    assert b"not overwriting" in result.stderr and b"--overwrite" in result.stderr
    again = run_cli("run", "--output-dir", str(tmp_path), "--overwrite", "-", stdin=SCRIPT.encode())
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "summary.txt").read_text() == "total 8\n"


def test_cli_json_lists_files_and_includes_them_on_request() -> None:
    listed = json.loads(run_cli("run", "--json", "-", stdin=SCRIPT.encode()).stdout)
    assert listed["files"] == [
        {"name": "red.png", "size": len(png_bytes()), "media_type": "image/png"},
        {"name": "summary.txt", "size": 8, "media_type": "text/plain"},
    ]
    full = json.loads(
        run_cli("run", "--json", "--json-file-contents", "-", stdin=SCRIPT.encode()).stdout
    )
    assert base64.b64decode(full["files"][0]["base64"]) == png_bytes()


def test_cli_scratch_limit_from_flag_and_env() -> None:
    code = (
        "import errno\n"
        "try:\n"
        "    open('/tmp/f', 'wb').write(b'x' * 3_000_000)\n"
        "except OSError as error:\n"
        "    print(errno.errorcode[error.errno])\n"
        "else:\n"
        "    print('fits')\n"
    )
    assert run_cli("run", "--scratch", "2M", "-", stdin=code.encode()).stdout == b"ENOSPC\n"
    from_env = run_cli("run", "-", stdin=code.encode(), env={"AGENTBOX_SCRATCH": "2M"})
    assert from_env.stdout == b"ENOSPC\n"
    assert run_cli("run", "--scratch", "4M", "-", stdin=code.encode()).stdout == b"fits\n"


def test_config_file_sets_the_scratch_limit(tmp_path: Path) -> None:
    config = tmp_path / "agentbox.toml"
    config.write_text('[limits]\nscratch = "1M"\nmax_output_files = "1K"\n')
    os.chmod(config, 0o600)
    code = "open('/output/a.bin', 'wb').write(b'a' * 2000)\nopen('/tmp/b', 'wb').write(b'b' * 2_000_000)"
    result = run_cli("run", "--config", str(config), "--json", "-", stdin=code.encode())
    payload = json.loads(result.stdout)
    assert "No space left on device" in payload["stderr"]
    assert payload["files"] == [] and payload["files_dropped"] == 1


def test_input_files_are_readable_and_read_only(tmp_path: Path) -> None:
    host_file = tmp_path / "data.csv"
    host_file.write_text("a,b\n1,2\n")
    sandbox = Sandbox(files={"data.csv": host_file, "/input/raw/blob.bin": b"\x00\xff"})
    code = (
        "import errno, os\n"
        "print(open('/input/data.csv').read().splitlines(), open('/input/raw/blob.bin', 'rb').read())\n"
        "print(sorted(os.listdir('/input')))\n"
        "for attempt in (lambda: open('/input/data.csv', 'w'), lambda: open('/input/data.csv', 'a'),\n"
        "                lambda: os.remove('/input/data.csv'), lambda: os.mkdir('/input/x'),\n"
        "                lambda: os.rename('/input/data.csv', '/input/y'), lambda: open('/input/new', 'x'),\n"
        "                lambda: os.rename('/input/data.csv', '/tmp/y'), lambda: os.truncate('/input/data.csv', 0)):\n"
        "    try:\n        attempt()\n        print('WROTE')\n"
        "    except OSError as error:\n        print(errno.errorcode[error.errno])\n"
        "print(open('/input/data.csv').read() == 'a,b\\n1,2\\n')\n"
    )
    result = sandbox.run(code)
    assert result.exit_code == ExitCode.OK, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "['a,b', '1,2'] b'\\x00\\xff'"
    assert lines[1] == "['data.csv', 'raw']"
    assert lines[2:10] == ["EROFS"] * 8
    assert lines[10] == "True"
    assert host_file.read_text() == "a,b\n1,2\n"
    # Another run sees them afresh, whatever the last one tried.
    assert sandbox.run("print(open('/input/data.csv').read())").stdout == "a,b\n1,2\n\n"


def test_cli_file_option_copies_files_without_mounting(tmp_path: Path) -> None:
    (tmp_path / "secret-neighbour.txt").write_text("not given")
    given = tmp_path / "given.txt"
    given.write_text("hello")
    code = (
        "import os\nprint(open('/input/given.txt').read(), open('/input/sub/copy.txt').read())\n"
        "print(sorted(os.listdir('/input')))\n"
    )
    result = run_cli(
        "run",
        "--file",
        str(given),
        "--file",
        f"{given}:/input/sub/copy.txt",
        "-",
        stdin=code.encode(),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"hello hello\n['given.txt', 'sub']\n"


def test_cli_file_option_refuses_bad_paths_in_one_line(tmp_path: Path) -> None:
    given = tmp_path / "given.txt"
    given.write_text("x")
    for option in (
        f"{given}:/etc/passwd",
        f"{given}:/input/../tmp/x",
        str(tmp_path),
        "missing.txt",
    ):
        result = run_cli("run", "--file", option, "-", stdin=b"print(1)")
        assert result.returncode == ExitCode.USAGE, (option, result.stderr)
        assert result.stderr.count(b"\n") == 1 and b"Traceback" not in result.stderr
