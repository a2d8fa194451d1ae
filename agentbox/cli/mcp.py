"""`agentbox mcp`: serve `run_python` over the Model Context Protocol on stdin/stdout.

stdout carries the protocol, so everything agentbox says (first-run compile progress, errors)
goes to stderr. The MCP SDK is imported here, never on the `agentbox run` path.
"""

import sys
from typing import Any

import click

from agentbox.cli.options import build_sandbox, echo_progress, sandbox_options, server_options
from agentbox.cli.stopping import exit_on_signals_while_starting
from agentbox.errors import UsageError
from agentbox.exit_codes import for_stop_signal


@click.command()
@sandbox_options
@server_options
@click.pass_context
def mcp(
    ctx: click.Context, /, pool_size: int, session_idle: float, max_sessions: int, **options: Any
) -> None:
    """Serve Python execution to an MCP client (Claude Desktop, Cursor, VS Code...) over stdio.

    \b
    Tools:
      run_python(code, session?, timeout?, stdin?)  run code; same session = same interpreter
      list_sessions()                               open sessions, runs, idle seconds
      close_session(session)                        free a session's interpreter
      list_skills()                                 the skills sandboxed code may call

    The limit, mount, env and skill options apply to every call; a call's own `timeout` can
    only lower --timeout. Client config: {"command": "/full/path/to/agentbox", "args": ["mcp"]}
    (apps do not see your shell's PATH); run `agentbox warmup` once first. See docs/mcp.md.
    Exits 0 when stdin closes, 130 on SIGINT (Ctrl-C), 143 on SIGTERM.
    """
    exit_on_signals_while_starting()
    try:
        import anyio

        from agentbox.server.mcp_server import create_server, serve_stdio
    except ImportError as error:
        from agentbox._version import DISTRIBUTION

        raise UsageError(
            f"agentbox mcp needs the MCP SDK ({error}): pip install '{DISTRIBUTION}[mcp]'"
        ) from None
    from agentbox.server.sessions import SessionManager
    from agentbox.server.warming import Warming

    options["sandbox_extra"] = {"pool_size": pool_size}
    sandbox = build_sandbox(ctx, progress=echo_progress, **options)
    sessions = SessionManager(sandbox, idle_timeout=session_idle, max_sessions=max_sessions)
    warming = Warming(sandbox)  # with an empty cache: `initialize` is answered while it compiles
    try:
        stopped_by = anyio.run(serve_stdio, create_server(sandbox, sessions, warming))
    finally:
        sessions.close_all()
        sandbox.close()
    sys.exit(for_stop_signal(stopped_by))
