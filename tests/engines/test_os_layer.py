"""The fallback child's OS layer on its own: attacks run as raw Python past the policy.

Issue 12: with the Python policy broken, the old layer (descriptors filled with /dev/null) fell
to `os.close`; the script read host files and /proc/<parent>/environ, connected to 127.0.0.1
and deleted a host file. Each attack here runs twice: raw in the real child after `harden`
and the seccomp filter (`raw_worker`), where it must fail, and as a plain `python` process
(the positive control), where the very same code must succeed.
"""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentbox.engines import _child
from agentbox.engines.base import RunSettings, ScriptRequest
from agentbox.limits import Limits
from agentbox.result import RunResult
from agentbox.skills import SkillSet

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the seccomp layer is Linux-only"
)
SETTINGS = RunSettings(Limits(timeout=60, memory=256 << 20))
# Closes every descriptor it may (what broke the old layer), then reports the attack's outcome.
PRELUDE = """
import errno, os
closed = 0
for fd in range(3, 1024):
    if fd not in KEEP:
        try:
            os.close(fd)
            closed += 1
        except OSError:
            pass
print('closed', closed)
def attempt(label, action):
    try:
        print(label, 'done', action())
    except OSError as error:
        print(label, 'refused', errno.errorcode.get(error.errno, error.errno))
"""


@pytest.fixture(autouse=True)
def raw_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(_child.WORKERS, "raw", "raw_worker")


def in_child(attack: str) -> RunResult:
    request = ScriptRequest((PRELUDE + attack).encode())
    return _child.run_in_child("raw", request, SETTINGS, SkillSet([]).bind_run())


def as_plain_python(attack: str) -> str:
    """The positive control: the same attack with no OS layer."""
    script = "KEEP = set()\n" + PRELUDE + attack
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    return done.stdout + done.stderr


