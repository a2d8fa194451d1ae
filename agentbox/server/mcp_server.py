"""The MCP server: `run_python` and session tools over the official MCP Python SDK (2.x).

Importing this module imports the SDK (slow, ~1 s), so only `agentbox mcp` imports it; the
`agentbox run` path never does. `run_python` is a coroutine that awaits the sandbox's own run
thread (no SDK worker thread in between: one thread hop less per call), so one slow script never
blocks the protocol loop or other calls, and a script that hits a limit ends only its own call.
"""

import signal
import sys
import threading
import time
from dataclasses import asdict
from typing import Annotated, Any, Literal

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.message import SessionMessage
from mcp.types import (
    INVALID_REQUEST,
    PARSE_ERROR,
    CallToolResult,
    ErrorData,
    JSONRPCError,
    TextContent,
    ToolAnnotations,
)
from pydantic import BaseModel, Field, ValidationError

from agentbox._version import __version__
from agentbox.errors import AgentboxError
from agentbox.input_files import from_wire
from agentbox.limits import MIB
from agentbox.result import RunResult
from agentbox.sandbox import Sandbox
from agentbox.server.admission import Admission, ServerBusyError
from agentbox.server.mcp_files import file_blocks
from agentbox.server.mcp_stdio import InvalidRequest, RequestTooLarge, stdio_streams
from agentbox.server.progress import OutputSoFar, ProgressReport, with_progress
from agentbox.server.sessions import MAX_SESSION_ID_LENGTH, SessionManager
from agentbox.server.warming import Warming

RUNNING_MESSAGE = "running"


class SkillCallOutput(BaseModel):
    name: str
    duration_ms: float
    ok: bool
    error: str | None


class FileOutput(BaseModel):
    name: str
    size: int
    media_type: str


class InputFile(BaseModel):
    """One input file of a `run_python` call: `text` or `base64` contents."""

    name: str = Field(description="Its path under /input (`data.csv` -> /input/data.csv).")
    text: str | None = Field(default=None, description="UTF-8 text contents.")
    base64: str | None = Field(default=None, description="Binary contents, base64.")


class RunOutput(BaseModel):
    """`run_python`'s structured result: `RunResult.to_json()` plus the session's fate."""

    stdout: str
    stderr: str
    exit_code: int
    duration_ms: float
    limit: Literal["timeout", "memory", "fuel", "crash"] | None
    message: str | None
    truncated: bool
    skill_calls: list[SkillCallOutput]
    skill_calls_unrecorded: int = Field(
        default=0, description="Skill calls made after skill_calls was full (its first 1000)."
    )
    engine: str
    files: list[FileOutput] = Field(
        default_factory=list,
        description="Files the script left in /output (their content: image or resource blocks).",
    )
    files_dropped: int = 0
    session: str | None
    session_reset: bool = Field(
        description="The session's interpreter was lost (limit or crash); its next run starts "
        "from a fresh interpreter."
    )
    notices: list[str] = Field(
        description="What happened to sessions on the way, e.g. this session had expired."
    )


class SessionOutput(BaseModel):
    id: str
    runs: int
    idle_seconds: float
    busy: bool


class SessionsOutput(BaseModel):
    sessions: list[SessionOutput]
    max_sessions: int
    idle_timeout_seconds: float


class CloseOutput(BaseModel):
    session: str
    closed: bool = Field(description="False when no session had that id.")


class SkillsOutput(BaseModel):
    skills: list[dict[str, Any]]


def render_text(result: RunResult, notices: list[str]) -> str:
    """What a chat client shows: stdout, stderr, then agentbox's own lines in brackets."""
    parts = [text for text in (result.stdout, result.stderr) if text]
    lines = [f"[agentbox: {notice}]" for notice in notices]
    if result.message:
        lines.append(f"[agentbox: {result.message}]")
    if result.exit_code != 0:
        lines.append(f"[exit code {result.exit_code}]")
    if result.session_reset:
        lines.append("[session reset: the next call in this session starts a fresh interpreter]")
    if lines:
        parts.append("\n".join(lines))
    return "\n".join(part.removesuffix("\n") for part in parts) if parts else "(no output)"


# The packages the data image's description names first (the rest follow, alphabetically).
_MAIN_PACKAGES = ("numpy", "pandas", "matplotlib", "scipy", "scikit-learn", "statsmodels")


