"""The event-loop stdio transport: the wire is off fds 0 and 1 while serving, back after."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from tests.mcp.test_mcp_server import INITIALIZE

# A server whose tool writes to stdout, reads stdin, and that reports on fds 0 and 1 after
# serving: what the transport promises about them.
SERVER = textwrap.dedent(
    """
    import os, sys
    import anyio
    from mcp.server.mcpserver import MCPServer
    from agentbox.server.mcp_server import serve_stdio

    server = MCPServer(name="stray")

    @server.tool()
    def stray() -> str:
        \"\"\"Writes where the wire used to be.\"\"\"
        print("stray print", flush=True)
        os.write(1, b"stray write\\n")
        return f"stdin read {sys.stdin.read()!r}"

    anyio.run(serve_stdio, server)
    os.write(1, f"after: blocking {os.get_blocking(0)} {os.get_blocking(1)}\\n".encode())
    """
)


def start_initialized(command: list[str], cwd: Path, stderr: int) -> subprocess.Popen[bytes]:
    """A server process over pipes, past the `initialize` handshake."""
    server = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, cwd=cwd
    )
    send(server, INITIALIZE)
    assert server.stdout is not None
    assert json.loads(server.stdout.readline())["id"] == 1
    return server


def send(server: subprocess.Popen[bytes], *messages: dict[str, Any]) -> None:
    assert server.stdin is not None
    for message in messages:
        server.stdin.write(json.dumps(message).encode() + b"\n")
    server.stdin.flush()


def run_python_call(code: str) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "run_python", "arguments": {"code": code}},
    }


AGENTBOX_MCP = [sys.executable, "-m", "agentbox", "mcp"]


def test_stray_output_misses_the_wire_which_is_restored_after(tmp_path: Path) -> None:
    script = tmp_path / "stray_server.py"
    script.write_text(SERVER)
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "stray"}}
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    server = start_initialized([sys.executable, str(script)], tmp_path, subprocess.PIPE)
    assert server.stdin is not None and server.stdout is not None and server.stderr is not None
    send(server, initialized, call)
    reply = json.loads(server.stdout.readline())
    server.stdin.close()
    rest = server.stdout.read()
    stderr = server.stderr.read()
    assert server.wait(timeout=30) == 0, stderr
    assert reply["id"] == 2, reply
    assert reply["result"]["content"][0]["text"] == "stdin read ''"
    assert b"stray print\nstray write\n" in stderr
    assert rest == b"after: blocking True True\n"


def test_a_large_reply_pending_at_exit_is_written_in_full(tmp_path: Path) -> None:
    """The client reads slowly and closes stdin while most of a ~1 MB reply is still unsent."""
    server = start_initialized(AGENTBOX_MCP, tmp_path, subprocess.DEVNULL)
    assert server.stdin is not None and server.stdout is not None
    send(server, run_python_call("print('x' * 500_000)"))
    first = server.stdout.read(1)  # the reply has begun: the rest waits on this pipe
    server.stdin.close()
    reply = json.loads(first + server.stdout.readline())
    assert server.wait(timeout=30) == 0
    assert reply["result"]["structuredContent"]["stdout"] == "x" * 500_000 + "\n"


def test_a_client_that_stops_reading_ends_the_server_quietly(tmp_path: Path) -> None:
    server = start_initialized(AGENTBOX_MCP, tmp_path, subprocess.PIPE)
    assert server.stdout is not None
    server.stdout.close()
    send(server, run_python_call("print(1)"))  # its reply meets a closed pipe: the server leaves
    _, stderr = server.communicate(timeout=30)
    assert server.returncode == 0, stderr
    assert b"error" not in stderr.lower(), stderr
