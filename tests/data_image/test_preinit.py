"""The pre-initialiser on small modules written here in WAT: the snapshot behaves as the
instance did after its initialisation, and what it cannot carry is refused."""

from typing import Any

import pytest
import wasmtime

from agentbox.engines.wasm.data_image import preinit
from agentbox.engines.wasm.data_image import wasm_binary as wb
from agentbox.exit_codes import ExitCode

# Start sets `started` to 1, _initialize (the constructors) adds 10; init bumps globals of four types, grows memory by two pages, writes at odd offsets (one
# write past the initial page, one that zeroes part of a data segment), counts its runs.
COUNTER = """
(module
  (import "env" "seed" (func $seed (result i32)))
  (memory (export "memory") 1 8)
  (global $n (mut i32) (i32.const 0))
  (global $big (mut i64) (i64.const 0))
  (global $x (mut f32) (f32.const 0))
  (global $y (mut f64) (f64.const 0))
  (global $k i32 (i32.const 77))
  (global $started (mut i32) (i32.const 0))
  (data (i32.const 5) "hello")
  (data (i32.const 4097) "odd\\00\\00gap")
  (func $start (global.set $started (i32.const 1)))
  (start $start)
  (func (export "wizer.initialize")
    (global.set $n (call $seed))
    (global.set $big (i64.const -8000000000))
    (global.set $x (f32.const 1.5))
    (global.set $y (f64.const -0.125))
    (drop (memory.grow (i32.const 2)))
    (i32.store8 (i32.const 131071) (i32.const 42))
    (i32.store8 (i32.const 4098) (i32.const 0))
    (i32.store (i32.const 70001) (i32.const 0x01020304)))
  (func (export "_initialize")
    (global.set $started (i32.add (global.get $started) (i32.const 10))))
  (func (export "count") (result i32)
    (global.set $n (i32.add (global.get $n) (i32.const 1)))
    (global.get $n))
  (func (export "big") (result i64) (global.get $big))
  (func (export "x") (result f32) (global.get $x))
  (func (export "y") (result f64) (global.get $y))
  (func (export "k") (result i32) (global.get $k))
  (func (export "started") (result i32) (global.get $started))
  (func (export "pages") (result i32) (memory.size)))
"""


def _linker(engine: wasmtime.Engine, seed: int = 41) -> wasmtime.Linker:
    linker = wasmtime.Linker(engine)
    linker.define_func("env", "seed", wasmtime.FuncType([], [wasmtime.ValType.i32()]), lambda: seed)
    return linker


def _snapshot(wat: str, **options: Any) -> tuple[bytes, preinit.Report]:
    engine = wasmtime.Engine()
    module = wasmtime.wat2wasm(wat)
    return preinit.preinitialize(module, engine, _linker(engine), wasmtime.Store(engine), **options)


def _instance(module: bytes, seed: int = 0) -> tuple[wasmtime.Store, Any]:
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    instance = _linker(engine, seed).instantiate(store, wasmtime.Module(engine, module))
    return store, instance.exports(store)


def test_the_snapshot_behaves_as_the_initialised_instance() -> None:
    snapshot, report = _snapshot(COUNTER)
    store, exports = _instance(snapshot, seed=0)  # a different seed: init does not run again
    assert exports["count"](store) == 42  # 41 from init, +1
    assert exports["big"](store) == -8000000000
    assert exports["x"](store) == 1.5 and exports["y"](store) == -0.125
    assert exports["k"](store) == 77 and exports["started"](store) == 11  # start, then _initialize
    assert exports["pages"](store) == 3
    memory = exports["memory"]
    assert memory.read(store, 5, 10) == b"hello"
    assert memory.read(store, 4097, 4105) == b"o\x00d\x00\x00gap"  # an odd offset, changed
    assert memory.read(store, 70001, 70005) == b"\x04\x03\x02\x01"
    assert memory.read(store, 131071, 131072) == b"\x2a"
    assert report.memory_pages == 3 and report.globals_set == 5