def test_host_files_cannot_be_read_even_with_the_descriptors_closed(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("host-secret-4711")
    attack = f"attempt('read', lambda: open({str(secret)!r}).read())\n"
    assert "read done host-secret-4711" in as_plain_python(attack)
    result = in_child(attack)
    assert "read refused EPERM" in result.stdout, result.stdout + result.stderr
    assert "closed 0" not in result.stdout  # the old layer's descriptors really were closed
    assert "host-secret" not in result.stdout + result.stderr


def test_the_parents_environment_cannot_be_read_through_proc() -> None:
    environ = f"/proc/{os.getpid()}/environ"
    attack = f"attempt('environ', lambda: len(open({environ!r}, 'rb').read()) > 0)\n"
    assert "environ done True" in as_plain_python(attack)
    result = in_child(attack)
    assert "environ refused EPERM" in result.stdout, result.stdout + result.stderr


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.setblocking(False)
        yield server


def _accepted(server: socket.socket) -> bytes | None:
    try:
        connection, _ = server.accept()
    except BlockingIOError:
        return None
    with connection:
        connection.settimeout(60)
        return connection.recv(100)


def test_no_connection_to_a_local_listener(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    attack = (
        "import socket\n"
        f"attempt('connect', lambda: socket.create_connection(('127.0.0.1', {port})).send(b'hi'))\n"
        "attempt('udp', lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))\n"
        "attempt('unix', lambda: socket.socket(socket.AF_UNIX))\n"
    )
    assert "connect done 2" in as_plain_python(attack)
    listener.setblocking(True)
    listener.settimeout(60)
    assert _accepted(listener) == b"hi"  # positive control: the listener does receive
    listener.setblocking(False)
    result = in_child(attack)
    for label in ("connect", "udp", "unix"):
        assert f"{label} refused EPERM" in result.stdout, result.stdout + result.stderr
    assert _accepted(listener) is None  # the run is over: a connection would be queued


def test_host_files_cannot_be_deleted_or_changed(tmp_path: Path) -> None:
    attack_template = (
        "attempt('unlink', lambda: os.unlink({path!r}))\n"
        "attempt('rename', lambda: os.rename({path!r}, {path!r} + '.moved'))\n"
        "attempt('chmod', lambda: os.chmod({path!r}, 0o777))\n"
        "attempt('mkdir', lambda: os.mkdir({path!r} + '.dir'))\n"
    )
    (tmp_path / "control").mkdir()
    (tmp_path / "host").mkdir()
    control = tmp_path / "control" / "file.txt"
    control.write_text("x")
    output = as_plain_python(attack_template.format(path=str(control)))
    assert "unlink done None" in output and not control.exists()
    target = tmp_path / "host" / "file.txt"
    target.write_text("untouched")
    result = in_child(attack_template.format(path=str(target)))
    for label in ("unlink", "rename", "chmod", "mkdir"):
        assert f"{label} refused EPERM" in result.stdout, result.stdout + result.stderr
    assert target.read_text() == "untouched"
    assert [p.name for p in target.parent.iterdir()] == ["file.txt"]


def test_no_processes(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    attack = (
        "import subprocess\n"
        f"attempt('spawn', lambda: subprocess.run(['touch', {str(marker)!r}]).returncode)\n"
        "attempt('fork', lambda: os.fork() or os._exit(0))\n"
        "attempt('exec', lambda: os.execv('/bin/true', ['true']))\n"
    )
    output = as_plain_python(attack)
    assert "spawn done 0" in output and marker.exists()
    marker.unlink()
    result = in_child(attack)
    for label in ("spawn", "fork", "exec"):
        assert f"{label} refused EPERM" in result.stdout, result.stdout + result.stderr
    assert not marker.exists()


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


def _running_child(code: str) -> "_child._ChildRun":
    """A raw run that has printed its first line and is still running."""
    run = _child._ChildRun("raw", ScriptRequest(code.encode()), SETTINGS)
    frame = run._frames.get(timeout=120)
    assert frame is not None and frame[0] == b"O", frame
    run.first_line = frame[1].decode()  # type: ignore[attr-defined]
    return run


def test_no_new_privileges_and_the_filter_is_in_force() -> None:
    mine = _status(os.getpid())
    assert mine["NoNewPrivs"].strip() == "0"  # positive control: this process is unconfined
    run = _running_child("print('ready', flush=True)\nwhile True:\n    pass\n")
    try:
        status = _status(run.process.pid)
    finally:
        run.close()
    assert status["NoNewPrivs"].strip() == "1"
    assert status["Seccomp"].strip() == "2"  # SECCOMP_MODE_FILTER


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def test_the_whole_process_group_dies_with_the_run() -> None:
    run = _running_child("print(GRANDCHILD, flush=True)\nwhile True:\n    pass\n")
    grandchild = int(run.first_line)  # type: ignore[attr-defined]
    try:
        assert not _gone(grandchild)  # positive control: it runs alongside the script
        assert os.getpgid(grandchild) == run.process.pid
    finally:
        run.close()
    deadline = time.monotonic() + 120  # a hang guard only: SIGKILL lands at once
    while not _gone(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(grandchild)


def test_an_ordinary_script_still_runs_under_the_filter() -> None:
    code = (
        "import json, hashlib, random, time, threading\n"
        "t = threading.Thread(target=lambda: None)\nt.start()\nt.join()\n"
        "print(json.dumps({'h': hashlib.sha256(b'x').hexdigest()[:8], 'r': random.random() < 1}))\n"
        "time.sleep(0.01)\n"
    )
    result = _child.run_in_child(
        "raw", ScriptRequest(code.encode()), SETTINGS, SkillSet([]).bind_run()
    )
    assert (result.stdout, result.exit_code) == ('{"h": "2d711642", "r": true}\n', 0), result.stderr


# Runs one restricted script from a separate parent whose sys.path is given, and prints the
# warnings it emitted and the script's output.
_DRIVER = """
import json, sys, warnings
sys.path[:0] = json.loads(sys.argv[1])
from agentbox.engines._child import run_in_child
from agentbox.engines.base import RunSettings, ScriptRequest
from agentbox.limits import Limits
from agentbox.skills import SkillSet
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    result = run_in_child("restricted", ScriptRequest(b"print(6 * 7)"),
                          RunSettings(Limits(timeout=60)), SkillSet([]).bind_run())
print(json.dumps([result.stdout, [f"{w.category.__name__}: {w.message}" for w in caught]]))
"""


def _drive(paths: list[str]) -> tuple[str, list[str]]:
    import json

    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _DRIVER, json.dumps(paths)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    stdout, warned = json.loads(done.stdout)
    return stdout, warned


def test_without_libseccomp_the_run_goes_on_with_one_clear_warning(tmp_path: Path) -> None:
    """An installation without pyseccomp: every other package is there, that one is not."""
    import RestrictedPython

    site = Path(RestrictedPython.__file__).parents[1]
    for entry in site.iterdir():
        if not entry.name.startswith("pyseccomp"):
            (tmp_path / entry.name).symlink_to(entry)
    repo = str(Path(__file__).resolve().parents[2])
    assert _drive([repo, str(site)]) == ("42\n", [])  # positive control: layer on, no warning
    stdout, warned = _drive([repo, str(tmp_path)])
    assert stdout == "42\n"
    assert len(warned) == 1
    assert warned[0].startswith(
        "OSLayerWarning: warning: the fallback engine's OS layer is off: libseccomp is not usable"
    )
    assert warned[0].endswith(
        "only the Python-level policy and process limits apply (see docs/engines.md)"
    )
