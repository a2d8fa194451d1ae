"""The event-loop stdio transport: the wire is off fds 0 and 1 while serving, back after."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.mcp.test_mcp_server import INITIALIZE

# A server whose tool writes to stdout, reads stdin, and that reports on fds 0 and 1 after
# serving: what the transport promises about them.
SERVER = textwrap.dedent(
    """
    import os, sys
    import anyio
    from mcp.server.mcpserver import MCPServer
    from agentbox.mcp_server import serve_stdio

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


def test_stray_output_misses_the_wire_which_is_restored_after(tmp_path: Path) -> None:
    script = tmp_path / "stray_server.py"
    script.write_text(SERVER)
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "stray"}}
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    server = subprocess.Popen(
        [sys.executable, str(script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert server.stdin is not None and server.stdout is not None
    server.stdin.write(json.dumps(INITIALIZE).encode() + b"\n")
    server.stdin.flush()
    assert json.loads(server.stdout.readline())["id"] == 1
    for message in (initialized, call):
        server.stdin.write(json.dumps(message).encode() + b"\n")
    server.stdin.flush()
    reply = json.loads(server.stdout.readline())
    server.stdin.close()
    rest = server.stdout.read()
    stderr = server.stderr.read() if server.stderr else b""
    assert server.wait(timeout=30) == 0, stderr
    assert reply["id"] == 2, reply
    assert reply["result"]["content"][0]["text"] == "stdin read ''"
    assert b"stray print\nstray write\n" in stderr
    assert rest == b"after: blocking True True\n"


def test_a_large_reply_pending_at_exit_is_written_in_full(tmp_path: Path) -> None:
    """The client reads slowly and closes stdin while most of a ~1 MB reply is still unsent."""
    server = subprocess.Popen(
        [sys.executable, "-m", "agentbox", "mcp"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    assert server.stdin is not None and server.stdout is not None
    call = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "run_python", "arguments": {"code": "print('x' * 500_000)"}},
    }
    server.stdin.write(json.dumps(INITIALIZE).encode() + b"\n")
    server.stdin.flush()
    assert json.loads(server.stdout.readline())["id"] == 1
    server.stdin.write(json.dumps(call).encode() + b"\n")
    server.stdin.flush()
    first = server.stdout.read(1)  # the reply has begun: the rest waits on this pipe
    server.stdin.close()
    reply = json.loads(first + server.stdout.readline())
    assert server.wait(timeout=30) == 0
    assert reply["result"]["structuredContent"]["stdout"] == "x" * 500_000 + "\n"


def test_a_client_that_stops_reading_ends_the_server_quietly(tmp_path: Path) -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "agentbox", "mcp"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    assert server.stdin is not None and server.stdout is not None
    server.stdin.write(json.dumps(INITIALIZE).encode() + b"\n")
    server.stdin.flush()
    assert json.loads(server.stdout.readline())["id"] == 1
    server.stdout.close()
    call = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "run_python", "arguments": {"code": "print(1)"}},
    }
    server.stdin.write(json.dumps(call).encode() + b"\n")
    server.stdin.flush()  # its reply meets a closed pipe, and the server leaves
    _, stderr = server.communicate(timeout=30)
    assert server.returncode == 0, stderr
    assert b"error" not in stderr.lower(), stderr
