"""Host memory stays bounded whatever the script sends through the bridge: the skill call log
and the strings the guest hands to host functions. Each attack runs in a child process the test
starts, which reports its own peak RSS (`ru_maxrss`) before and after; the bounds are generous
(they hold on any machine) and the unfixed host went far past them."""

import json
import subprocess
import sys
import textwrap

import pytest

from agentbox.skills import MAX_RECORDED_CALLS, MAX_RECORDED_NAME_CHARS
from tests.helpers import HANG_GUARD_SECONDS

MIB = 1024 * 1024
# Generous: the unfixed host grew by gigabytes on these attacks.
LOG_GROWTH_BOUND = 200 * MIB

# The child: runs CODE once to load everything, then the attack, and reports the result and
# its peak RSS before and after (the attack's own peak, whenever it happened).
_MEASURE = textwrap.dedent(
    """
    import json, resource, sys
    from agentbox import Sandbox

    def echo(value=None):
        return value

    def peak():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    engine, options, attack = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
    box = Sandbox(engine=engine, timeout=600, skills=[echo], **options)
    box.run("import sys\\nprint(call_skill('echo', 1))\\nsys.stdout.write('x' * 100000)")
    before = peak()
    result = box.run(attack)
    report = json.dumps(result.to_json())
    print(json.dumps({"growth": peak() - before, "result": json.loads(report)}))
    """
)


def measure(engine: str, attack: str, **options: object) -> tuple[int, dict]:
    """(peak RSS growth of the host process during the attack, the run's `--json` report)."""
    completed = subprocess.run(
        [sys.executable, "-c", _MEASURE, engine, json.dumps(options), attack],
        capture_output=True,
        timeout=HANG_GUARD_SECONDS * 5,
    )
    assert completed.returncode == 0, completed.stderr.decode()[-2000:]
    report = json.loads(completed.stdout)
    return report["growth"], report["result"]


LOG_FLOOD_CALLS = 3000
# Each call names a 100 KB skill that does not exist: refused, but (before the fix) recorded
# with its whole name, twice (name and error), and past the call cap too.
LOG_FLOOD = textwrap.dedent(
    f"""
    name = 'n' * 100000
    for i in range({LOG_FLOOD_CALLS}):
        try:
            call_skill(name + str(i))
        except Exception:
            pass
    """
)


@pytest.mark.parametrize("engine", ["wasm", "restricted", "asteval"])
def test_the_skill_call_log_is_bounded(engine: str) -> None:
    growth, result = measure(engine, LOG_FLOOD)
    # The attack ran: every call reached the host (the log kept the first ones, with the
    # guest's long names cut, and counted the rest).
    assert result["exit_code"] == 0, result
    calls = result["skill_calls"]
    assert len(calls) == MAX_RECORDED_CALLS
    assert result["skill_calls_unrecorded"] == LOG_FLOOD_CALLS - MAX_RECORDED_CALLS
    assert calls[0]["name"].startswith("n" * MAX_RECORDED_NAME_CHARS + "...[")
    assert all(len(call["name"]) < MAX_RECORDED_NAME_CHARS + 40 for call in calls)
    assert all(len(call["error"]) < 1100 for call in calls)
    assert "were not recorded" in result["message"]
    assert growth < LOG_GROWTH_BOUND, f"host RSS grew by {growth / MIB:.0f} MiB"
