"""`agentbox serve`: `POST /run` and session endpoints on 127.0.0.1, behind a bearer token."""

import secrets
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
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8787,
    show_default=True,
    help="TCP port on 127.0.0.1 (0: any free port). The server never listens on other addresses.",
)
@click.pass_context
def serve(
    ctx: click.Context,
    /,
    port: int,
    pool_size: int,
    session_idle: float,
    max_sessions: int,
    **options: Any,
) -> None:
    """Serve Python execution over HTTP on 127.0.0.1, for local apps that do not speak MCP.

    A new random token is printed at start; every request must send it as
    `Authorization: Bearer TOKEN`. A run is answered with 503 while a server cap is reached
    (every session busy, too many runs in progress or held by blocked host calls).
    It listens at once, also while a cold cache compiles; SIGINT exits 130, SIGTERM 143.

    \b
      POST   /run              {"code": ..., "session"?, "timeout"?, "stdin"?} -> run --json object
                               (Accept: application/x-ndjson: progress lines, then the result)
      GET    /sessions         open sessions: id, runs, idle_seconds, busy
      DELETE /sessions/ID      close a session
      GET    /skills           the skills sandboxed code may call
    """
    exit_on_signals_while_starting()
    try:
        from agentbox.server import http_server
    except ImportError as error:
        from agentbox._version import DISTRIBUTION

        raise UsageError(
            f"agentbox serve needs Starlette and uvicorn ({error}): "
            f"pip install '{DISTRIBUTION}[serve]'"
        ) from None
    from agentbox.server.sessions import SessionManager
    from agentbox.server.warming import Warming

    try:
        sock = http_server.listen(port)
    except OSError as error:
        raise UsageError(f"cannot listen on 127.0.0.1:{port}: {error.strerror}") from None
    options["sandbox_extra"] = {"pool_size": pool_size}
    sandbox = build_sandbox(ctx, progress=echo_progress, **options)
    sessions = SessionManager(sandbox, idle_timeout=session_idle, max_sessions=max_sessions)
    token = secrets.token_urlsafe(32)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    click.echo(f"agentbox serve: listening on {url}")
    click.echo(f"token: {token}")
    click.echo(
        f"try: curl -H 'Authorization: Bearer {token}' -d '{{\"code\": \"print(1)\"}}' {url}/run"
    )
    warming = Warming(sandbox)  # with an empty cache: it listens while the guest compiles
    try:
        stopped_by = http_server.serve(
            http_server.create_app(sandbox, sessions, token, warming), sock
        )
    finally:
        sessions.close_all()
        sandbox.close()
    sys.exit(for_stop_signal(stopped_by))
