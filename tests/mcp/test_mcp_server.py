"""`agentbox mcp` driven as users run it: the real process, spoken to by the SDK's own client.

One server process serves most tests (starting one costs ~1 s: the SDK import); each test uses
its own session ids so tests stay independent. `SessionManager` is unit-tested without MCP.
"""

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import CallToolResult

from agentbox import Sandbox
from agentbox.server.sessions import SessionLimitError, SessionManager
from tests.helpers import wait_until

SERVER_TIMEOUT = 5
ECHO_SKILL = """\
import json, sys
data = json.load(sys.stdin)
json.dump({"echoed": data}, sys.stdout)
"""


def server_command(*options: str) -> list[str]:
    return [sys.executable, "-m", "agentbox", "mcp", *options]


class Client:
    """A synchronous face on the SDK's async stdio client, so tests read top to bottom."""

    def __init__(self, portal: BlockingPortal, session: ClientSession) -> None:
        self.portal = portal
        self.session = session

    def call(self, tool: str, **arguments: Any) -> CallToolResult:
        return self.portal.call(self.session.call_tool, tool, arguments)

    def run(self, code: str, **arguments: Any) -> CallToolResult:
        return self.call("run_python", code=code, **arguments)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    skill = tmp_path_factory.mktemp("skills") / "echo_skill.py"
    skill.write_text(ECHO_SKILL)
    command = server_command(
        "--timeout", str(SERVER_TIMEOUT), "--skill", f"echo={sys.executable} {skill}"
    )
    params = StdioServerParameters(
        command=command[0], args=command[1:], env=dict(os.environ), cwd=str(skill.parent)
    )
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(stdio_client(params)) as (read, write),
        portal.wrap_async_context_manager(ClientSession(read, write)) as session,
    ):
        portal.call(session.initialize)
        yield Client(portal, session)


def text(result: CallToolResult) -> str:
    assert len(result.content) == 1
    return result.content[0].text


def test_initialize_and_list_tools(client: Client) -> None:
    listed = client.portal.call(client.session.list_tools)
    tools = {tool.name: tool for tool in listed.tools}
    assert set(tools) == {"run_python", "list_sessions", "close_session", "list_skills"}
    run_schema = tools["run_python"].input_schema
    assert run_schema["required"] == ["code"]
    assert set(run_schema["properties"]) == {"code", "session", "timeout", "stdin", "files"}
    assert run_schema["properties"]["code"]["type"] == "string"
    assert tools["close_session"].input_schema["required"] == ["session"]
    output = tools["run_python"].output_schema
    assert output is not None
    assert {"stdout", "stderr", "exit_code", "limit", "session_reset"} <= set(output["properties"])
    assert "echo" in (tools["run_python"].description or "")


def test_run_python_returns_stdout_and_structured_result(client: Client) -> None:
    result = client.run("print(1 + 1)")
    assert not result.is_error
    assert text(result) == "2"
    structured = result.structured_content
    assert structured["stdout"] == "2\n"
    assert structured["exit_code"] == 0
    assert structured["limit"] is None
    assert structured["session_reset"] is False


def test_script_error_is_an_error_result_with_stderr_and_exit_code(client: Client) -> None:
    result = client.run("print('before')\nraise ValueError('boom')")
    assert result.is_error
    shown = text(result)
    assert shown.startswith("before\n")
    assert "ValueError: boom" in shown
    assert shown.endswith("[exit code 1]")
    assert result.structured_content["exit_code"] == 1


def test_stdin_reaches_the_script(client: Client) -> None:
    result = client.run("import sys; print(sys.stdin.read().upper())", stdin="hello")
    assert text(result) == "HELLO"


def test_fresh_interpreter_without_session(client: Client) -> None:
    client.run("y = 1")
    result = client.run("print(y)")
    assert result.is_error
    assert "NameError" in text(result)


def test_session_keeps_state_and_sessions_are_isolated(client: Client) -> None:
    assert not client.run("x = 1\nimport math", session="keep-a").is_error
    result = client.run("print(x, math.pi > 3)", session="keep-a")
    assert not result.is_error
    assert text(result) == "1 True"
    assert result.structured_content["session"] == "keep-a"
    other = client.run("print(x)", session="keep-b")
    assert other.is_error
    assert "NameError" in text(other)


def test_timeout_ends_the_call_resets_the_session_and_the_server_goes_on(client: Client) -> None:
    client.run("x = 1", session="slow")
    result = client.run("while True: pass", session="slow", timeout=1)
    assert result.is_error
    assert result.structured_content["limit"] == "timeout"
    assert result.structured_content["session_reset"] is True
    assert "timed out after 1 s" in text(result)
    assert "[session reset" in text(result)
    after = client.run("print(x)", session="slow")
    assert "NameError" in text(after)
    assert text(client.run("print('still serving')")) == "still serving"