def _image_text(sandbox: Sandbox) -> str:
    """Which image runs, and for the data image its Python and packages, so a model does not
    try what is missing (or avoid what is there)."""
    versions = sandbox.packages
    if not versions:
        return "Run Python 3.14 code (standard library only) in an isolated WebAssembly sandbox"
    python = versions.get("python", "3")
    names = [name for name in _MAIN_PACKAGES if name in versions]
    names += sorted(name for name in versions if name not in names and name != "python")
    listed = ", ".join(f"{name} {versions[name]}" for name in names)
    return (
        f"Run Python {python} code in an isolated WebAssembly sandbox (the {sandbox.image} "
        f"image, built with these packages and libraries: {listed}; matplotlib uses the Agg "
        "backend, save figures to /output to get them back as images; no threads or "
        "subprocesses)"
    )


def _description(sandbox: Sandbox) -> str:
    limits = sandbox.limits
    skills = sandbox.skills.names()
    skill_text = (
        f" Host skills available: {', '.join(skills)}; call them as "
        "`call_skill(name, data)` or `import skills; skills.NAME(**kwargs)` "
        "(list_skills shows their parameters)."
        if skills
        else ""
    )
    mounts = ", ".join(
        f"{mount.guest} ({'read-write' if mount.writable else 'read-only'})"
        for mount in sandbox.settings.mounts
    )
    return (
        _image_text(sandbox) + " and return its stdout and "
        f"stderr. No network, no processes, no host files{f' except {mounts}' if mounts else ''}. "
        f"Limits per call: {limits.timeout:g} s wall clock, {limits.memory // MIB} MiB memory. "
        "Without `session` every call starts from a clean interpreter; calls with the same "
        "`session` id share variables, imports and definitions." + skill_text
    )


def _progress_report(ctx: Context) -> ProgressReport | None:
    """Progress notifications for this call, if its client sent a `progressToken`: the seconds
    since the call arrived (which only grow, as MCP requires) and what is going on."""
    meta = ctx.request_context.meta
    if not meta or meta.get("progress_token") is None:
        return None
    started = time.monotonic()

    async def report(_elapsed: float, message: str) -> None:
        elapsed = time.monotonic() - started
        first, newline, output = message.partition("\n")
        text = f"{first} ({elapsed:.0f} s){newline}{output}"
        await ctx.report_progress(round(elapsed, 3), None, text)

    return report


def create_server(
    sandbox: Sandbox, sessions: SessionManager, warming: Warming | None = None
) -> MCPServer:
    """The MCP server for `sandbox`; named sessions live in `sessions`. Every run passes the
    server caps (`Admission`) first, and waits for `warming` (the guest loading in the
    background) if it has not finished."""
    gate = Admission()
    warming = warming if warming is not None else Warming(sandbox)
    server = MCPServer(
        name="agentbox",
        version=__version__,
        instructions="Use run_python to execute Python code safely in a sandbox.",
        log_level="WARNING",
    )
    max_timeout = sandbox.limits.timeout

    @server.tool(
        description=_description(sandbox),
        annotations=ToolAnnotations(
            title="Run Python in a sandbox", read_only_hint=False, destructive_hint=False
        ),
    )
    async def run_python(
        code: Annotated[str, Field(description="The Python source to run, as a script.")],
        session: Annotated[
            str | None,
            Field(
                description="Session id: calls with the same id share one interpreter; "
                "different ids are isolated. Omit for a fresh interpreter.",
                min_length=1,
                max_length=MAX_SESSION_ID_LENGTH,
            ),
        ] = None,
        timeout: Annotated[
            float | None,
            Field(
                description=f"Wall-clock limit in seconds (at most {max_timeout:g}).",
                gt=0,
            ),
        ] = None,
        stdin: Annotated[
            str | None, Field(description="Text the script reads from sys.stdin.")
        ] = None,
        files: Annotated[
            list[InputFile] | None,
            Field(
                description="Files the script reads, read-only, under /input (e.g. a CSV to "
                "analyse); its own files come back from /output."
            ),
        ] = None,
        *,
        ctx: Context,
    ) -> Annotated[CallToolResult, RunOutput]:
        effective_timeout = min(timeout, max_timeout) if timeout is not None else None
        notices: list[str] = []
        report = _progress_report(ctx)
        await warming.wait(report)
        try:
            inputs = from_wire([file.model_dump(exclude_none=True) for file in files or ()])
        except AgentboxError as error:
            raise ToolError(str(error)) from error

        output = OutputSoFar() if report is not None else None
        options: dict[str, Any] = {
            "stdin": stdin or "",
            "timeout": effective_timeout,
            "files": inputs,
            "on_output": output.add if output is not None else None,
        }

        async def execute() -> RunResult:
            if session is None:
                return await sandbox.run_async(code, **options)
            run = await sessions.run_async(session, code, **options)
            notices.extend(run.notices)
            return run.result

        try:
            with gate.admitted(one_shot=session is None):
                result = await with_progress(execute, report, RUNNING_MESSAGE, output)
        except (ServerBusyError, ValueError, AgentboxError) as error:
            raise ToolError(str(error)) from error
        structured = {
            **result.to_json(),
            "session": session,
            "session_reset": result.session_reset,
            "notices": notices,
        }
        return CallToolResult(
            content=[
                TextContent(type="text", text=render_text(result, notices)),
                *file_blocks(result.files),
            ],
            structured_content=structured,
            is_error=not result.ok,
        )

    @server.tool(annotations=ToolAnnotations(title="List sessions", read_only_hint=True))
    def list_sessions() -> SessionsOutput:
        """The open run_python sessions: id, runs so far, seconds idle."""
        return SessionsOutput(
            sessions=[SessionOutput(**asdict(info)) for info in sessions.list_sessions()],
            max_sessions=sessions.max_sessions,
            idle_timeout_seconds=sessions.idle_timeout,
        )

    @server.tool(
        annotations=ToolAnnotations(
            title="Close a session", read_only_hint=False, destructive_hint=True
        )
    )
    def close_session(
        session: Annotated[str, Field(description="The session id to close.")],
    ) -> CloseOutput:
        """Close a run_python session and free its interpreter (its state is lost)."""
        return CloseOutput(session=session, closed=sessions.close(session))

    @server.tool(annotations=ToolAnnotations(title="List skills", read_only_hint=True))
    def list_skills() -> SkillsOutput:
        """The host skills sandboxed code may call, with their JSON Schema parameters."""
        return SkillsOutput(skills=sandbox.skills.specs())

    return server


