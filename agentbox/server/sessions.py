"""Named sessions for long-lived hosts (`agentbox mcp`, `agentbox serve`).

Clients name their sessions with strings: the same id reaches the same interpreter, different ids
never share state. Interpreters hold memory, so the manager bounds them two ways:

- idle expiry: a session unused for `idle_timeout` seconds is closed. Expiry is checked on every
  access and by one sleeping thread that wakes only at the next deadline (never polls).
- a cap: at most `max_sessions` live at once. Opening one more closes the least recently used
  idle session (it is reported, see below). If every session is running a script, the new one is
  refused with `SessionLimitError` instead: a running script is never cut short to make room.

A session is never expired or evicted while a run is using it, and closing one that is running
a script takes effect when the script returns (the caller does not wait). When a client comes
back to a session that expired or was evicted, it gets a fresh interpreter and a notice saying
why its state is gone, so an agent does not silently lose its variables.
"""

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agentbox.input_files import FilesArgument
from agentbox.output import OutputCallback
from agentbox.result import RunResult
from agentbox.server.admission import ServerBusyError
from agentbox.session import Session

if TYPE_CHECKING:
    from agentbox.sandbox import Sandbox

logger = logging.getLogger("agentbox.server.sessions")

DEFAULT_IDLE_TIMEOUT_SECONDS = 600.0
DEFAULT_MAX_SESSIONS = 32
MAX_SESSION_ID_LENGTH = 200
# How many expired/evicted ids are remembered to explain a lost state on the next call.
_REMEMBERED_ENDINGS = 1024


class SessionLimitError(ServerBusyError):
    """No session can be opened: the cap is reached and every session is running a script."""


@dataclass(frozen=True)
class SessionInfo:
    """What `SessionManager.list_sessions()` reports about one session."""

    id: str
    runs: int
    idle_seconds: float
    busy: bool


@dataclass(frozen=True)
class SessionRun:
    """A session run's result plus what happened to sessions on the way (for the client)."""

    result: RunResult
    notices: list[str] = field(default_factory=list)


@dataclass
class _Entry:
    session: Session
    last_used: float
    busy: int = 0
    """Runs using the session now (waiting or running); never expired or evicted while > 0."""
    dropped: bool = False
    """Removed from the manager while busy: closed when its last run returns."""