def test_requested_timeout_is_capped_by_the_server_limit(client: Client) -> None:
    result = client.run("while True: pass", timeout=1000)
    assert result.structured_content["limit"] == "timeout"
    assert f"timed out after {SERVER_TIMEOUT} s" in text(result)


def test_memory_exhaustion_ends_only_that_call(client: Client) -> None:
    result = client.run("x = []\nwhile True: x.append(bytearray(10**7))", session="greedy")
    assert result.is_error
    assert result.structured_content["limit"] == "memory"
    assert "out of memory" in text(result)
    assert text(client.run("print('fine')", session="greedy")) == "fine"


def test_crash_ends_only_that_call(client: Client) -> None:
    code = "import sys\nsys.setrecursionlimit(10**7)\ndef f(n): return f(n + 1)\nf(0)"
    result = client.run(code, session="crashy")
    assert result.is_error
    assert result.structured_content["limit"] == "crash"
    assert result.structured_content["session_reset"] is True
    assert text(client.run("print('up')", session="crashy")) == "up"


def test_a_slow_call_does_not_block_other_calls(client: Client) -> None:
    slow = client.portal.start_task_soon(
        client.session.call_tool, "run_python", {"code": "while True: pass", "timeout": 4}
    )
    assert text(client.run("print('quick')")) == "quick"
    assert not slow.done()
    assert slow.result(timeout=60).structured_content["limit"] == "timeout"


def test_skill_called_from_sandboxed_code(client: Client) -> None:
    listed = client.call("list_skills")
    assert [skill["name"] for skill in listed.structured_content["skills"]] == ["echo"]
    result = client.run("import skills\nprint(call_skill('echo', {'a': 1}), skills.echo(b=2))")
    assert not result.is_error, text(result)
    assert text(result) == "{'echoed': {'a': 1}} {'echoed': {'b': 2}}"
    assert [call["name"] for call in result.structured_content["skill_calls"]] == ["echo"] * 2


def test_list_and_close_sessions(client: Client) -> None:
    client.run("v = 1", session="listed")
    client.run("v = 2", session="listed")
    listed = client.call("list_sessions").structured_content
    entry = next(item for item in listed["sessions"] if item["id"] == "listed")
    assert entry["runs"] == 2
    assert entry["idle_seconds"] >= 0
    assert listed["max_sessions"] == 32
    closed = client.call("close_session", session="listed")
    assert closed.structured_content == {"session": "listed", "closed": True}
    ids = [item["id"] for item in client.call("list_sessions").structured_content["sessions"]]
    assert "listed" not in ids
    assert "NameError" in text(client.run("print(v)", session="listed"))
    again = client.call("close_session", session="never-opened")
    assert again.structured_content["closed"] is False


def test_bad_arguments_are_error_results(client: Client) -> None:
    result = client.call("run_python", code=5)
    assert result.is_error
    assert "code" in text(result)
    assert client.call("run_python", code="print(1)", timeout=0).is_error
    assert client.call("run_python", code="print(1)", session="").is_error


def _read_message(stdout: Any) -> dict[str, Any]:
    line = stdout.readline()
    assert line, "the server closed stdout"
    return json.loads(line)


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "0"},
    },
}


@pytest.mark.parametrize("stdin_kind", ["pipe", "file"])
def test_garbage_on_stdin_gets_json_rpc_errors_and_the_server_goes_on(
    tmp_path: Path, stdin_kind: str
) -> None:
    """Both transports: the event-loop one (pipes, as MCP clients start servers) and the
    SDK's, which serves anything else (here a regular file)."""
    garbage = [b"this is not json", b'{"unterminated": ', b"\x00\xff\xfe binary", b"[1, 2, 3]"]
    unknown_method = {"jsonrpc": "2.0", "id": 7, "method": "no/such/method"}
    payload = b"\n".join(
        [*garbage, json.dumps(unknown_method).encode(), json.dumps(INITIALIZE).encode()]
    )
    requests = tmp_path / "requests.jsonl"
    requests.write_bytes(payload + b"\n")
    with requests.open("rb") as requests_file:
        server = subprocess.Popen(
            server_command(),
            stdin=subprocess.PIPE if stdin_kind == "pipe" else requests_file,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=tmp_path,
        )
    try:
        if server.stdin is not None:
            server.stdin.write(payload + b"\n")
            server.stdin.flush()
        errors = [_read_message(server.stdout) for _ in garbage]
        assert [error["error"]["code"] for error in errors] == [-32700, -32700, -32700, -32600]
        assert all(error["id"] is None and error["jsonrpc"] == "2.0" for error in errors)
        assert _read_message(server.stdout)["error"]["code"] == -32601
        response = _read_message(server.stdout)
        assert response["id"] == 1
        assert response["result"]["serverInfo"]["name"] == "agentbox"
        assert "tools" in response["result"]["capabilities"]
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.wait(timeout=30)
        server.stdout.close()
        server.stderr.close()
    assert server.returncode == 0


