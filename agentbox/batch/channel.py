"""A message channel over a socket: pickled objects, each framed by its length.

What the batch driver and its worker processes say to each other. Not `multiprocessing`'s
Connection: the single-file binary leaves multiprocessing out (agentbox/_pyinstaller), and
this is all the batch needs. Only the driver and the workers it started are at either end;
the sandboxed code never sees the socket.
"""

import contextlib
import pickle
import selectors
import socket
from collections.abc import Sequence
from typing import Any

_HEADER = 8


class Channel:
    def __init__(self, sock: socket.socket) -> None:
        self._socket = sock
        self._socket.setblocking(True)

    @classmethod
    def from_descriptor(cls, descriptor: int) -> "Channel":
        return cls(socket.socket(fileno=descriptor))

    def fileno(self) -> int:
        return self._socket.fileno()

    def send(self, message: Any) -> None:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        self._socket.sendall(len(data).to_bytes(_HEADER, "big") + data)

    def recv(self) -> Any:
        """The next message; EOFError once the other end is closed (or died)."""
        size = int.from_bytes(self._read(_HEADER), "big")
        return pickle.loads(self._read(size))

    def poll(self, timeout: float) -> bool:
        return bool(wait([self], timeout))

    def _read(self, size: int) -> bytes:
        chunks = []
        while size:
            try:
                chunk = self._socket.recv(min(size, 1 << 20))
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise EOFError("the other end of the channel closed")
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._socket.close()


def wait(channels: Sequence[Channel], timeout: float) -> list[Channel]:
    """The channels with something to read (or closed), after at most `timeout` seconds."""
    if not channels:
        return []
    with selectors.DefaultSelector() as selector:
        for channel in channels:
            selector.register(channel.fileno(), selectors.EVENT_READ, channel)
        return [key.data for key, _ in selector.select(timeout)]
