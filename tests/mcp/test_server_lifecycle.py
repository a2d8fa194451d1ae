"""The long-lived servers as clients start and stop them: a cold cache, progress, signals.

Real processes only: `agentbox mcp` spoken to by the MCP SDK's own client (with a progress
callback), `agentbox serve` by a socket client, and real SIGINT / SIGTERM.
"""

import http.client
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from anyio.from_thread import start_blocking_portal
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from agentbox.exit_codes import ExitCode
from tests.helpers import HANG_GUARD_SECONDS, PROCESS_HANG_GUARD_SECONDS

# Long enough that a 1 s progress interval reports at least twice on any machine.
LONG_RUN = "import time\nprint('before', flush=True)\ntime.sleep(3.5)\nprint('after')"


def _agentbox(*args: str) -> list[str]:
    return [sys.executable, "-m", "agentbox", *args]


class Progress:
    """An MCP progress callback that keeps what it was told."""

    def __init__(self) -> None:
        self.events: list[tuple[float, float | None, str | None]] = []

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.events.append((progress, total, message))


def _mcp_session(env: dict[str, str]) -> Any:
    command = _agentbox("mcp")
    return StdioServerParameters(command=command[0], args=command[1:], env=env)


def test_cold_cache_mcp_answers_initialize_before_the_compile(tmp_path: Path) -> None:
    """With an empty cache, initialize is answered while the guest compiles (the compiled file
    does not exist yet when it returns); the first run waits for it, with progress."""
    cache = tmp_path / "cache"
    params = _mcp_session({**os.environ, "AGENTBOX_CACHE_DIR": str(cache)})
    progress = Progress()
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(stdio_client(params)) as (read, write),
        portal.wrap_async_context_manager(ClientSession(read, write)) as session,
    ):
        portal.call(session.initialize)
        compiled_when_initialized = sorted(cache.rglob("*.cwasm")) if cache.exists() else []
        result = portal.call(
            lambda: session.call_tool(
                "run_python", {"code": "print(6 * 7)"}, progress_callback=progress
            )
        )
    assert compiled_when_initialized == []
    assert not result.is_error, result
    assert result.structured_content["stdout"] == "42\n"
    assert sorted(cache.rglob("*.cwasm")), "the first run compiled and cached the guest"
    messages = [message for _, _, message in progress.events]
    assert any("compiling the sandbox" in (message or "") for message in messages), messages
    values = [value for value, _, _ in progress.events]
    assert values == sorted(values), "progress only grows, as MCP requires"


@pytest.fixture(scope="module")
def mcp_client() -> Iterator[tuple[Any, ClientSession]]:
    params = _mcp_session(dict(os.environ))
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(stdio_client(params)) as (read, write),
        portal.wrap_async_context_manager(ClientSession(read, write)) as session,
    ):
        portal.call(session.initialize)
        yield portal, session


@pytest.mark.parametrize("session_id", [None, "progress-session"])
def test_mcp_progress_while_a_long_run_goes_on(
    mcp_client: tuple[Any, ClientSession], session_id: str | None
) -> None:
    portal, session = mcp_client
    progress = Progress()
    arguments: dict[str, Any] = {"code": LONG_RUN}
    if session_id is not None:
        arguments["session"] = session_id
    result = portal.call(
        lambda: session.call_tool("run_python", arguments, progress_callback=progress)
    )
    assert result.structured_content["stdout"] == "before\nafter\n"
    assert len(progress.events) >= 2, progress.events
    values = [value for value, _, _ in progress.events]
    assert values == sorted(values) and values[0] > 0
    assert all("running" in (message or "") for _, _, message in progress.events)
    # The output so far rides on the progress messages, each piece once: 'before' is printed
    # 3.5 s before the run ends, so a report carries it.
    outputs = [(message or "").partition("\n")[2] for _, _, message in progress.events]
    assert "".join(outputs).count("before\n") == 1, progress.events


def test_mcp_no_progress_without_a_token(mcp_client: tuple[Any, ClientSession]) -> None:
    """A client that did not ask gets no notifications: the SDK would drop them, so a call
    without a token is answered as before (checked through the result only)."""
    portal, session = mcp_client
    result = portal.call(lambda: session.call_tool("run_python", {"code": "print(1)"}))
    assert result.structured_content["stdout"] == "1\n"


def _json_rpc(process: subprocess.Popen[bytes], message: dict[str, Any]) -> None:
    assert process.stdin is not None
    process.stdin.write((json.dumps(message) + "\n").encode())
    process.stdin.flush()


def _initialize(process: subprocess.Popen[bytes]) -> None:
    _json_rpc(
        process,
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "test", "version": "1"},
            },
        },
    )
    assert process.stdout is not None
    reply = json.loads(process.stdout.readline())
    assert reply["id"] == 1 and "result" in reply, reply
    _json_rpc(process, {"jsonrpc": "2.0", "method": "notifications/initialized"})


