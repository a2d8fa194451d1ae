"""`agentbox mcp`: serve `run_python` over the Model Context Protocol on stdin/stdout.

stdout carries the protocol, so everything agentbox says (first-run compile progress, errors)
goes to stderr. The MCP SDK is imported here, never on the `agentbox run` path.
"""

from typing import Any

import click

from agentbox.cli.options import build_sandbox, sandbox_options
from agentbox.errors import UsageError
from agentbox.sessions import DEFAULT_IDLE_TIMEOUT_SECONDS, DEFAULT_MAX_SESSIONS

DEFAULT_POOL_SIZE = 2


def _progress(message: str) -> None:
    click.echo(message, err=True)


@click.command()
@sandbox_options
@click.option(
    "--pool-size",
    type=click.IntRange(min=0),
    default=DEFAULT_POOL_SIZE,
    show_default=True,
    help="Sandboxes kept ready ahead of calls (0: create each on demand).",
)
@click.option(
    "--session-idle",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_IDLE_TIMEOUT_SECONDS,
    show_default=True,
    metavar="SECONDS",
    help="Close a session after this long without a call.",
)
@click.option(
    "--max-sessions",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_SESSIONS,
    show_default=True,
    help="Most sessions open at once; a new one closes the least recently used idle one.",
)
@click.pass_context
def mcp(
    ctx: click.Context, pool_size: int, session_idle: float, max_sessions: int, **options: Any
) -> None:
    """Serve Python execution to an MCP client (Claude Desktop, Cursor, VS Code...) over stdio.

    \b
    Tools:
      run_python(code, session?, timeout?, stdin?)  run code; same session = same interpreter
      list_sessions()                               open sessions, runs, idle seconds
      close_session(session)                        free a session's interpreter
      list_skills()                                 the skills sandboxed code may call

    The limit, mount, env and skill options apply to every call; a call's own `timeout` can
    only lower --timeout. Client config: {"command": "agentbox", "args": ["mcp"]}.
    """
    try:
        import anyio

        from agentbox.mcp_server import create_server, serve_stdio
    except ImportError as error:
        raise UsageError(
            f"agentbox mcp needs the MCP SDK ({error}): pip install 'agentbox[mcp]'"
        ) from None
    from agentbox.sessions import SessionManager

    options["sandbox_extra"] = {"pool_size": pool_size}
    sandbox = build_sandbox(ctx, progress=_progress, **options)
    sessions = SessionManager(sandbox, idle_timeout=session_idle, max_sessions=max_sessions)
    try:
        anyio.run(serve_stdio, create_server(sandbox, sessions))
    finally:
        sessions.close_all()
        sandbox.close()