def _protocol_error(error: Exception) -> SessionMessage:
    """The JSON-RPC error for a line that is not JSON (-32700) or not a valid JSON-RPC message
    (-32600; the transport's own refusals say why)."""
    not_json = isinstance(error, ValidationError) and any(
        detail["type"] == "json_invalid" for detail in error.errors()
    )
    if not_json:
        code, message = PARSE_ERROR, "Parse error"
    elif isinstance(error, RequestTooLarge | InvalidRequest):
        code, message = INVALID_REQUEST, f"Invalid Request: {error}"
    else:
        code, message = INVALID_REQUEST, "Invalid Request"
    return SessionMessage(
        JSONRPCError(jsonrpc="2.0", id=None, error=ErrorData(code=code, message=message))
    )


async def serve_stdio(server: MCPServer) -> int | None:
    """Serve over stdin/stdout until stdin closes (None) or SIGINT or SIGTERM arrives (that
    signal's number: the transport and every call in progress are cancelled)."""
    stopped_by: list[int] = []

    async def stop_on_signal(scope: anyio.CancelScope) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for number in signals:
                stopped_by.append(number)
                scope.cancel()
                return

    async with anyio.create_task_group() as tasks:
        if sys.platform != "win32" and threading.current_thread() is threading.main_thread():
            tasks.start_soon(stop_on_signal, tasks.cancel_scope)
        await _serve_stdio(server)
        tasks.cancel_scope.cancel()  # stdin closed: the signal watcher has nothing to do
    return stopped_by[0] if stopped_by else None


async def _serve_stdio(server: MCPServer) -> None:
    """Serve over stdin/stdout until stdin closes, answering malformed lines with errors.

    The transport passes on a line it cannot parse as an exception, which the SDK's server
    drops without a reply; JSON-RPC 2.0 wants an error response with a null id, so this loop
    sits between the transport and the server.
    """
    async with stdio_streams() as (read_stream, write_stream):
        inbound_writer, inbound = anyio.create_memory_object_stream[SessionMessage | Exception](0)

        async def forward() -> None:
            async with inbound_writer:
                async for item in read_stream:
                    if isinstance(item, Exception):
                        await write_stream.send(_protocol_error(item))
                    else:
                        await inbound_writer.send(item)

        # MCPServer has no public way to serve custom streams; its own run_stdio_async does this.
        lowlevel = server._lowlevel_server
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(forward)
            await lowlevel.run(inbound, write_stream, lowlevel.create_initialization_options())
