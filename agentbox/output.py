"""Captured stdout/stderr with a byte cap: a flooding script cannot grow host memory."""

import threading


class CappedOutput:
    """Keeps the first `limit` bytes written; counts (and drops) the rest."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._chunks: list[bytes] = []
        self._kept = 0
        self.dropped = 0
        self._lock = threading.Lock()

    def write(self, data: bytes) -> None:
        with self._lock:
            room = self._limit - self._kept
            if room >= len(data):
                self._chunks.append(bytes(data))
                self._kept += len(data)
                return
            if room > 0:
                self._chunks.append(bytes(data[:room]))
                self._kept += room
            self.dropped += len(data) - max(room, 0)

    @property
    def truncated(self) -> bool:
        return self.dropped > 0

    def getvalue(self) -> bytes:
        with self._lock:
            return b"".join(self._chunks)
