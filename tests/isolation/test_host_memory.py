"""Host memory stays bounded whatever the script sends through the bridge: the skill call log
and the strings the guest hands to host functions. Each attack runs in a child process the test
starts, which reports its own peak RSS (`ru_maxrss`) before and after; the bounds are generous
(they hold on any machine) and the unfixed host went far past them."""

import json
import subprocess
import sys
import textwrap

import pytest

from agentbox import Sandbox
from agentbox.skills.bridge import MAX_RECORDED_CALLS, MAX_RECORDED_NAME_CHARS
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
    assert calls[0]["name"].startswith("n" * (MAX_RECORDED_NAME_CHARS // 2))
    assert all("...[" in call["name"] for call in calls)  # cut, and marked as cut
    assert all(len(call["name"]) < MAX_RECORDED_NAME_CHARS + 40 for call in calls)
    assert all(len(call["error"]) < 1100 for call in calls)
    assert "were not recorded" in result["message"]
    assert growth < LOG_GROWTH_BOUND, f"host RSS grew by {growth / MIB:.0f} MiB"


BIG = 120_000_000
# What the guest itself holds during each attack: the string, and a second copy of it (the
# UTF-8 text that `sys.stdout` encodes, or that the bindings lower for a host call). Its memory
# is the guest's (bounded by --memory), so each attack is compared with this control.
GUEST_SIDE = f"s = 'x' * {BIG}\nb = s.encode()\nprint(len(s), len(b))"
RAW = "from wit_world.imports import host\n"
# What the host may still add per call, whatever the guest sends (pieces of 64 KiB, slack).
HOST_SLACK = 64 * MIB
# wasmtime lifts a string argument and its C API copies it before any host code runs (see
# agentbox/engines/wasm/guest_strings.py): a script that calls the raw bindings costs the host 2x its string.
WASMTIME_COPIES = 2 * BIG + HOST_SLACK

HOST_CALL_FLOODS = {
    "print": (f"import sys\nsys.stdout.write('x' * {BIG})", HOST_SLACK),
    "raw write-output": (
        RAW + f"host.write_output(host.OutputTarget.STDOUT, 'x' * {BIG})",
        WASMTIME_COPIES,
    ),
    "raw skill data": (
        RAW + f"try:\n    host.call_skill('echo', 'x' * {BIG})\n"
        "except Exception as e:\n    print(e.value)",
        WASMTIME_COPIES,
    ),
    "raw skill name": (
        RAW + f"try:\n    host.call_skill('x' * {BIG}, '1')\n"
        "except Exception as e:\n    print(e.value[:30])",
        WASMTIME_COPIES,
    ),
}


@pytest.fixture(scope="module")
def guest_side_growth() -> int:
    growth, result = measure("wasm", GUEST_SIDE, max_output="1K")
    assert result["stdout"] == f"{BIG} {BIG}\n"
    return growth


@pytest.mark.parametrize("attack", HOST_CALL_FLOODS, ids=HOST_CALL_FLOODS.keys())
def test_a_huge_string_sent_to_the_host_is_not_copied_whole(
    guest_side_growth: int, attack: str
) -> None:
    """The unfixed host copied each such string three or four more times (~700 MiB more for
    a 120 MB write with --max-output 1K)."""
    code, bound = HOST_CALL_FLOODS[attack]
    growth, result = measure("wasm", code, max_output="1K")
    # The attack ran: the string reached the host, which kept what the limits allow.
    if attack in ("print", "raw write-output"):
        assert result["stdout"] == "x" * 1024
        assert f"{BIG - 1024} bytes beyond the 1024-byte limit" in result["message"]
    elif attack == "raw skill data":
        assert (
            result["stdout"] == "data for skill 'echo' is larger than the limit (1048576 bytes)\n"
        )
    else:
        assert result["stdout"].startswith("no skill named 'xxxxxxxx")
        assert result["skill_calls"][0]["name"].endswith(f"...[{BIG} bytes in all]")
    extra = growth - guest_side_growth
    assert extra < bound, f"the host added {extra / MIB:.0f} MiB (bound {bound / MIB:.0f} MiB)"


def test_output_read_in_pieces_arrives_intact() -> None:
    """The host reads a write in 64 KiB pieces of UTF-8: characters split across pieces, and
    writes the guest splits in pieces of its own, come out whole."""
    text = ("é€😀x" * 70_000)[:250_003]
    box = Sandbox(max_output="4M")
    code = f"import sys\nsys.stdout.write({text!r})\nsys.stdout.flush()\n" + RAW
    code += f"host.write_output(host.OutputTarget.STDERR, {text.encode()!r}.decode('latin-1'))"
    result = box.run(code)
    assert (result.exit_code, result.truncated) == (0, False), result.stderr[-500:]
    assert result.stdout == text
    assert result.stderr_bytes == text.encode()