def test_help_names_the_tools_and_options() -> None:
    completed = subprocess.run(
        server_command("--help"), capture_output=True, text=True, timeout=60, check=True
    )
    for word in ("run_python", "--pool-size", "--session-idle", "--max-sessions", "--skill"):
        assert word in completed.stdout


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_manager_keeps_state_per_id(sandbox: Sandbox) -> None:
    manager = SessionManager(sandbox)
    try:
        manager.run("a", "x = 'A'")
        manager.run("b", "x = 'B'")
        assert manager.run("a", "print(x)").result.stdout == "A\n"
        assert manager.run("b", "print(x)").result.stdout == "B\n"
        assert [(info.id, info.runs) for info in manager.list_sessions()] == [("a", 2), ("b", 2)]
    finally:
        manager.close_all()


def test_manager_expires_idle_sessions_on_access(sandbox: Sandbox, clock: FakeClock) -> None:
    manager = SessionManager(sandbox, idle_timeout=60, clock=clock)
    try:
        manager.run("a", "x = 1")
        clock.now += 30
        assert [info.idle_seconds for info in manager.list_sessions()] == [30]
        clock.now += 31
        assert manager.list_sessions() == []
        rerun = manager.run("a", "print(x)")
        assert "NameError" in rerun.result.stderr
        assert rerun.notices == ["session 'a' expired after 60 s idle; this is a new interpreter"]
        assert manager.run("a", "print(1)").notices == []
    finally:
        manager.close_all()


def test_manager_expiry_thread_closes_idle_sessions_without_any_access(sandbox: Sandbox) -> None:
    manager = SessionManager(sandbox, idle_timeout=0.2)
    try:
        manager.run("a", "x = 1")
        session = manager._entries["a"].session
        assert wait_until(lambda: session.closed)
    finally:
        manager.close_all()


def test_manager_cap_evicts_the_least_recently_used(sandbox: Sandbox) -> None:
    manager = SessionManager(sandbox, max_sessions=2)
    try:
        manager.run("a", "x = 'a'")
        manager.run("b", "x = 'b'")
        manager.run("a", "pass")  # now b is the least recently used
        run = manager.run("c", "x = 'c'")
        assert run.notices == ["session 'b' was closed to make room for this one"]
        assert [info.id for info in manager.list_sessions()] == ["a", "c"]
        back = manager.run("b", "print(x)")
        assert "NameError" in back.result.stderr
        assert back.notices[0].startswith("session 'b' was closed to make room")
        assert back.notices[1] == "session 'a' was closed to make room for this one"
    finally:
        manager.close_all()


class BusySession:
    """A session whose script blocks in a skill until released, run on a thread."""

    def __init__(self, manager: SessionManager, session_id: str, release: threading.Event) -> None:
        self.results: list[Any] = []
        self.release = release
        self.thread = threading.Thread(
            target=lambda: self.results.append(manager.run(session_id, "print(call_skill('wait'))"))
        )
        self.thread.start()
        started = wait_until(lambda: any(info.busy for info in manager.list_sessions()))
        assert started, "the run never started"

    def finish(self) -> Any:
        self.release.set()
        self.thread.join(60)
        assert not self.thread.is_alive()
        return self.results[0].result


@pytest.fixture
def waiting_sandbox() -> tuple[Sandbox, threading.Event]:
    release = threading.Event()
    return Sandbox(timeout=60, skills={"wait": lambda: release.wait(60)}), release


def test_manager_refuses_when_every_session_is_busy(
    waiting_sandbox: tuple[Sandbox, threading.Event],
) -> None:
    box, release = waiting_sandbox
    manager = SessionManager(box, max_sessions=1)
    busy = BusySession(manager, "busy", release)
    try:
        with pytest.raises(SessionLimitError, match="all 1 sessions are running scripts"):
            manager.run("other", "pass")
    finally:
        result = busy.finish()
        manager.close_all()
    assert result.stdout == "True\n"


