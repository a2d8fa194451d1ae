"""Reading and writing the parts of a WebAssembly core module the pre-initialiser touches.

Only what a Wizer-style snapshot needs: LEB128, the section list (every section kept as bytes,
so parse-then-emit gives back the same module byte for byte), and the import, table, memory,
global, export, start, data-count and data sections. Function bodies are never decoded.
Standard library only; a malformed module raises `WasmFormatError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, replace

MAGIC = b"\x00asm\x01\x00\x00\x00"

CUSTOM, TYPE, IMPORT, FUNCTION, TABLE, MEMORY, GLOBAL, EXPORT = 0, 1, 2, 3, 4, 5, 6, 7
START, ELEMENT, CODE, DATA, DATA_COUNT, TAG = 8, 9, 10, 11, 12, 13

# External kinds (imports and exports).
FUNC_KIND, TABLE_KIND, MEMORY_KIND, GLOBAL_KIND, TAG_KIND = 0, 1, 2, 3, 4

# Value types of globals.
I32, I64, F32, F64, V128, FUNCREF, EXTERNREF = 0x7F, 0x7E, 0x7D, 0x7C, 0x7B, 0x70, 0x6F
VALUE_TYPE_NAMES = {
    I32: "i32",
    I64: "i64",
    F32: "f32",
    F64: "f64",
    V128: "v128",
    FUNCREF: "funcref",
    EXTERNREF: "externref",
}

_END = 0x0B


class WasmFormatError(ValueError):
    """The bytes are not a module this reader understands (truncated, malformed, unsupported)."""


# --- LEB128 -------------------------------------------------------------------------------


def encode_unsigned(value: int) -> bytes:
    """Minimal unsigned LEB128."""
    if value < 0:
        raise ValueError(f"unsigned LEB128 of a negative number: {value}")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_signed(value: int) -> bytes:
    """Minimal signed LEB128."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7  # arithmetic shift: -1 stays -1
        done = (value == 0 and not byte & 0x40) or (value == -1 and byte & 0x40)
        out.append(byte if done else byte | 0x80)
        if done:
            return bytes(out)


class Reader:
    """A cursor over bytes, reading LEB128 numbers, names and raw spans; errors name the offset."""

    def __init__(self, data: bytes, offset: int = 0, end: int | None = None) -> None:
        self.data = data
        self.offset = offset
        self.end = len(data) if end is None else end

    def at_end(self) -> bool:
        return self.offset >= self.end

    def byte(self) -> int:
        if self.offset >= self.end:
            raise WasmFormatError(f"unexpected end of data at byte {self.offset}")
        value = self.data[self.offset]
        self.offset += 1
        return value

    def take(self, count: int) -> bytes:
        if count < 0 or self.offset + count > self.end:
            raise WasmFormatError(f"{count} bytes wanted at byte {self.offset}: past the end")
        chunk = self.data[self.offset : self.offset + count]
        self.offset += count
        return bytes(chunk)

    def _leb128(self, bits: int) -> tuple[int, int, int]:
        """The raw value, its bit length and its last byte (the sign is the caller's)."""
        result = shift = 0
        start = self.offset
        while True:
            byte = self.byte()
            result |= (byte & 0x7F) << shift
            shift += 7
            if shift > bits + 6:  # more than ceil(bits / 7) bytes
                raise WasmFormatError(f"LEB128 longer than {bits} bits at byte {start}")
            if not byte & 0x80:
                return result, shift, byte

    def unsigned(self, bits: int = 32) -> int:
        start = self.offset
        result, _, _ = self._leb128(bits)
        if result >= 1 << bits:
            raise WasmFormatError(f"LEB128 out of range for u{bits} at byte {start}")
        return result

    def signed(self, bits: int = 32) -> int:
        start = self.offset
        result, shift, byte = self._leb128(bits)
        if byte & 0x40:
            result -= 1 << shift
        if not -(1 << (bits - 1)) <= result < 1 << (bits - 1):
            raise WasmFormatError(f"LEB128 out of range for s{bits} at byte {start}")
        return result

    def name(self) -> str:
        raw = self.take(self.unsigned())
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise WasmFormatError(f"a name that is not UTF-8 before byte {self.offset}") from error


