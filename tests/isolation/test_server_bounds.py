"""Host bounds of the long-lived servers, attacked through the real processes.

`agentbox mcp` is driven by the MCP SDK's own client (raw pipes for malformed input) and
`agentbox serve` by urllib (raw sockets for malformed input). Each attack has a positive
control: a marker proving the attack step ran, and a proper call that still succeeds.
"""

import contextlib
import json
import os
import socket
import subprocess
import sys
import tty
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from anyio.from_thread import start_blocking_portal
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from agentbox.limits import (
    MAX_ABANDONED_MEMORY_BYTES,
    MAX_ABANDONED_RUNS,
    MAX_ONE_SHOT_RUNS,
    MAX_REQUEST_BYTES,
    MIB,
)
from tests.helpers import returns, wait_until
from tests.isolation.test_limit_enforcement import RAW_TIME
from tests.mcp.test_http_server import Server, started_server
from tests.mcp.test_mcp_server import INITIALIZE, Client, server_command, text
from tests.mcp.test_mcp_stdio import AGENTBOX_MCP, run_python_call

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
BLOCKING_SKILL = str(FIXTURES / "blocking_skill.py")


@contextlib.contextmanager
def mcp_client(cwd: Path, *options: str) -> Iterator[Client]:
    """`agentbox mcp OPTIONS` as a real process, spoken to by the SDK's client."""
    command = server_command(*options)
    params = StdioServerParameters(
        command=command[0], args=command[1:], env=dict(os.environ), cwd=str(cwd)
    )
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(stdio_client(params)) as (read, write),
        portal.wrap_async_context_manager(ClientSession(read, write)) as session,
    ):
        portal.call(session.initialize)
        yield Client(portal, session)


class FifoBlocker:
    """Scripts that print a marker, then block inside a WASI host call (opening a named pipe on
    a read-only mount) until `release()`: skill calls end at the run's deadline, but wasmtime's
    own host calls cannot be interrupted, so these runs are abandoned by the watchdog."""

    MARKER = "reached the host call\n"

    def __init__(self, folder: Path) -> None:
        self.folder = folder / "fifo"
        self.folder.mkdir()
        self.pipe = self.folder / "pipe"
        os.mkfifo(self.pipe)

    def mount(self) -> tuple[str, str]:
        return ("--mount", f"{self.folder}:/block")

    def code(self) -> str:
        return f"print({self.MARKER[:-1]!r}, flush=True)\nopen('/block/pipe').read()"

    def release(self) -> None:
        """Open the pipe for writing once (every blocked reader's open returns), then close it
        (their reads see end of file)."""
        os.close(os.open(self.pipe, os.O_WRONLY | os.O_NONBLOCK))