def test_the_snapshot_drops_the_init_exports_and_the_start_section() -> None:
    snapshot, _ = _snapshot(COUNTER)
    sections = wb.parse_sections(snapshot)
    names = {e.name for e in wb.parse_exports(wb.find(sections, wb.EXPORT).payload)}  # type: ignore[union-attr]
    assert "wizer.initialize" not in names and "_initialize" not in names
    assert {"count", "memory", "pages"} <= names
    assert not any(name.startswith("__agentbox") for name in names)  # instrumentation is gone
    assert wb.find(sections, wb.START) is None
    (limits,) = wb.parse_memories(wb.find(sections, wb.MEMORY).payload)  # type: ignore[union-attr]
    assert (limits.minimum, limits.maximum) == (3, 8)


def test_the_original_module_is_not_preinitialised() -> None:
    """Positive control: without the snapshot the same calls give the initial state."""
    store, exports = _instance(wasmtime.wat2wasm(COUNTER))
    assert exports["count"](store) == 1 and exports["pages"](store) == 1


def test_zero_runs_split_segments_and_small_gaps_merge() -> None:
    memory = bytes(100) + b"ab" + bytes(5) + b"cd" + bytes(100) + b"e" + bytes(3)
    assert preinit.nonzero_runs(memory, gap=32) == [(100, 109), (209, 210)]
    assert preinit.nonzero_runs(memory, gap=4) == [(100, 102), (107, 109), (209, 210)]
    assert preinit.nonzero_runs(memory, gap=4, limit=2) == [(100, 109), (209, 210)]
    assert preinit.nonzero_runs(bytes(64)) == []
    assert preinit.nonzero_runs(b"\0\0x\0y\0") == [(2, 5)]


def test_the_data_count_section_stays_consistent() -> None:
    """A module with bulk-memory instructions carries a data-count section: it must count the
    snapshot's segments, or the engine refuses the module."""
    wat = COUNTER.replace(
        '(func (export "k")',
        '(func (export "fill") (memory.fill (i32.const 0) (i32.const 0) (i32.const 0)))\n'
        '  (func (export "drop0") (data.drop 0))\n  (func (export "k")',
    )
    snapshot, report = _snapshot(wat)
    sections = wb.parse_sections(snapshot)
    count = wb.find(sections, wb.DATA_COUNT)
    assert count is not None and wb.count_of(count.payload) == report.segments
    _instance(snapshot)  # it validates and instantiates


def test_after_init_runs_before_the_snapshot() -> None:
    def more(instance: Any, store: wasmtime.Store) -> None:
        instance.exports(store)["count"](store)

    snapshot, _ = _snapshot(COUNTER, after_init=more)
    store, exports = _instance(snapshot)
    assert exports["count"](store) == 43


GROWS_TABLE = """
(module
  (memory 1)
  (table $t 1 funcref)
  (func (export "wizer.initialize") (drop (table.grow $t (ref.null func) (i32.const 1)))))
"""
PASSIVE = """
(module
  (memory 1)
  (data $p "late")
  (func (export "wizer.initialize") (memory.init $p (i32.const 0) (i32.const 0) (i32.const 4))))
"""
V128_GLOBAL = """
(module
  (memory 1)
  (global (mut v128) (v128.const i32x4 0 0 0 0))
  (func (export "wizer.initialize")))
"""
TWO_MEMORIES = """
(module (memory 1) (memory 1) (func (export "wizer.initialize")))
"""
TRAPS = """
(module (memory 1) (func (export "wizer.initialize") unreachable))
"""


@pytest.mark.parametrize(
    "wat, reason",
    [
        (GROWS_TABLE, "table 0 changed size during initialisation"),
        (PASSIVE, "passive data segments"),
        (V128_GLOBAL, "mutable global 0 is a v128"),
        (TWO_MEMORIES, "defines 2 memories"),
        (TRAPS, "the initialisation failed"),
    ],
)
def test_what_cannot_be_snapshotted_is_refused(wat: str, reason: str) -> None:
    with pytest.raises(preinit.PreinitError, match=reason) as caught:
        _snapshot(wat)
    assert caught.value.exit_code == ExitCode.IMAGE


def test_a_table_that_keeps_its_size_is_accepted() -> None:
    """Positive control for the table refusal: the same module without the growth."""
    snapshot, _ = _snapshot(
        GROWS_TABLE.replace("(drop (table.grow $t (ref.null func) (i32.const 1)))", "")
    )
    _instance(snapshot)