class SessionManager:
    """Thread-safe map of string ids to `Session`s with idle expiry and an LRU-evicting cap."""

    def __init__(
        self,
        sandbox: "Sandbox",
        *,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT_SECONDS,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if idle_timeout <= 0:
            raise ValueError("idle_timeout must be positive")
        if max_sessions < 1:
            raise ValueError("max_sessions must be at least 1")
        self.sandbox = sandbox
        self.idle_timeout = idle_timeout
        self.max_sessions = max_sessions
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()  # least recently used first
        self._endings: OrderedDict[str, str] = OrderedDict()
        self._changed = threading.Condition(threading.Lock())
        self._closed = False
        self._reaper: threading.Thread | None = None
        self._reaper_sleeps_forever = False

    def run(
        self,
        session_id: str,
        code: str | bytes,
        *,
        stdin: bytes | str = b"",
        timeout: float | None = None,
        files: FilesArgument = None,
        on_output: OutputCallback | None = None,
    ) -> SessionRun:
        """Run `code` in the session `session_id`, opening it first if needed."""
        with self._checked_out(session_id) as (session, notices):
            result = session.run(
                code, stdin=stdin, timeout=timeout, files=files, on_output=on_output
            )
            return SessionRun(result, notices)

    async def run_async(
        self,
        session_id: str,
        code: str | bytes,
        *,
        stdin: bytes | str = b"",
        timeout: float | None = None,
        files: FilesArgument = None,
        on_output: OutputCallback | None = None,
    ) -> SessionRun:
        """`run` for asyncio hosts (the MCP server): awaited without blocking the loop."""
        with self._checked_out(session_id) as (session, notices):
            result = await session.run_async(
                code, stdin=stdin, timeout=timeout, files=files, on_output=on_output
            )
            return SessionRun(result, notices)

    def close(self, session_id: str) -> bool:
        """Close a session (after its running script, if any); False if there was none."""
        with self._changed:
            entry = self._entries.pop(session_id, None)
            self._endings.pop(session_id, None)
            if entry is not None:
                self._drop_locked(entry)
        return entry is not None

    def list_sessions(self) -> list[SessionInfo]:
        """The live sessions, least recently used first."""
        with self._changed:
            self._expire_locked()
            now = self._clock()
            return [
                SessionInfo(
                    id=session_id,
                    runs=entry.session.runs,
                    idle_seconds=0.0 if entry.busy else round(now - entry.last_used, 3),
                    busy=entry.busy > 0,
                )
                for session_id, entry in self._entries.items()
            ]

    def close_all(self) -> None:
        """Close every session and stop the expiry thread (the manager is unusable after)."""
        with self._changed:
            self._closed = True
            for entry in self._entries.values():
                self._drop_locked(entry)
            self._entries.clear()
            self._changed.notify_all()

    @contextmanager
    def _checked_out(self, session_id: str) -> Iterator[tuple[Session, list[str]]]:
        """The session, marked busy (never expired or evicted) until the block ends."""
        entry, notices = self._checkout(session_id)
        try:
            yield entry.session, notices
        finally:
            self._checkin(entry)

    def _checkout(self, session_id: str) -> tuple[_Entry, list[str]]:
        if not isinstance(session_id, str) or not session_id:
            raise ValueError("a session id must be a non-empty string")
        if len(session_id) > MAX_SESSION_ID_LENGTH:
            raise ValueError(f"a session id must be at most {MAX_SESSION_ID_LENGTH} characters")
        notices: list[str] = []
        with self._changed:
            if self._closed:
                raise RuntimeError("the session manager is closed")
            self._expire_locked()
            entry = self._entries.get(session_id)
            if entry is None:
                if len(self._entries) >= self.max_sessions:
                    notices.append(self._evict_locked())
                ending = self._endings.pop(session_id, None)
                if ending is not None:
                    notices.insert(0, f"session {session_id!r} {ending}; this is a new interpreter")
                entry = _Entry(self.sandbox.session(), self._clock())
                self._entries[session_id] = entry
                self._start_reaper_locked()
            self._entries.move_to_end(session_id)
            entry.busy += 1
        return entry, notices

    def _checkin(self, entry: _Entry) -> None:
        with self._changed:
            entry.busy -= 1
            entry.last_used = self._clock()
            if entry.dropped and not entry.busy:
                entry.session.close()
            if self._reaper_sleeps_forever:  # else it wakes by itself before this deadline
                self._changed.notify_all()

    def _drop_locked(self, entry: _Entry) -> None:
        """Close an unregistered entry now, or when its last run returns if it is busy (the
        manager's own bookkeeping; `Session.close` alone would also let a running script end)."""
        if entry.busy:
            entry.dropped = True
        else:
            entry.session.close()

    def _evict_locked(self) -> str:
        victim_id = next((key for key, entry in self._entries.items() if not entry.busy), None)
        if victim_id is None:
            raise SessionLimitError(
                f"all {self.max_sessions} sessions are running scripts; close one with "
                "close_session or try again when one finishes"
            )
        self._entries.pop(victim_id).session.close()
        self._remember_locked(
            victim_id,
            f"was closed to make room (at most {self.max_sessions} sessions; "
            "the least recently used goes first)",
        )
        logger.info("evicted session %r (max_sessions=%d)", victim_id, self.max_sessions)
        return f"session {victim_id!r} was closed to make room for this one"

    def _expire_locked(self) -> list[str]:
        now = self._clock()
        expired = [
            session_id
            for session_id, entry in self._entries.items()
            if not entry.busy and now - entry.last_used >= self.idle_timeout
        ]
        for session_id in expired:
            self._entries.pop(session_id).session.close()
            self._remember_locked(session_id, f"expired after {self.idle_timeout:g} s idle")
        return expired

    def _remember_locked(self, session_id: str, ending: str) -> None:
        self._endings[session_id] = ending
        while len(self._endings) > _REMEMBERED_ENDINGS:
            self._endings.popitem(last=False)

    def _start_reaper_locked(self) -> None:
        if self._reaper is None:
            self._reaper = threading.Thread(
                target=self._reap, name="agentbox-session-expiry", daemon=True
            )
            self._reaper.start()

    def _reap(self) -> None:
        """Sleep until the next idle deadline (or a change), then expire; never polls."""
        with self._changed:
            while not self._closed:
                self._expire_locked()
                idle = [e.last_used for e in self._entries.values() if not e.busy]
                self._reaper_sleeps_forever = not idle
                if idle:
                    self._changed.wait(max(min(idle) + self.idle_timeout - self._clock(), 0.0))
                else:
                    self._changed.wait()