class Blocker:
    """Scripts that print a marker, then block in the `block` skill until `release()`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.release_file = folder / f"release-{uuid.uuid4().hex}"

    def code(self, name: str) -> str:
        started = self.folder / f"started-{name}"
        return (
            f"print('reached the host call', flush=True)\n"
            f"call_skill('block', {{'release': {str(self.release_file)!r}, "
            f"'started': {str(started)!r}}})\n"
            "print('returned')"
        )

    def started(self, count: int) -> bool:
        return len(list(self.folder.glob("started-*"))) >= count

    def release(self) -> None:
        self.release_file.touch()


@pytest.mark.parametrize(
    ("memory", "held"),
    [
        # 64 MiB each: the count cap is reached first.
        ("64M", MAX_ABANDONED_RUNS),
        # The memory cap is reached first: the sum of the runs' memory limits.
        (f"{MAX_ABANDONED_MEMORY_BYTES // MIB // 2}M", 2),
    ],
)
def test_mcp_refuses_runs_while_abandoned_runs_hold_too_much_then_recovers(
    tmp_path: Path, memory: str, held: int
) -> None:
    """The attack: runs that block in a host call past their deadline, each keeping its Store
    (before: five calls of 400 MiB pinned 2 GiB, never released)."""
    blocker = FifoBlocker(tmp_path)
    with mcp_client(tmp_path, "--timeout", "1", "--memory", memory, *blocker.mount()) as client:
        for _ in range(held):
            result = client.run(blocker.code())
            assert result.structured_content["limit"] == "timeout", text(result)
            # The run really reached the host call and stayed there.
            assert result.structured_content["stdout"] == FifoBlocker.MARKER
        refused = [client.run("print('one more')"), client.run("print(1)", session="s")]
        for result in refused:
            assert result.is_error
            assert text(result).startswith(
                f"Error executing tool run_python: new runs are refused for now: {held} "
                "timed-out runs are still blocked in host calls"
            ), text(result)
        assert not client.call("list_sessions").is_error  # the server itself goes on serving
        blocker.release()
        # The workers return, their Stores are freed and the refusals end by themselves.
        assert wait_until(lambda: not client.run("print('back')").is_error)
        assert text(client.run("print('back')", session="s")) == "back"


def test_mcp_cap_also_counts_runs_blocked_in_the_sandboxs_own_host_calls(tmp_path: Path) -> None:
    """No skill needed: a raw WASI sleep also blocks in a host call past the deadline."""
    with mcp_client(tmp_path, "--timeout", "1", "--memory", "64M") as client:
        for _ in range(MAX_ABANDONED_RUNS):
            result = client.run("print('sleeping')\n" + RAW_TIME + "raw.sleep(3600)")
            assert result.structured_content["limit"] == "timeout", text(result)
            assert result.structured_content["stdout"] == "sleeping\n"
        refused = client.run("print('one more')")
        assert refused.is_error
        assert f"refused for now: {MAX_ABANDONED_RUNS} timed-out runs" in text(refused)


def test_serve_answers_503_while_abandoned_runs_hold_too_much_then_recovers(
    tmp_path: Path,
) -> None:
    blocker = FifoBlocker(tmp_path)
    options = ("--timeout", "1", "--memory", "64M", *blocker.mount())
    with started_server(tmp_path, *options) as server:
        for _ in range(MAX_ABANDONED_RUNS):
            result = server.run(blocker.code())
            assert (result["limit"], result["stdout"]) == ("timeout", FifoBlocker.MARKER)
        status, body = server.request("POST", "/run", {"code": "print(1)"})
        assert status == 503
        assert body["error"].startswith("new runs are refused for now"), body
        assert server.request("GET", "/sessions")[0] == 200
        blocker.release()
        assert wait_until(lambda: server.request("POST", "/run", {"code": "print(2)"})[0] == 200)


def test_mcp_caps_one_shot_runs_in_progress(tmp_path: Path) -> None:
    blocker = Blocker(tmp_path)
    with mcp_client(tmp_path, "--timeout", "600", "--skills", BLOCKING_SKILL) as client:
        pending = [
            client.portal.start_task_soon(
                client.session.call_tool, "run_python", {"code": blocker.code(str(index))}
            )
            for index in range(MAX_ONE_SHOT_RUNS)
        ]
        assert wait_until(lambda: blocker.started(MAX_ONE_SHOT_RUNS))
        refused = client.run("print('one too many')")
        assert refused.is_error
        assert text(refused) == (
            f"Error executing tool run_python: {MAX_ONE_SHOT_RUNS} runs without a session are "
            f"already in progress (at most {MAX_ONE_SHOT_RUNS}); try again when one finishes"
        )
        # Sessions have their own cap: a session run is still admitted.
        assert text(client.run("print('in a session')", session="s")) == "in a session"
        blocker.release()
        for call in pending:
            assert text(call.result(timeout=120)) == "reached the host call\nreturned"
        assert text(client.run("print('after')")) == "after"


def _peak_rss_bytes(pid: int) -> int:
    """The process's own peak RSS since exec (its rusage would also count the test's memory
    it was forked from); 0 where there is no /proc."""
    status = Path(f"/proc/{pid}/status")
    if not status.exists():
        return 0
    return int(status.read_text().split("VmHWM:")[1].split()[0]) * 1024


def _mcp_replies(
    cwd: Path, stdin_kind: str, *lines: bytes
) -> tuple[dict[Any, dict[str, Any]], int]:
    """What `agentbox mcp` answers to a handshake then `lines` (by id: the replies of
    concurrent requests come in any order), and its peak RSS in bytes. Its stdin is a pipe
    (as MCP clients start it, read on the event loop) or a raw terminal (read on threads)."""
    handshake = [INITIALIZE, {"jsonrpc": "2.0", "method": "notifications/initialized"}]
    payload = b"".join(
        line + b"\n" for line in [*(json.dumps(m).encode() for m in handshake), *lines]
    )
    controller, terminal = os.openpty() if stdin_kind == "terminal" else (-1, -1)
    if stdin_kind == "terminal":
        tty.setraw(terminal)  # no line length limit, no echo
    server = subprocess.Popen(
        AGENTBOX_MCP,
        stdin=subprocess.PIPE if stdin_kind == "pipe" else terminal,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=cwd,
    )
    wire = server.stdin if server.stdin is not None else os.fdopen(controller, "wb")
    assert server.stdout is not None
    try:
        wire.write(payload)
        wire.flush()
        replies = [json.loads(returns(server.stdout.readline)) for _ in range(len(lines) + 1)]
        peak = _peak_rss_bytes(server.pid)
    finally:
        wire.close()  # the end of input (a terminal hangs up)
        if stdin_kind == "terminal":
            os.close(terminal)
        server.stdout.close()
    assert server.wait(timeout=60) == 0
    by_id = {reply["id"]: reply for reply in replies}
    assert len(by_id) == len(replies), replies
    assert by_id.pop(1)["result"]["serverInfo"]["name"] == "agentbox"  # initialize
    return by_id, peak


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/PID/status")
@pytest.mark.parametrize("stdin_kind", ["pipe", "terminal"])
def test_mcp_refuses_an_oversized_request_line_without_holding_it(
    tmp_path: Path, stdin_kind: str
) -> None:
    """The attack: one run_python call 8 times the line cap. Before: read whole into memory
    (several copies) and run. The control: the same call, small, is answered and runs."""

    def call(padding: int) -> bytes:
        return json.dumps(run_python_call("print('ran')  # " + "x" * padding)).encode()

    after = json.dumps({**run_python_call("print('still serving')"), "id": 3}).encode()
    control, control_peak = _mcp_replies(tmp_path, stdin_kind, call(100), after)
    assert control[2]["result"]["structuredContent"]["stdout"] == "ran\n"
    assert control[3]["result"]["structuredContent"]["stdout"] == "still serving\n"
    replies, peak = _mcp_replies(tmp_path, stdin_kind, call(8 * MAX_REQUEST_BYTES), after)
    assert replies[None] == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {
            "code": -32600,
            "message": f"Invalid Request: the request line is longer than {MAX_REQUEST_BYTES} bytes",
        },
    }
    assert replies[3]["result"]["structuredContent"]["stdout"] == "still serving\n"
    # The whole line went through the server, but at most about the cap of it at once.
    assert peak - control_peak < 3 * MAX_REQUEST_BYTES


@pytest.mark.parametrize("stdin_kind", ["pipe", "terminal"])
@pytest.mark.parametrize("bad_id", [{"a": 1}, [1], None, 1.5, True])
def test_mcp_answers_a_request_whose_id_is_invalid(
    tmp_path: Path, stdin_kind: str, bad_id: object
) -> None:
    """Before: the SDK took such a request for a notification and never answered it. The
    control: the same request with a good id is answered."""
    requests = [
        {"jsonrpc": "2.0", "id": request_id, "method": "tools/list"} for request_id in (bad_id, 3)
    ]
    replies, _ = _mcp_replies(tmp_path, stdin_kind, *(json.dumps(r).encode() for r in requests))
    assert replies[None] == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {
            "code": -32600,
            "message": "Invalid Request: the request id must be a string or an integer",
        },
    }
    assert "run_python" in [tool["name"] for tool in replies[3]["result"]["tools"]]


HALF_WRITTEN_HEAD = b"POST /run HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le"


def _connect(server: Server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=60)


def _closed_by_peer(sock: socket.socket) -> bool:
    """True once the server closed `sock` (whatever it sent before, e.g. a 400, is read)."""
    sock.setblocking(False)
    try:
        while sock.recv(1 << 16):
            pass
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    return True


def _all_closed_by_peer(sockets: set[socket.socket]) -> bool:
    """Drops the ones the server closed from `sockets`; True once none is left."""
    sockets.difference_update([sock for sock in sockets if _closed_by_peer(sock)])
    return not sockets


def _open_fd_limit(limit: int) -> None:
    """In the server's process, before it starts: as few descriptors as a default shell."""
    import resource  # POSIX only

    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_NOFILE")
