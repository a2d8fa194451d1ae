"""`agentbox serve`: the same runs and sessions as `agentbox mcp`, over local HTTP with a token.

Starlette routes on uvicorn (both come with the MCP SDK). Every request needs the bearer token
the server printed at start: anything on the machine can reach 127.0.0.1, so the token is what
keeps other local processes (and web pages doing DNS rebinding) from running code here.
Runs happen on worker threads, so one slow script never blocks other requests.

Processes without the token can still open connections. So that they cannot lock the token
holder out (before: ~1000 idle half-written requests did, and logged ~600k lines), each
connection must send a complete request head within `HTTP_HEAD_TIMEOUT_SECONDS` of opening (or
of its previous response), at most `MAX_HTTP_CONNECTIONS` are open at once (a new one closes
the connection that has waited longest for its head), and uvicorn's and asyncio's warnings are
summarised (`agentbox.server.log_summary`) instead of one line per request.
"""

import asyncio
import codecs
import hmac
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import asdict
from types import FrameType
from typing import Any, ClassVar

import anyio
import h11
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from agentbox.errors import AgentboxError, UsageError
from agentbox.input_files import from_wire
from agentbox.limits import HTTP_HEAD_TIMEOUT_SECONDS, MAX_HTTP_CONNECTIONS, MAX_REQUEST_BYTES
from agentbox.output import OutputCallback
from agentbox.result import RunResult
from agentbox.sandbox import Sandbox
from agentbox.server.admission import Admission, ServerBusyError
from agentbox.server.log_summary import quiet_server_logs
from agentbox.server.progress import with_progress
from agentbox.server.sessions import SessionManager
from agentbox.server.warming import Warming

# `POST /run` with `Accept: application/x-ndjson`: one JSON object per line, progress events
# while the run goes on, then the result.
STREAM_MEDIA_TYPE = "application/x-ndjson"
RUNNING_MESSAGE = "running"
STREAMS = ("stdout", "stderr")

_RUN_FIELDS: dict[str, type | tuple[type, ...]] = {
    "code": str,
    "session": str,
    "timeout": (int, float),
    "stdin": str,
    "files": list,
}


class BearerAuth:
    """Refuses any request without `Authorization: Bearer <token>` (constant-time compare; the
    scheme is case-insensitive, RFC 7235)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self._authorized(scope):
            response = JSONResponse(
                {"error": "missing or wrong bearer token"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        scheme, _, credentials = dict(scope["headers"]).get(b"authorization", b"").partition(b" ")
        given = credentials.strip(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(given, self.expected)


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
    try:
        data["files"] = from_wire(data.get("files") or [])
    except UsageError as error:
        raise BadRequest(str(error)) from None
    return data


def _run_json(result: RunResult, session: str | None, notices: list[str]) -> dict[str, Any]:
    return {
        **result.to_json(file_contents=True),
        "ok": result.ok,
        "session": session,
        "session_reset": result.session_reset,
        "notices": notices,
    }


def _wants_stream(request: Request) -> bool:
    return STREAM_MEDIA_TYPE in request.headers.get("accept", "")


def _ndjson(event: dict[str, Any]) -> bytes:
    return (json.dumps(event) + "\n").encode()


def create_app(
    sandbox: Sandbox, sessions: SessionManager, token: str, warming: Warming | None = None
) -> Starlette:
    """The HTTP API: POST /run, GET /sessions, DELETE /sessions/{id}, GET /skills. Every run
    passes the server caps (`Admission`) first, and waits for `warming` (the guest loading in
    the background) if it has not finished."""
    max_timeout = sandbox.limits.timeout
    gate = Admission()
    warming = warming if warming is not None else Warming(sandbox)

    def execute(data: dict[str, Any], on_output: OutputCallback | None = None) -> dict[str, Any]:
        timeout = data.get("timeout")
        timeout = min(timeout, max_timeout) if timeout is not None else None
        stdin, session = data.get("stdin") or "", data.get("session")
        options = {
            "stdin": stdin,
            "timeout": timeout,
            "files": data["files"],
            "on_output": on_output,
        }
        with gate.admitted(one_shot=session is None):
            if session is None:
                return _run_json(sandbox.run(data["code"], **options), None, [])
            run = sessions.run(session, data["code"], **options)
            return _run_json(run.result, session, run.notices)

    async def stream(data: dict[str, Any]) -> AsyncIterator[bytes]:
        """The streamed /run: progress events while the run goes on, then its result (or the
        error a plain /run would answer with a status code)."""
        started = time.monotonic()
        events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

        async def report(_elapsed: float, message: str) -> None:
            elapsed = round(time.monotonic() - started, 3)
            await events.put({"event": "progress", "elapsed_seconds": elapsed, "message": message})

        loop = asyncio.get_running_loop()
        decoders = {name: codecs.getincrementaldecoder("utf-8")("replace") for name in STREAMS}

        def on_output(name: str, data: bytes) -> None:
            """On the run's thread: each piece of output as an event, in order."""
            event = {"event": "output", "stream": name, "data": decoders[name].decode(data)}
            loop.call_soon_threadsafe(events.put_nowait, event)

        async def produce() -> None:
            try:
                await warming.wait(report)
                result = await with_progress(
                    lambda: anyio.to_thread.run_sync(execute, data, on_output),
                    report,
                    RUNNING_MESSAGE,
                )
                await events.put({"event": "result", **result})
            except ServerBusyError as error:
                await events.put({"event": "error", "error": str(error), "status": 503})
            except (ValueError, AgentboxError) as error:  # a bad session id, too big files
                await events.put({"event": "error", "error": str(error), "status": 400})
            finally:
                await events.put(None)

        producer = asyncio.create_task(produce())
        try:
            while (event := await events.get()) is not None:
                yield _ndjson(event)
        finally:
            producer.cancel()  # the client left: a run on its thread still ends at its deadline

    async def run(request: Request) -> Response:
        try:
            data = await _run_request(request)
            if _wants_stream(request):
                return StreamingResponse(stream(data), media_type=STREAM_MEDIA_TYPE)
            await warming.wait()  # not on a worker thread: those stay free for other requests
            return JSONResponse(await anyio.to_thread.run_sync(execute, data))
        except BadRequest as error:
            return _error(str(error), error.status)
        except ServerBusyError as error:  # a cap: every session busy, too many runs held
            return _error(str(error), 503)
        except (ValueError, AgentboxError) as error:  # a bad session id, too big files
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


