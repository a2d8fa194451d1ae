"""wasmtime's pooling allocator, for processes that run many instances one after another.

A fresh instance normally gets its memory from a new mapping of the guest's copy-on-write
image: every page a run touches is a page fault, and freeing the instance unmaps it all (both
are slow on many virtual machines). With the pooling allocator, instances reuse a fixed set of
slots reserved up front; `keep_resident` bytes of each slot's linear memory stay mapped between
instances and are reset by wasmtime (written back to the image's contents, or to zeros) when an
instance is freed, so the next run in that slot takes no page fault there. The reset writes the
whole resident range whatever the run touched (wasmtime can limit it to the dirty pages only
with `pagemap_scan`, which its C API, and so wasmtime-py, cannot turn on), so it pays only
where page faults cost more than copying the same pages: measure it (`benchmarks/batch.py`).

Pooling does not change compiled code (wasmtime checks that a loaded artifact matches the
engine's settings): the pooled engine loads the same cached guest.

wasmtime-py's `Config` has no setter for it; the C API's functions are in its raw bindings.
"""

from dataclasses import dataclass

from wasmtime import Config
from wasmtime import _ffi as ffi

from agentbox.engines.wasm.abandoned import abandoned_runs
from agentbox.engines.wasm.threads import wait_for_releases
from agentbox.limits import MIB

# Upper bounds per guest instance (the guest is a component of a few core instances, each with
# at most a memory and a few tables); generous, since they only size the reservation.
CORE_INSTANCES_PER_SLOT = 32
MEMORIES_PER_SLOT = 2
TABLES_PER_SLOT = 8
# Tables are small (function references): keep this much of each resident too.
TABLE_KEEP_RESIDENT_BYTES = 1 * MIB
_WASM_PAGE = 64 * 1024
# Slots beyond the instances that run at once: used instances waiting to be freed (off the
# run's path, see `threads`), and runs abandoned at their deadline inside a host call, whose
# instance lives until the call returns.
FREEING_SLOTS = 2
ABANDONED_SLOTS = 2
# How long a run waits for the frees to catch up before its process is declared stuck.
SLOT_WAIT_SECONDS = 30.0


@dataclass(frozen=True)
class PoolingSettings:
    """How many instances may exist at once (`slots`: the ones running, the ones being freed
    and those abandoned at a deadline), the most memory each may grow to, and how much of each
    slot's memory stays resident between instances."""

    slots: int
    memory: int
    keep_resident: int

    def __post_init__(self) -> None:
        if self.slots < 1 or self.memory < 1 or self.keep_resident < 0:
            raise ValueError(f"invalid pooling settings: {self}")


def slots_for(concurrent_runs: int) -> int:
    """The slots a process needs for `concurrent_runs` runs at once."""
    return concurrent_runs + FREEING_SLOTS + ABANDONED_SLOTS


def wait_for_a_slot(settings: PoolingSettings, concurrent_runs: int = 1) -> bool:
    """Before a run: wait until a slot is sure to be free for it (the frees of earlier
    instances may lag behind a fast stream of runs). False when abandoned runs hold so many
    slots that none may free up: this process cannot run more and should be replaced."""
    spare = settings.slots - concurrent_runs - abandoned_runs.held().runs
    if spare < 0:
        return False
    return wait_for_releases(spare, SLOT_WAIT_SECONDS)


def apply(config: Config, settings: PoolingSettings) -> None:
    """Switch `config` to the pooling allocator sized by `settings`."""
    pooling = ffi.wasmtime_pooling_allocation_config_new()
    try:
        slots = settings.slots
        ffi.wasmtime_pooling_allocation_config_total_component_instances_set(pooling, slots)
        ffi.wasmtime_pooling_allocation_config_total_core_instances_set(
            pooling, slots * CORE_INSTANCES_PER_SLOT
        )
        ffi.wasmtime_pooling_allocation_config_total_memories_set(
            pooling, slots * MEMORIES_PER_SLOT
        )
        ffi.wasmtime_pooling_allocation_config_total_tables_set(pooling, slots * TABLES_PER_SLOT)
        ffi.wasmtime_pooling_allocation_config_total_stacks_set(pooling, 0)
        ffi.wasmtime_pooling_allocation_config_total_gc_heaps_set(pooling, 0)
        memory = -(-settings.memory // _WASM_PAGE) * _WASM_PAGE
        ffi.wasmtime_pooling_allocation_config_max_memory_size_set(pooling, memory)
        ffi.wasmtime_pooling_allocation_config_linear_memory_keep_resident_set(
            pooling, min(settings.keep_resident, memory)
        )
        ffi.wasmtime_pooling_allocation_config_table_keep_resident_set(
            pooling, TABLE_KEEP_RESIDENT_BYTES if settings.keep_resident else 0
        )
        ffi.wasmtime_pooling_allocation_config_max_unused_warm_slots_set(pooling, slots)
        # The strategy copies the pooling configuration: it is deleted here either way.
        ffi.wasmtime_pooling_allocation_strategy_set(config.ptr(), pooling)
    finally:
        ffi.wasmtime_pooling_allocation_config_delete(pooling)


def description(settings: PoolingSettings | None) -> str:
    """For logs and benchmark output: what the engine allocates instances with."""
    if settings is None:
        return "on-demand"
    return (
        f"pooling: {settings.slots} slots of {settings.memory // MIB} MiB, "
        f"{settings.keep_resident // MIB} MiB resident"
    )
