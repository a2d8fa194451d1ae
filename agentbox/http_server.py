"""`agentbox serve`: the same runs and sessions as `agentbox mcp`, over local HTTP with a token.

Starlette routes on uvicorn (both come with the MCP SDK). Every request needs the bearer token
the server printed at start: anything on the machine can reach 127.0.0.1, so the token is what
keeps other local processes (and web pages doing DNS rebinding) from running code here.
Runs happen on worker threads, so one slow script never blocks other requests.
"""

import hmac
import json
import socket
from dataclasses import asdict
from typing import Any

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from agentbox.admission import Admission, ServerBusyError
from agentbox.limits import MAX_REQUEST_BYTES
from agentbox.result import RunResult
from agentbox.sandbox import Sandbox
from agentbox.sessions import SessionManager

_RUN_FIELDS: dict[str, type | tuple[type, ...]] = {
    "code": str,
    "session": str,
    "timeout": (int, float),
    "stdin": str,
}


class BearerAuth:
    """Refuses any request without `Authorization: Bearer <token>` (constant-time compare)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                response = JSONResponse(
                    {"error": "missing or wrong bearer token"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _run_request(request: Request) -> dict[str, Any]:
    """The /run body, checked: a JSON object with `code` and optional session/timeout/stdin."""
    body = bytearray()
    async for chunk in request.stream():  # counted as it arrives: no size header is trusted
        body += chunk
        if len(body) > MAX_REQUEST_BYTES:
            raise BadRequest(f"request body is larger than {MAX_REQUEST_BYTES} bytes", 413)
    try:
        data = json.loads(body)
    except ValueError as error:
        raise BadRequest(f"the body is not JSON: {error}") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    unknown = set(data) - set(_RUN_FIELDS)
    if unknown:
        raise BadRequest(f"unknown fields: {', '.join(sorted(unknown))}")
    if "code" not in data:
        raise BadRequest("missing field: code")
    for name, value in data.items():
        if value is None and name != "code":
            continue
        if isinstance(value, bool) or not isinstance(value, _RUN_FIELDS[name]):
            raise BadRequest(f"field {name!r} has the wrong type")
    if data.get("timeout") is not None and not data["timeout"] > 0:
        raise BadRequest("timeout must be a positive number of seconds")
    return data


def _run_json(result: RunResult, session: str | None, notices: list[str]) -> dict[str, Any]:
    return {
        **result.to_json(),
        "ok": result.ok,
        "session": session,
        "session_reset": result.session_reset,
        "notices": notices,
    }


def create_app(sandbox: Sandbox, sessions: SessionManager, token: str) -> Starlette:
    """The HTTP API: POST /run, GET /sessions, DELETE /sessions/{id}, GET /skills. Every run
    passes the server caps (`Admission`) first."""
    max_timeout = sandbox.limits.timeout
    gate = Admission()

    def execute(data: dict[str, Any]) -> dict[str, Any]:
        timeout = data.get("timeout")
        timeout = min(timeout, max_timeout) if timeout is not None else None
        stdin, session = data.get("stdin") or "", data.get("session")
        with gate.admitted(one_shot=session is None):
            if session is None:
                return _run_json(sandbox.run(data["code"], stdin=stdin, timeout=timeout), None, [])
            run = sessions.run(session, data["code"], stdin=stdin, timeout=timeout)
            return _run_json(run.result, session, run.notices)

    async def run(request: Request) -> Response:
        try:
            data = await _run_request(request)
            return JSONResponse(await anyio.to_thread.run_sync(execute, data))
        except BadRequest as error:
            return _error(str(error), error.status)
        except ServerBusyError as error:  # a cap: every session busy, too many runs held
            return _error(str(error), 503)
        except ValueError as error:  # a bad session id
            return _error(str(error), 400)

    async def list_sessions(request: Request) -> Response:
        listed = await anyio.to_thread.run_sync(sessions.list_sessions)
        return JSONResponse(
            {
                "sessions": [asdict(info) for info in listed],
                "max_sessions": sessions.max_sessions,
                "idle_timeout_seconds": sessions.idle_timeout,
            }
        )

    async def close_session(request: Request) -> Response:
        session = request.path_params["session"]
        closed = await anyio.to_thread.run_sync(sessions.close, session)
        return JSONResponse(
            {"session": session, "closed": closed}, status_code=200 if closed else 404
        )

    async def list_skills(request: Request) -> Response:
        return JSONResponse({"skills": sandbox.skills.specs()})

    return Starlette(
        routes=[
            Route("/run", run, methods=["POST"]),
            Route("/sessions", list_sessions, methods=["GET"]),
            Route("/sessions/{session:path}", close_session, methods=["DELETE"]),
            Route("/skills", list_skills, methods=["GET"]),
        ],
        middleware=[Middleware(BearerAuth, token=token)],
    )


def listen(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1 only (port 0: any free port).

    It listens before the server loop starts, so a client that read the printed URL can connect
    at once (its connection waits in the backlog).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen()
    return sock


def serve(app: Starlette, sock: socket.socket) -> None:
    """Serve until interrupted (Ctrl-C / SIGTERM)."""
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])