def _vector(items: list[bytes]) -> bytes:
    return encode_unsigned(len(items)) + b"".join(items)


def _name(text: str) -> bytes:
    raw = text.encode("utf-8")
    return encode_unsigned(len(raw)) + raw


# --- Sections -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    """One section as bytes. `size_encoding` keeps the size's LEB128 as the file spelt it (a
    linker may pad it), so an untouched section is written back unchanged."""

    id: int
    payload: bytes
    size_encoding: bytes | None = None

    def encode(self) -> bytes:
        size = self.size_encoding
        if size is None or Reader(size).unsigned() != len(self.payload):
            size = encode_unsigned(len(self.payload))
        return bytes([self.id]) + size + self.payload


def parse_sections(module: bytes) -> list[Section]:
    """The module's sections in file order (custom ones included)."""
    if module[:8] != MAGIC:
        raise WasmFormatError("not a WebAssembly core module (magic number and version 1)")
    reader = Reader(module, 8)
    sections = []
    while not reader.at_end():
        section_id = reader.byte()
        size_start = reader.offset
        size = reader.unsigned()
        size_encoding = module[size_start : reader.offset]
        sections.append(Section(section_id, reader.take(size), size_encoding))
    return sections


def emit_sections(sections: list[Section]) -> bytes:
    return MAGIC + b"".join(section.encode() for section in sections)


def find(sections: list[Section], section_id: int) -> Section | None:
    """The (non-custom) section with this id, if the module has one."""
    return next((s for s in sections if s.id == section_id), None)


def put(sections: list[Section], section: Section) -> list[Section]:
    """`sections` with `section` replacing the one of its id, or inserted in the standard order."""
    out = list(sections)
    for index, existing in enumerate(out):
        if existing.id == section.id:
            out[index] = section
            return out
    rank = _ORDER.index(section.id)
    for index, existing in enumerate(out):
        if existing.id != CUSTOM and _ORDER.index(existing.id) > rank:
            out.insert(index, section)
            return out
    out.append(section)
    return out


def without(sections: list[Section], section_id: int) -> list[Section]:
    return [s for s in sections if s.id != section_id]


# The binary order of known sections (the data-count section sits before code, tags after
# memory).
_ORDER = (
    TYPE,
    IMPORT,
    FUNCTION,
    TABLE,
    MEMORY,
    TAG,
    GLOBAL,
    EXPORT,
    START,
    ELEMENT,
    DATA_COUNT,
    CODE,
    DATA,
)


# --- Limits, constant expressions ---------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """A table's or memory's limits; `flags` keeps shared/64-bit bits as written."""

    minimum: int
    maximum: int | None
    flags: int

    def encode(self) -> bytes:
        out = bytes([self.flags]) + encode_unsigned(self.minimum)
        if self.maximum is not None:
            out += encode_unsigned(self.maximum)
        return out


def _limits(reader: Reader) -> Limits:
    flags = reader.byte()
    if flags & ~0x07:
        raise WasmFormatError(f"unknown limits flags {flags:#x}")
    bits = 64 if flags & 0x04 else 32
    minimum = reader.unsigned(bits)
    maximum = reader.unsigned(bits) if flags & 0x01 else None
    return Limits(minimum, maximum, flags)


def _const_expr(reader: Reader) -> bytes:
    """A constant expression's bytes, its final `end` included (validated by the engine)."""
    start = reader.offset
    while True:
        op = reader.byte()
        if op == _END:
            return reader.data[start : reader.offset]
        if op == 0x41:  # i32.const
            reader.signed(32)
        elif op == 0x42:  # i64.const
            reader.signed(64)
        elif op == 0x43:  # f32.const
            reader.take(4)
        elif op == 0x44:  # f64.const
            reader.take(8)
        elif op in (0x23, 0xD2):  # global.get, ref.func
            reader.unsigned()
        elif op == 0xD0:  # ref.null t
            reader.byte()
        elif op in (0x6A, 0x6B, 0x6C, 0x7C, 0x7D, 0x7E):  # extended-const arithmetic
            pass
        elif op == 0xFD:  # v128.const
            if reader.unsigned() != 12:
                raise WasmFormatError(f"a SIMD instruction in a constant at byte {start}")
            reader.take(16)
        else:
            raise WasmFormatError(f"opcode {op:#x} in a constant expression at byte {start}")