@pytest.mark.parametrize(
    ("signal_number", "code"),
    [(signal.SIGINT, ExitCode.INTERRUPTED), (signal.SIGTERM, ExitCode.TERMINATED)],
)
def test_mcp_stops_on_the_first_signal_during_a_run(signal_number: int, code: int) -> None:
    """Ctrl-C (SIGINT) or SIGTERM while a call runs: the server stops at once, 130 / 143."""
    process = subprocess.Popen(
        _agentbox("mcp"), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        _initialize(process)
        call = {
            "name": "run_python",
            "arguments": {"code": "print('started', flush=True)\nimport time; time.sleep(600)"},
        }
        _json_rpc(process, {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call})
        process.send_signal(signal_number)
        _, stderr = process.communicate(timeout=HANG_GUARD_SECONDS)
    finally:
        process.kill()
    assert process.returncode == code, stderr
    assert b"Traceback" not in stderr and b"aborted" not in stderr, stderr


@pytest.mark.parametrize(
    ("signal_number", "code"),
    [(signal.SIGINT, ExitCode.INTERRUPTED), (signal.SIGTERM, ExitCode.TERMINATED)],
)
def test_serve_stops_on_the_first_signal(signal_number: int, code: int) -> None:
    process = subprocess.Popen(
        _agentbox("serve", "--port", "0"), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        assert b"listening on" in process.stdout.readline()
        process.send_signal(signal_number)
        _, stderr = process.communicate(timeout=HANG_GUARD_SECONDS)
    finally:
        process.kill()
    assert process.returncode == code, stderr
    assert b"Traceback" not in stderr and b"aborted" not in stderr, stderr


def _streamed_run(
    code: str,
    env: dict[str, str] | None = None,
    serve_args: tuple[str, ...] = (),
    on_event: Callable[[Any], None] | None = None,
    **fields: Any,
) -> tuple[list[Any], list[Path]]:
    """`agentbox serve`, one streamed `POST /run` read from a real socket as it comes (each
    event handed to `on_event` as soon as it is read); also the compiled files that existed
    when the server said it was listening."""
    cache = Path(env["AGENTBOX_CACHE_DIR"]) if env else None
    process = subprocess.Popen(
        _agentbox("serve", "--port", "0", *serve_args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    try:
        assert process.stdout is not None
        url = re.search(rb"listening on http://(\S+)", process.stdout.readline())
        compiled = sorted(cache.rglob("*.cwasm")) if cache and cache.exists() else []
        token = process.stdout.readline().decode().split()[-1]
        assert url is not None
        host, port = url.group(1).decode().split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=PROCESS_HANG_GUARD_SECONDS)
        connection.request(
            "POST",
            "/run",
            json.dumps({"code": code, **fields}),
            {"Authorization": f"Bearer {token}", "Accept": "application/x-ndjson"},
        )
        response = connection.getresponse()
        assert response.status == 200
        assert response.getheader("content-type", "").startswith("application/x-ndjson")
        events = []
        for line in response:
            events.append(json.loads(line))
            if on_event is not None:
                on_event(events[-1])
        connection.close()
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=PROCESS_HANG_GUARD_SECONDS)
    assert process.returncode == ExitCode.TERMINATED
    return events, compiled


def test_cold_cache_serve_listens_before_the_compile(tmp_path: Path) -> None:
    events, compiled_when_listening = _streamed_run(
        "print(6 * 7)", {"AGENTBOX_CACHE_DIR": str(tmp_path / "cache")}
    )
    assert compiled_when_listening == []
    assert events[-1]["event"] == "result" and events[-1]["stdout"] == "42\n", events
    assert any("compiling the sandbox" in event.get("message", "") for event in events[:-1])


WAIT_SKILL = """
import os, time
import agentbox

@agentbox.skill
def wait_for_the_reader(flag: str) -> str:
    \"\"\"Returns once the test has read the run's first output from the stream.\"\"\"
    while not os.path.exists(flag):
        time.sleep(0.02)
    return "go"
"""


def test_serve_streams_progress_then_the_result(tmp_path: Path) -> None:
    """`POST /run` with `Accept: application/x-ndjson`: progress and output lines as the run
    goes on, then the result. The script waits (in a skill) until the test has read its first
    output and two progress events from the stream, so both provably arrive while the run goes
    on, however fast or slow the machine."""
    skills, flag = tmp_path / "wait.py", tmp_path / "seen"
    skills.write_text(WAIT_SKILL)
    code = (
        "print('before', flush=True)\n"
        f"call_skill('wait_for_the_reader', {{'flag': {str(flag)!r}}})\n"
        "print('after')"
    )
    seen = {"output": 0, "progress": 0}

    def on_event(event: Any) -> None:
        if event["event"] in seen:
            seen[event["event"]] += 1
        if seen["output"] >= 1 and seen["progress"] >= 2:
            flag.touch()

    events, _ = _streamed_run(code, serve_args=("--skills", str(skills)), on_event=on_event)
    progress = [event for event in events[:-1] if event["event"] == "progress"]
    output = [event for event in events[:-1] if event["event"] == "output"]
    assert len(progress) >= 2 and len(progress) + len(output) == len(events) - 1, events
    assert {event["stream"] for event in output} == {"stdout"}
    assert "".join(event["data"] for event in output) == "before\nafter\n"
    assert output[0]["data"] == "before\n"  # read before the script could go on: it is live
    elapsed = [event["elapsed_seconds"] for event in progress]
    assert elapsed == sorted(elapsed)
    assert events[-1]["event"] == "result"
    assert events[-1]["stdout"] == "before\nafter\n" and events[-1]["exit_code"] == 0


def test_serve_stream_ends_with_an_error_event_for_a_refused_run() -> None:
    """What a plain /run answers with a status code after reading the body (here a bad session
    id: 400) is the stream's last line, after any progress."""
    events, _ = _streamed_run("print(1)", session="")
    assert events[-1] == {
        "event": "error",
        "error": "a session id must be a non-empty string",
        "status": 400,
    }
