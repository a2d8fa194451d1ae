"""The MCP stdio transport: newline-delimited JSON-RPC over the process's stdin and stdout.

The SDK's own `stdio_server` goes through anyio's file wrapper, which runs every readline, write
and flush on a worker thread: three thread hops per call, ~0.4 ms of each round trip here. When
stdin and stdout are pipes or sockets (how MCP clients start a server) on POSIX, this transport
reads and writes them on the event loop instead; anything else on POSIX (a terminal, a file)
it reads and writes on worker threads, as the SDK does. Windows gets the SDK's transport. All
hand the server the same streams: each line parsed into a `SessionMessage`, or the exception
that says why it is not one.

On POSIX it refuses what the SDK's passes on: a line longer than `MAX_REQUEST_BYTES` is skipped
as it arrives (never held whole in memory) and becomes `RequestTooLarge`, and a request whose id
is not a string or an integer (the SDK takes it for a notification, which gets no reply) becomes
`InvalidRequest`; the server answers both with a JSON-RPC error.

Like the SDK's, it takes the wire off fds 0 and 1 while serving (fd 0 then reads /dev/null,
fd 1 writes to stderr), so nothing else in the process can read a request or write into the
replies, and puts both back on exit.
"""

import asyncio
import errno
import json
import os
import stat
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import BinaryIO, Protocol

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage
from mcp.types import JSONRPCNotification, jsonrpc_message_adapter

from agentbox.limits import MAX_REQUEST_BYTES

_STDIN_FD, _STDOUT_FD, _STDERR_FD = 0, 1, 2
_READ_CHUNK = 1 << 16


class RequestTooLarge(ValueError):
    """A request line longer than `MAX_REQUEST_BYTES` (skipped, not parsed)."""


class InvalidRequest(ValueError):
    """JSON-RPC, but not a valid message (answered with -32600)."""


Streams = tuple[
    MemoryObjectReceiveStream[SessionMessage | Exception], MemoryObjectSendStream[SessionMessage]
]


class _Wire(Protocol):
    async def read(self) -> bytes:
        """The next bytes from the client; b"" at the end."""

    async def write(self, data: bytes) -> None:
        """All of `data` to the client; ConnectionError once it stopped reading."""


class _LoopWire:
    """Pipes or sockets, read and written on the event loop."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self) -> bytes:
        return await self._reader.read(_READ_CHUNK)

    async def write(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()


class _ThreadWire:
    """Anything else (a terminal, a file), read and written with blocking calls on worker
    threads, as the SDK's transport does."""

    def __init__(self, wire_in: BinaryIO, wire_out: BinaryIO) -> None:
        self._in = wire_in.fileno()
        self._out = wire_out.fileno()

    async def read(self) -> bytes:
        try:
            return await anyio.to_thread.run_sync(
                os.read, self._in, _READ_CHUNK, abandon_on_cancel=True
            )
        except OSError as error:
            if error.errno == errno.EIO:  # the terminal hung up: the end, as EOF is
                return b""
            raise

    async def write(self, data: bytes) -> None:
        await anyio.to_thread.run_sync(_write_all, self._out, data)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


@asynccontextmanager
async def stdio_streams() -> AsyncIterator[Streams]:
    """The server's read and write streams over stdin/stdout, for as long as the block runs."""
    if sys.platform == "win32":
        async with stdio_server() as streams:
            yield streams
        return
    on_the_loop = _both_ends_are_pipes()
    with _wire_taken_off_std_fds() as (wire_in, wire_out):
        if on_the_loop:
            async with _loop_wire(wire_in, wire_out) as wire, _served(wire) as streams:
                yield streams
        else:
            async with _served(_ThreadWire(wire_in, wire_out)) as streams:
                yield streams


@asynccontextmanager
async def _loop_wire(wire_in: BinaryIO, wire_out: BinaryIO) -> AsyncIterator[_LoopWire]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    read_transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), wire_in
    )
    write_transport, write_protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, wire_out
    )
    try:
        # drain() then waits until a reply is in the pipe, so none is left behind at exit.
        write_transport.set_write_buffer_limits(high=0)
        yield _LoopWire(reader, asyncio.StreamWriter(write_transport, write_protocol, None, loop))
    finally:
        read_transport.close()
        write_transport.close()