def const_i32(value: int) -> bytes:
    return b"\x41" + encode_signed(_wrap(value, 32)) + b"\x0b"


def const_of(value_type: int, value: int | float) -> bytes:
    """The constant expression giving `value` (ints taken modulo 2**bits, as the engine stores
    them)."""
    if value_type == I32:
        return const_i32(int(value))
    if value_type == I64:
        return b"\x42" + encode_signed(_wrap(int(value), 64)) + b"\x0b"
    if value_type == F32:
        return b"\x43" + struct.pack("<f", float(value)) + b"\x0b"
    if value_type == F64:
        return b"\x44" + struct.pack("<d", float(value)) + b"\x0b"
    raise WasmFormatError(f"no constant for a {VALUE_TYPE_NAMES.get(value_type, value_type)}")


def _wrap(value: int, bits: int) -> int:
    """`value` as a signed `bits`-bit integer (the engine may hand it back unsigned)."""
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def i32_of_const(expr: bytes) -> int | None:
    """The value of `i32.const N; end`, or None for any other expression."""
    reader = Reader(expr)
    if reader.byte() != 0x41:
        return None
    value = reader.signed(32)
    return value if reader.byte() == _END and reader.at_end() else None


# --- Imports ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Import:
    module: str
    name: str
    kind: int
    description: bytes  # the type as written (function type index, limits, global type, tag)


def parse_imports(payload: bytes) -> list[Import]:
    reader = Reader(payload)
    imports = []
    for _ in range(reader.unsigned()):
        module, name, kind = reader.name(), reader.name(), reader.byte()
        start = reader.offset
        if kind == FUNC_KIND:
            reader.unsigned()
        elif kind == TABLE_KIND:
            reader.byte()
            _limits(reader)
        elif kind == MEMORY_KIND:
            _limits(reader)
        elif kind == GLOBAL_KIND:
            reader.byte()
            reader.byte()
        elif kind == TAG_KIND:
            reader.byte()
            reader.unsigned()
        else:
            raise WasmFormatError(f"import kind {kind} of {module}.{name}")
        imports.append(Import(module, name, kind, payload[start : reader.offset]))
    _check_end(reader, "import")
    return imports


def emit_imports(imports: list[Import]) -> bytes:
    return _vector(
        [_name(i.module) + _name(i.name) + bytes([i.kind]) + i.description for i in imports]
    )


def imported(sections: list[Section], kind: int) -> list[Import]:
    section = find(sections, IMPORT)
    return [] if section is None else [i for i in parse_imports(section.payload) if i.kind == kind]


# --- Tables and memories ------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    element_type: int
    limits: Limits


def parse_tables(payload: bytes) -> list[Table]:
    reader = Reader(payload)
    tables = []
    for _ in range(reader.unsigned()):
        element_type = reader.byte()
        if element_type == 0x40:
            raise WasmFormatError("a table with an initialiser expression is not supported")
        tables.append(Table(element_type, _limits(reader)))
    _check_end(reader, "table")
    return tables


def emit_tables(tables: list[Table]) -> bytes:
    return _vector([bytes([t.element_type]) + t.limits.encode() for t in tables])


def parse_memories(payload: bytes) -> list[Limits]:
    reader = Reader(payload)
    memories = [_limits(reader) for _ in range(reader.unsigned())]
    _check_end(reader, "memory")
    return memories


def emit_memories(memories: list[Limits]) -> bytes:
    return _vector([m.encode() for m in memories])


