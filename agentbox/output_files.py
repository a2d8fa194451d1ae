"""Files a script leaves in `/output`, collected by the host within caps: a script cannot make
the host hold more than `max_output_files` bytes or MAX_OUTPUT_FILE_COUNT files of them."""

import dataclasses
import mimetypes
import threading

from agentbox.limits import MAX_OUTPUT_FILE_COUNT, MAX_OUTPUT_NAME_BYTES
from agentbox.result import OutputFile, RunResult

# Shown in messages: at most this many names of dropped files.
_NAMES_SHOWN = 5
_EXTRA_TYPES = {".webp": "image/webp", ".svg": "image/svg+xml", ".csv": "text/csv"}


def media_type(name: str) -> str:
    """The media type a file's name suggests (never its content: the script chose both)."""
    suffix = name.rsplit("/", 1)[-1].rpartition(".")[2].lower()
    extra = _EXTRA_TYPES.get(f".{suffix}")
    if extra:
        return extra
    guessed, _ = mimetypes.guess_type(f"x.{suffix}", strict=False) if suffix else (None, None)
    return guessed or "application/octet-stream"


class OutputFiles:
    """Receives `/output` piece by piece; keeps whole files only, within the caps."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._kept: dict[str, bytearray] = {}
        self._current: str | None = None
        self._used = 0
        self.dropped: list[str] = []
        self.dropped_count = 0
        self._lock = threading.Lock()

    def start(self, name: str | None, shown: str) -> bool:
        """A new file named `name` (None: its name was too long to read); False: not kept."""
        with self._lock:
            self._current = None
            if name is None or len(name.encode("utf-8")) > MAX_OUTPUT_NAME_BYTES:
                return self._drop(shown)
            if len(self._kept) >= MAX_OUTPUT_FILE_COUNT or name in self._kept:
                return self._drop(shown)
            self._kept[name] = bytearray()
            self._current = name
            return True

    def append(self, piece: bytes) -> bool:
        with self._lock:
            if self._current is None:
                return False
            if self._used + len(piece) > self._max_bytes:
                name, self._current = self._current, None
                self._used -= len(self._kept.pop(name))
                return self._drop(name)
            self._kept[self._current] += piece
            self._used += len(piece)
            return True

    def _drop(self, name: str) -> bool:
        self.dropped_count += 1
        if len(self.dropped) < _NAMES_SHOWN:
            self.dropped.append(name)
        return False

    def files(self) -> list[OutputFile]:
        with self._lock:
            return [
                OutputFile(name=name, data=bytes(data), media_type=media_type(name))
                for name, data in self._kept.items()
            ]

    def message(self) -> str | None:
        if not self.dropped_count:
            return None
        names = ", ".join(repr(name) for name in self.dropped)
        more = "" if self.dropped_count <= len(self.dropped) else ", ..."
        return (
            f"{self.dropped_count} files in /output were not returned (over the "
            f"{self._max_bytes}-byte total of --max-output-files, {MAX_OUTPUT_FILE_COUNT} files, "
            f"or a name over {MAX_OUTPUT_NAME_BYTES} bytes): {names}{more}"
        )


def with_files(result: RunResult, files: OutputFiles) -> RunResult:
    """`result` with the files collected, and any dropped named in its message."""
    collected = files.files()
    note = files.message()
    if not collected and note is None:
        return result
    message = "; ".join(part for part in (result.message, note) if part) or None
    return dataclasses.replace(
        result, files=collected, files_dropped=files.dropped_count, message=message
    )
