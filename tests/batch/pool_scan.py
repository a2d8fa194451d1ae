"""Run as `python tests/batch/pool_scan.py RESIDENT_BYTES` by test_batch_isolation: a batch
worker's pooled engine (`BatchSettings(pooling=True)`), and the host reading every byte of the
pool's linear memories.

A task computes a secret inside the guest (the host never holds it while the scans run: the
scanner compares hashes of candidate windows) and writes it everywhere it can: globals,
module state, the environment, a 64 MiB bytearray, /tmp. Scans of the memory pool, read
through /proc/self/mem:
- while the tampering instance is alive (the positive control: the scan must find it);
- after it is freed (its slot reset);
- while the next instance, in the same slot, runs the check task.
Prints one JSON object.
"""

import hashlib
import json
import sys

from agentbox.batch.runner import BatchSettings, TaskRunner
from agentbox.batch.tasks import Task
from agentbox.engines.base import ScriptRequest
from agentbox.engines.wasm import runtime
from agentbox.engines.wasm.threads import wait_for_releases
from agentbox.limits import MIB, Limits
from agentbox.skills import SkillSet

# The guest computes the secret from this seed; the host knows only the secret's prefix length
# and the hash of the whole, so no copy of the secret exists on the host.
SEED = "agentbox-pooled-slot-secret"
SECRET_LENGTH = 32
PREFIX = hashlib.sha256(SEED.encode()).digest()[:SECRET_LENGTH].hex()[:8].encode()
SECRET_HASH = hashlib.sha256(hashlib.sha256(SEED.encode()).digest()[:SECRET_LENGTH].hex().encode())

TAMPER = f"""
import hashlib, os, sys, builtins
secret = hashlib.sha256({SEED!r}.encode()).digest()[:{SECRET_LENGTH}].hex()
builtins.SECRET = secret
sys.modules["os"].SECRET = secret
os.environ["SECRET"] = secret
sys.path.append(secret)
hoard = bytearray(secret.encode()) * ((64 << 20) // len(secret))
open("/tmp/secret", "w").write(secret)
sys.stdout.write("tampered\\n")
"""

# Looks for the secret in what a program can reach (every string in every container the
# garbage collector tracks, module dictionaries included; the environment; /tmp), without ever
# holding it whole: it compares the hash of every 64-byte window that starts like the secret
# with the secret's hash.
CHECK = f"""
import builtins, gc, hashlib, os, sys
prefix, wanted = {PREFIX!r}, {SECRET_HASH.hexdigest()!r}
def holds(data):
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    start = data.find(prefix)
    while start >= 0:
        if hashlib.sha256(bytes(data[start:start + 64])).hexdigest() == wanted:
            return True
        start = data.find(prefix, start + 1)
    return False
def texts(container):
    items = container.items() if isinstance(container, dict) else container
    for item in items:
        for value in item if isinstance(container, dict) else (item,):
            if isinstance(value, (str, bytes, bytearray)):
                yield value
found = []
for container in gc.get_objects():  # every container, module dicts included: its strings
    if isinstance(container, (dict, list, tuple, set)):
        found += [type(container).__name__ for text in texts(container) if holds(text)]
found += [k for k, v in vars(builtins).items() if isinstance(v, str) and holds(v)]
found += [k for k, v in os.environ.items() if holds(v)]
found += [p for p in sys.path if holds(p)]
found += ["/tmp/" + n for n in os.listdir("/tmp")]
print("clean" if not found else "FOUND " + ",".join(found))
"""


def rw_ranges_in(regions: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The readable-writable mappings inside `regions` (the pool's accessible memories)."""
    ranges = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            span, permissions = line.split()[:2]
            start, end = (int(x, 16) for x in span.split("-"))
            if permissions.startswith("rw") and any(a <= start and end <= b for a, b in regions):
                ranges.append((start, end))
    return ranges


def big_mappings() -> set[tuple[int, int]]:
    spans = set()
    with open("/proc/self/maps") as maps:
        for line in maps:
            start, end = (int(x, 16) for x in line.split()[0].split("-"))
            spans.add((start, end))
    return spans


def scan(regions: list[tuple[int, int]]) -> tuple[int, int, int]:
    """(copies of the secret in the pool's accessible memory, bytes read, where the first
    accessible mapping starts: the slot in use)."""
    copies = read = 0
    first = min((start for start, _ in rw_ranges_in(regions)), default=0)
    with open("/proc/self/mem", "rb", buffering=0) as memory:
        for start, end in rw_ranges_in(regions):
            for offset in range(start, end, 16 * MIB):
                memory.seek(offset)
                chunk = memory.read(min(16 * MIB + 63, end - offset))
                read += min(16 * MIB, end - offset)
                position = chunk.find(PREFIX)
                while 0 <= position < 16 * MIB:  # later ones are the next chunk's
                    window = chunk[position : position + 64]
                    if len(window) == 64 and hashlib.sha256(window).digest() == (
                        SECRET_HASH.digest()
                    ):
                        copies += 1
                    position = chunk.find(PREFIX, position + 1)
    return copies, read, first


def main() -> None:
    resident = int(sys.argv[1])
    limits = Limits(timeout=60, memory=256 * MIB)
    before = big_mappings()
    runner = TaskRunner(BatchSettings(limits=limits, pooling=True, resident_memory=resident))
    pooled = runtime.pooling_in_use()
    # The pool: the mappings of a GiB or more that building the engine added.
    regions = [(a, b) for a, b in big_mappings() - before if b - a >= 1024 * MIB]
    sandbox = runner._sandbox(limits)
    tamperer = sandbox._new_instance()
    tampered = tamperer.run(ScriptRequest(source=TAMPER.encode()), SkillSet().bind_run())
    alive, read_alive, slot_alive = scan(regions)
    tamperer.discard()
    wait_for_releases(0, 60)
    freed, _, _ = scan(regions)
    checker = sandbox._new_instance()
    checked = checker.run(ScriptRequest(source=CHECK.encode()), SkillSet().bind_run())
    during_next, read_next, slot_next = scan(regions)
    checker.discard()
    via_runner = runner.run(Task(id="check", code=CHECK), limits)
    control = runner.run(Task(id="control", code=TAMPER + CHECK), limits)
    print(
        json.dumps(
            {
                "pooling": pooled is not None,
                "regions": len(regions),
                "tampered": tampered.stdout,
                "copies_while_alive": alive,
                "bytes_read_alive": read_alive,
                "copies_after_free": freed,
                "copies_in_next_instance": during_next,
                "bytes_read_next": read_next,
                "check_in_same_slot": checked.stdout,
                "check_next_task": via_runner.stdout,
                "same_slot": slot_alive == slot_next != 0,
                "check_after_tampering_in_one_interpreter": control.stdout,
            }
        )
    )


if __name__ == "__main__":
    main()
