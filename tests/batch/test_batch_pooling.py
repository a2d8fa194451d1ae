"""Batch workers' pooled memory slots: a worker never runs out of them. Runs abandoned at their
deadline inside a host call keep their slot until the call returns; once they hold all but
one, the worker exits, is replaced, and its task runs on the replacement."""

import dataclasses

from agentbox.batch import run_batch
from agentbox.batch.api import settings_from
from agentbox.engines.wasm.pooling import slots_for

# Blocks inside a host call (WASI poll), where the deadline cannot interrupt it: the run is
# abandoned at its deadline and its thread, with its instance's slot, stays stuck.
STUCK = "import select\nselect.select([], [], [], 60)\n"


def test_runs_stuck_in_host_calls_never_exhaust_the_slots() -> None:
    stuck = slots_for(1) + 1  # one more than the slots: the last must find none free
    tasks = [{"id": f"stuck{n}", "code": STUCK} for n in range(stuck)]
    tasks.append({"id": "after", "code": "print('ok')"})
    settings = dataclasses.replace(settings_from(timeout=1), pooling=True)
    results = {r.id: r for r in run_batch(tasks, workers=1, settings=settings)}
    assert len(results) == stuck + 1
    for n in range(stuck):
        result = results[f"stuck{n}"]
        assert result.limit == "timeout" and result.error is None, result
    assert results["after"].stdout == "ok\n", results["after"]