# --- Globals ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Global:
    value_type: int
    mutable: bool
    init: bytes  # the constant expression, `end` included


def parse_globals(payload: bytes) -> list[Global]:
    reader = Reader(payload)
    globals_ = []
    for _ in range(reader.unsigned()):
        value_type = reader.byte()
        mutability = reader.byte()
        if mutability not in (0, 1):
            raise WasmFormatError(f"global mutability byte {mutability}")
        globals_.append(Global(value_type, bool(mutability), _const_expr(reader)))
    _check_end(reader, "global")
    return globals_


def emit_globals(globals_: list[Global]) -> bytes:
    return _vector([bytes([g.value_type, int(g.mutable)]) + g.init for g in globals_])


# --- Exports ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Export:
    name: str
    kind: int
    index: int


def parse_exports(payload: bytes) -> list[Export]:
    reader = Reader(payload)
    exports = [
        Export(reader.name(), reader.byte(), reader.unsigned()) for _ in range(reader.unsigned())
    ]
    _check_end(reader, "export")
    return exports


def emit_exports(exports: list[Export]) -> bytes:
    return _vector([_name(e.name) + bytes([e.kind]) + encode_unsigned(e.index) for e in exports])


# --- Data ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataSegment:
    """A data segment. Active: `offset` is its constant expression (memory `memory`); passive:
    `offset` is None."""

    data: bytes
    offset: bytes | None
    memory: int = 0
    flags: int = field(default=0, compare=False)

    @property
    def passive(self) -> bool:
        return self.offset is None


def parse_data(payload: bytes) -> list[DataSegment]:
    reader = Reader(payload)
    segments = []
    for _ in range(reader.unsigned()):
        flags = reader.unsigned()
        if flags == 0:
            offset = _const_expr(reader)
            segments.append(DataSegment(reader.take(reader.unsigned()), offset, 0, flags))
        elif flags == 1:
            segments.append(DataSegment(reader.take(reader.unsigned()), None, 0, flags))
        elif flags == 2:
            memory = reader.unsigned()
            offset = _const_expr(reader)
            segments.append(DataSegment(reader.take(reader.unsigned()), offset, memory, flags))
        else:
            raise WasmFormatError(f"data segment flags {flags}")
    _check_end(reader, "data")
    return segments


def emit_data(segments: list[DataSegment]) -> bytes:
    items = []
    for s in segments:
        if s.offset is None:
            head = encode_unsigned(1)
        elif s.memory or s.flags == 2:
            head = encode_unsigned(2) + encode_unsigned(s.memory) + s.offset
        else:
            head = encode_unsigned(0) + s.offset
        items.append(head + encode_unsigned(len(s.data)) + s.data)
    return _vector(items)


def active(offset: int, data: bytes) -> DataSegment:
    """An active segment of memory 0 at `offset`."""
    return DataSegment(data, const_i32(offset))


def count_of(payload: bytes) -> int:
    """The leading count of a vector section (data count, start's function index too)."""
    return Reader(payload).unsigned()


# --- The name section ----------------------------------------------------------------------


def function_names(sections: list[Section]) -> dict[str, int]:
    """name -> function index, from the `name` custom section's function names (empty when the
    module has none: names are optional)."""
    names: dict[str, int] = {}
    for section in sections:
        if section.id != CUSTOM:
            continue
        reader = Reader(section.payload)
        if reader.name() != "name":
            continue
        while not reader.at_end():
            subsection = reader.byte()
            size = reader.unsigned()
            if subsection != 1:
                reader.take(size)
                continue
            inner = Reader(reader.take(size))
            for _ in range(inner.unsigned()):
                index = inner.unsigned()
                names.setdefault(inner.name(), index)
    return names


def _check_end(reader: Reader, what: str) -> None:
    if not reader.at_end():
        raise WasmFormatError(f"{reader.end - reader.offset} stray bytes after the {what} section")


def with_payload(section: Section, payload: bytes) -> Section:
    """`section` with a new payload (its size then re-encoded minimally)."""
    return replace(section, payload=payload, size_encoding=None)