class _GuardedH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 connection with the two bounds it lacks: a deadline for each request
    head, and a cap on open connections."""

    max_connections: ClassVar[int] = MAX_HTTP_CONNECTIONS
    head_timeout: ClassVar[float] = HTTP_HEAD_TIMEOUT_SECONDS

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._head_timer: asyncio.TimerHandle | None = None
        self._await_head()
        if len(self._open_connections()) > self.max_connections:
            self._make_room()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        super().connection_lost(exc)

    def _await_head(self) -> None:
        """From now on, the next request head must arrive within `head_timeout`."""
        if self._head_timer is not None:
            self._head_timer.cancel()
        self.waiting_since = self.loop.time()
        self._head_timer = self.loop.call_later(self.head_timeout, self._close_if_waiting)

    def waiting_for_head(self) -> bool:
        return self.conn.their_state is h11.IDLE and not self.transport.is_closing()

    def _close_if_waiting(self) -> None:
        if self.waiting_for_head():
            self.transport.close()

    def _open_connections(self) -> list["_GuardedH11Protocol"]:
        """This server's connections not yet closing (all of them are of this class)."""
        return [
            c
            for c in self.connections
            if isinstance(c, _GuardedH11Protocol) and not c.transport.is_closing()
        ]

    def _make_room(self) -> None:
        """Close the connection that has waited longest for a request head; this new one if
        every other is in the middle of a request."""
        waiting = [c for c in self._open_connections() if c is not self and c.waiting_for_head()]
        oldest = min(waiting, key=lambda c: c.waiting_since, default=self)
        oldest.transport.close()


class _Server(uvicorn.Server):
    """uvicorn's server, which stops on the first SIGINT or SIGTERM and records it, instead of
    raising the signal again once stopped (which Click would report as "aborted", exit 2, or
    SIGTERM would end the process by the signal)."""

    stopped_by: int | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.stopped_by is None:
            self.stopped_by = sig
        super().handle_exit(sig, frame)
        self._captured_signals.clear()


def serve(app: Starlette, sock: socket.socket) -> int | None:
    """Serve until SIGINT (Ctrl-C) or SIGTERM, and return that signal's number; no
    per-request log lines."""
    quiet_server_logs("agentbox serve", "uvicorn", "asyncio")
    config = uvicorn.Config(
        app,
        http=_GuardedH11Protocol,
        # Also how many connections asyncio accepts in one go, before any can be closed.
        backlog=MAX_HTTP_CONNECTIONS,
        log_config=None,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
    server = _Server(config)
    server.run(sockets=[sock])
    return server.stopped_by