def test_manager_close_of_a_busy_session_waits_for_nothing(
    waiting_sandbox: tuple[Sandbox, threading.Event],
) -> None:
    box, release = waiting_sandbox
    manager = SessionManager(box)
    try:
        manager.run("a", "x = 1")
        session = manager._entries["a"].session
        busy = BusySession(manager, "a", release)
        assert manager.close("a") is True
        assert manager.list_sessions() == []
        assert not session.closed
        assert busy.finish().stdout == "True\n"
        assert session.closed
        assert "NameError" in manager.run("a", "print(x)").result.stderr
    finally:
        manager.close_all()


def test_manager_close_and_bad_ids(sandbox: Sandbox) -> None:
    manager = SessionManager(sandbox)
    try:
        manager.run("a", "pass")
        assert manager.close("a") is True
        assert manager.close("a") is False
        assert manager.run("a", "pass").notices == []
        with pytest.raises(ValueError, match="non-empty"):
            manager.run("", "pass")
        with pytest.raises(ValueError, match="at most"):
            manager.run("x" * 201, "pass")
    finally:
        manager.close_all()
    with pytest.raises(RuntimeError, match="closed"):
        manager.run("a", "pass")


def test_sessions_module_does_not_import_the_mcp_sdk() -> None:
    code = "import sys, agentbox.server.sessions, agentbox.cli.run; print('mcp' in sys.modules)"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert completed.stdout.strip() == "False"


def test_run_python_returns_a_png_as_image_content_and_text_as_a_resource(client: Client) -> None:
    """Issue 16's proof through the SDK's own client: the client receives both files."""
    import base64

    from tests.files_script import SCRIPT, png_bytes

    result = client.run(SCRIPT)
    assert not result.is_error, result.content
    first, *files = result.content
    assert first.type == "text" and first.text == "8"
    images = [block for block in files if block.type == "image"]
    resources = [block for block in files if block.type == "resource"]
    assert [(image.mime_type, base64.b64decode(image.data)) for image in images] == [
        ("image/png", png_bytes())
    ]
    assert [(r.resource.uri, r.resource.text) for r in resources] == [
        ("agentbox://output/summary.txt", "total 8\n")
    ]
    assert [f["name"] for f in result.structured_content["files"]] == ["red.png", "summary.txt"]


def test_a_session_keeps_its_output_folder_and_returns_each_file_once(client: Client) -> None:
    """A file comes back in the call that made it, stays in /output for later calls, and
    comes back again only when changed."""
    first = client.run("open('/output/kept.bin', 'wb').write(bytes(range(256)))", session="files")
    later = client.run("print(sorted(__import__('os').listdir('/output')))", session="files")
    changed = client.run("open('/output/kept.bin', 'ab').write(b'!')", session="files")

    def blobs(result: CallToolResult) -> list[tuple[str, str | None]]:
        return [
            (str(block.resource.uri), block.resource.mime_type)
            for block in result.content
            if block.type == "resource"
        ]

    assert blobs(first) == [("agentbox://output/kept.bin", "application/octet-stream")]
    assert later.content[0].text == "['kept.bin']"
    assert blobs(later) == [] and later.structured_content["files"] == []
    assert blobs(changed) == [("agentbox://output/kept.bin", "application/octet-stream")]
    assert changed.structured_content["files"][0]["size"] == 257


def test_files_argument_puts_inputs_under_input(client: Client) -> None:
    import base64

    code = (
        "import os\n"
        "print(open('/input/data.csv').read().strip(), open('/input/raw/b.bin', 'rb').read())\n"
        "print(sorted(os.listdir('/input')))"
    )
    files = [
        {"name": "data.csv", "text": "a,b\n1,2\n"},
        {"name": "/input/raw/b.bin", "base64": base64.b64encode(b"\x00\xff").decode()},
    ]
    result = client.run(code, files=files)
    assert not result.is_error, result.content
    assert result.content[0].text == "a,b\n1,2 b'\\x00\\xff'\n['data.csv', 'raw']"
    again = client.run("import os; print(os.listdir('/input'))")
    assert again.content[0].text == "[]"


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ([{"name": "x", "base64": "not base64!"}], "not valid base64"),
        ([{"name": "../etc/passwd", "text": "x"}], "must lie under /input/"),
        ([{"name": "x", "text": "a", "base64": "YQ=="}], "one of `text` or `base64`"),
    ],
)
def test_bad_files_are_one_line_tool_errors(
    client: Client, files: list[dict[str, str]], message: str
) -> None:
    result = client.run("print(1)", files=files)
    assert result.is_error and message in text(result), text(result)
    assert text(client.run("print(2)")) == "2"
