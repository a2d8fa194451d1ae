"""`host.call` against a hostile guest: a real wasm module (WAT) linked with agentbox's own
core Linker calls the import with garbage pointers and lengths. Every one is answered with
FAULT (never a trap, a host exception or a write outside memory); a well-formed frame, the
positive control, is answered. Needs no data image: it is the host side alone."""

import struct

import pytest
from wasmtime import Config, Engine, Module, Store, WasiConfig

from agentbox.engines.wasm import door, host_functions
from agentbox.engines.wasm.core_runtime import _linker
from agentbox.engines.wasm.door import FAULT, NO_RUN
from agentbox.output import CappedOutput
from agentbox.skills import SkillSet

# One page of memory; `host_alloc` hands out the bump pointer at 0x8000 (or what `bad_alloc`
# makes it return), and `probe` calls host.call with the four given values.
WAT = """
(module
  (import "host" "call" (func $call (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $alloc_result (mut i32) (i32.const 0x8000))
  (func (export "set_alloc") (param i32) (global.set $alloc_result (local.get 0)))
  (func (export "host_alloc") (param i32) (result i32) (global.get $alloc_result))
  (func (export "probe") (param i32 i32 i32 i32) (result i32)
    (call $call (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (data (i32.const 0x100) "L")
  (data (i32.const 0x110) "O\\01hello")
  (data (i32.const 0x120) "S\\ff\\ff\\ff\\7fname")
  (data (i32.const 0x140) "Zunknown")
)
"""
PAGE = 65536


@pytest.fixture
def guest() -> tuple[Store, object]:
    config = Config()
    config.wasm_exceptions = True
    engine = Engine(config)
    store = Store(engine)
    store.set_wasi(WasiConfig())
    instance = _linker(engine).instantiate(store, Module(engine, WAT))
    return store, instance.exports(store)


@pytest.fixture
def bound() -> object:
    stdout, stderr = CappedOutput(1000, "stdout"), CappedOutput(1000, "stderr")
    host_functions.bind(host_functions.RunBinding(SkillSet().bind_run(), stdout, stderr))
    door.bind(door.TurnState(door.TurnRequest(b"print(1)", "<stdin>", ["<stdin>"], {}, False)))
    yield stdout
    door.bind(None)
    host_functions.bind(None)


def test_a_well_formed_frame_is_answered(guest, bound) -> None:
    store, exports = guest
    assert exports["probe"](store, 0x100, 1, 0x200, 0x204) == 0  # `L`: list skills
    memory = exports["memory"]
    address, length = struct.unpack("<II", bytes(memory.read(store, 0x200, 0x208)))
    assert (address, length) == (0x8000, 3)
    assert bytes(memory.read(store, address, address + length)) == b"\0[]"
    assert exports["probe"](store, 0x110, 7, 0x200, 0x204) == 0  # output reaches the capture
    assert bound.getvalue() == b"hello"


@pytest.mark.parametrize(
    ("ptr", "length", "out_ptr", "out_len"),
    [
        (PAGE - 1, 2, 0x200, 0x204),  # the frame runs past memory
        (0xFFFFFFFF, 1, 0x200, 0x204),  # a negative pointer, as i32
        (0x100, 0xFFFFFFFF, 0x200, 0x204),  # a length of 4 GiB
        (0x100, 0x7FFFFFFF, 0x200, 0x204),
        (0x100, 1, PAGE - 2, 0x204),  # the answer's address cannot be written
        (0x100, 1, 0x200, 0xFFFFFFFF),
        (0x100, 0, 0x200, 0x204),  # an empty frame
        (0x140, 8, 0x200, 0x204),  # an unknown operation
        (0x120, 13, 0x200, 0x204),  # a skill name length past the frame's end
        (0x110, 1, 0x200, 0x204),  # an output frame without its target
    ],
)
def test_garbage_is_a_fault_not_a_trap(guest, bound, ptr, length, out_ptr, out_len) -> None:
    store, exports = guest
    memory = exports["memory"]
    before = bytes(memory.read(store, 0, PAGE))
    assert exports["probe"](store, ptr, length, out_ptr, out_len) == FAULT
    assert bytes(memory.read(store, 0, PAGE)) == before  # nothing was written anywhere
    assert exports["probe"](store, 0x100, 1, 0x200, 0x204) == 0  # and the door still works


@pytest.mark.parametrize("address", [0, PAGE - 1, 0xFFFFFFFF])
def test_an_answer_is_never_written_where_host_alloc_points_outside_memory(
    guest, bound, address
) -> None:
    store, exports = guest
    exports["set_alloc"](store, address)
    memory = exports["memory"]
    before = bytes(memory.read(store, 0, PAGE))
    assert exports["probe"](store, 0x100, 1, 0x200, 0x204) == FAULT
    assert bytes(memory.read(store, 0, PAGE)) == before


def test_a_call_with_no_run_bound_is_refused(guest) -> None:
    store, exports = guest
    assert exports["probe"](store, 0x100, 1, 0x200, 0x204) == NO_RUN