@asynccontextmanager
async def _served(wire: _Wire) -> AsyncIterator[Streams]:
    """Lines from `wire` parsed into the read stream; replies from the write stream to `wire`."""
    inbound_writer, inbound = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    outbound, outbound_reader = anyio.create_memory_object_stream[SessionMessage](0)

    async def read_requests() -> None:
        async with inbound_writer:
            async for line in _lines(wire):
                await inbound_writer.send(_parse(line) if isinstance(line, bytes) else line)

    async def write_replies(tasks: anyio.abc.TaskGroup) -> None:
        async with outbound_reader:
            async for message in outbound_reader:
                data = message.message.model_dump_json(by_alias=True, exclude_unset=True)
                try:
                    await wire.write(data.encode("utf-8") + b"\n")
                except ConnectionError:  # the client stopped reading: nobody to serve
                    tasks.cancel_scope.cancel()
                    return

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(read_requests)
        tasks.start_soon(write_replies, tasks)
        yield inbound, outbound


def _parse(line: bytes) -> SessionMessage | Exception:
    """As the SDK's transport does: undecodable bytes become U+FFFD before JSON parsing."""
    try:
        text = line.decode("utf-8", errors="replace")
        message = jsonrpc_message_adapter.validate_json(text, by_name=False)
        if isinstance(message, JSONRPCNotification):
            _refuse_a_request_with_a_bad_id(text)
        return SessionMessage(message)
    except Exception as error:  # noqa: BLE001 - answered with a JSON-RPC error by the server
        return error


def _refuse_a_request_with_a_bad_id(text: str) -> None:
    """A notification has no `id`: one that has is a request whose id the SDK dropped because
    it is not a string or an integer (MCP's RequestId); silence would leave the client waiting.
    Parsed again only here: notifications are rare."""
    if "id" in json.loads(text):
        raise InvalidRequest("the request id must be a string or an integer")


async def _lines(wire: _Wire) -> AsyncIterator[bytes | RequestTooLarge]:
    """Each line read, and a last unterminated one; a line longer than `MAX_REQUEST_BYTES` is
    dropped as it arrives (so memory stays bounded) and reported as `RequestTooLarge`."""
    pending = bytearray()
    skipping = False
    while chunk := await wire.read():
        start = len(pending)
        pending += chunk
        while (end := pending.find(b"\n", start)) >= 0:
            yield _too_large() if skipping or end > MAX_REQUEST_BYTES else bytes(pending[:end])
            skipping = False
            del pending[: end + 1]
            start = 0
        if skipping or len(pending) > MAX_REQUEST_BYTES:
            skipping = True
            pending.clear()
    if skipping:
        yield _too_large()
    elif pending.strip():
        yield bytes(pending)


def _too_large() -> RequestTooLarge:
    return RequestTooLarge(f"the request line is longer than {MAX_REQUEST_BYTES} bytes")


def _both_ends_are_pipes() -> bool:
    if sys.platform == "win32":
        return False
    try:
        modes = [os.fstat(fd).st_mode for fd in (_STDIN_FD, _STDOUT_FD)]
    except OSError:
        return False
    return all(stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) for mode in modes)


@contextmanager
def _wire_taken_off_std_fds() -> Iterator[tuple[BinaryIO, BinaryIO]]:
    """Private descriptors for the wire, with fds 0 and 1 pointed elsewhere until exit."""
    private = {fd: os.dup(fd) for fd in (_STDIN_FD, _STDOUT_FD)}
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(null, _STDIN_FD)
        os.dup2(_STDERR_FD, _STDOUT_FD)
        yield (
            os.fdopen(private[_STDIN_FD], "rb", buffering=0, closefd=False),
            os.fdopen(private[_STDOUT_FD], "wb", buffering=0, closefd=False),
        )
    finally:
        os.close(null)
        for fd, wire in private.items():
            os.dup2(wire, fd)
            os.set_blocking(fd, True)  # the event loop made the file description non-blocking
            os.close(wire)