def test_serve_half_written_and_junk_connections_do_not_lock_out_the_token_holder(
    tmp_path: Path,
) -> None:
    """The attack, from a local process without the token: more idle half-written requests
    than the server has descriptors, plus junk requests that each made a warning. Before: the
    token holder got no answer and stderr took ~600k lines."""
    fd_limit = 512
    stderr_path = tmp_path / "stderr"
    with (
        stderr_path.open("wb") as stderr,
        started_server(
            tmp_path, stderr=stderr, preexec_fn=lambda: _open_fd_limit(fd_limit)
        ) as server,
    ):
        attackers = []
        for _ in range(fd_limit + 100):
            sock = _connect(server)
            sock.sendall(HALF_WRITTEN_HEAD)
            attackers.append(sock)
        junk = []
        for _ in range(200):
            sock = _connect(server)
            sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
            junk.append(sock)
        status, body = server.request("POST", "/run", {"code": "print('token holder')"})
        assert (status, body["stdout"]) == (200, "token holder\n")
        # The attack ran: the junk got its 400s and was closed, and the server closed the
        # half-written requests too (the oldest to make room, the rest at their head deadline).
        assert wait_until(lambda: _all_closed_by_peer(set(junk)))
        still_open = set(attackers)
        assert wait_until(lambda: _all_closed_by_peer(still_open))
        assert server.request("GET", "/sessions")[0] == 200
        for sock in attackers + junk:
            sock.close()
    lines = stderr_path.read_bytes().splitlines()
    assert len(lines) <= 10, lines
    # One warning for the 200 junk requests; the rest are counted, not shown.
    assert lines.count(b"agentbox serve: Invalid HTTP request received.") == 1, lines


def test_serve_closes_connections_that_never_finish_a_request_head(tmp_path: Path) -> None:
    with started_server(tmp_path) as server:
        fresh = _connect(server)
        fresh.sendall(HALF_WRITTEN_HEAD)
        kept_alive = _connect(server)
        request = (
            "GET /sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {server.token}\r\n\r\n"
        )
        kept_alive.sendall(request.encode())
        assert kept_alive.recv(1 << 16).startswith(b"HTTP/1.1 200 OK")  # the positive control
        kept_alive.sendall(HALF_WRITTEN_HEAD)  # a second request on it, never finished
        assert wait_until(lambda: _closed_by_peer(fresh) and _closed_by_peer(kept_alive))
        fresh.close()
        kept_alive.close()
