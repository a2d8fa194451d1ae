"""Recycled instances (`Sandbox(recycle=True)`, what batch workers use): one instance runs script
after script, its memory put back to the snapshot after each. Each test attacks that: a script
writes a secret into everything it can reach, and what runs next must find nothing; the memory
after a restore must be byte for byte a new instance's; a run that grew its memory, hit a
limit, or ran too often must not be reused. Each has a positive control showing that the check
finds what it looks for when it is there."""

import ctypes
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import BinaryIO

import pytest

from agentbox import Sandbox
from agentbox.engines.base import RunSettings, ScriptRequest
from agentbox.engines.wasm import compile_cache, recycle
from agentbox.engines.wasm.engine import BaseInstance, WasmEngine
from agentbox.engines.wasm.guest_image import guest_image
from agentbox.engines.wasm.runtime import engine_description
from agentbox.limits import Limits
from agentbox.skills import SkillSet
from tests.helpers import PROCESS_HANG_GUARD_SECONDS

ROOT = Path(__file__).resolve().parent.parent.parent

pytestmark = pytest.mark.skipif(not recycle.supported(), reason="recycling needs Linux")

SECRET = "recycled-instance-secret-7f3a9c"

# Writes the secret everywhere a script reaches without growing the memory (a run that grows it
# is never reused: tested apart), and changes interpreter state a later script could see.
TAMPER = textwrap.dedent(
    f"""
    import builtins, gc, json, os, random, sys
    secret = "".join(["{SECRET[:10]}", "{SECRET[10:]}"])
    builtins.SECRET = secret
    sys.modules["os"].SECRET = secret
    sys.modules["evil"] = type(sys)(secret)
    sys.path.append(secret)
    os.environ["SECRET"] = secret
    json.dumps = lambda *a, **k: secret
    sys.setrecursionlimit(77)
    random.seed(secret)
    gc.disable()
    for path in ("/tmp/" + secret, "/output/" + secret):
        with open(path, "w") as file:
            file.write(secret)
    kept = [secret * 100 for _ in range(20)]
    print("tampered")
    """
)

# Looks for the secret and the changes in every object the interpreter holds. The secret is
# put together inside a function, so no object of the check's own holds it.
CHECK = textwrap.dedent(
    f"""
    import builtins, gc, json, os, random, sys
    def look():
        wanted = "".join(["{SECRET[:10]}", "{SECRET[10:]}"])
        found = []
        if hasattr(builtins, "SECRET"): found.append("builtins")
        if hasattr(os, "SECRET"): found.append("os module")
        if "evil" in sys.modules: found.append("sys.modules")
        if wanted in sys.path: found.append("sys.path")
        if "SECRET" in os.environ: found.append("environ")
        if json.dumps({{}}) != "{{}}": found.append("json")
        if sys.getrecursionlimit() == 77: found.append("recursion limit")
        if not gc.isenabled(): found.append("gc")
        if os.listdir("/tmp") or os.listdir("/output"): found.append("files")
        for thing in gc.get_objects():
            if isinstance(thing, dict) and any(wanted in str(v) for v in list(thing.values())):
                found.append("dict"); break
        return found
    found = look()
    print("FOUND " + ",".join(found) if found else "clean")
    """
)


# What a fresh instance prints for this is the same every time: where its allocator puts new
# objects follows from the snapshot's heap, so a heap left different by an earlier run shows.
HEAP_LAYOUT = (
    "kept = [object() for _ in range(20)] + [bytes(n) for n in (8, 100, 1000, 9000, 70000)]\n"
    "print([id(thing) for thing in kept], len(sys.modules))"
)


def test_the_check_finds_the_tampering_in_one_interpreter() -> None:
    """Positive control for CHECK."""
    result = Sandbox(timeout=30).run(TAMPER + CHECK)
    for part in ("builtins", "os module", "sys.modules", "sys.path", "environ", "json"):
        assert part in result.stdout, result
    assert "recursion limit" in result.stdout and "gc" in result.stdout
    assert "files" in result.stdout and "dict" in result.stdout


def test_a_recycled_instance_holds_nothing_of_the_script_before() -> None:
    sandbox = Sandbox(timeout=30, recycle=True)
    for _ in range(5):
        tampered = sandbox.run(TAMPER)
        assert tampered.stdout == "tampered\n", tampered
        assert [f.name for f in tampered.files] == [SECRET]
        checked = sandbox.run(CHECK)
        assert checked.stdout == "clean\n", checked
    assert sandbox._recycler is not None and sandbox._recycler.reused == 9


def test_heap_layout_after_recycling_is_a_new_instances() -> None:
    fresh = Sandbox(timeout=30).run("import sys\n" + HEAP_LAYOUT)
    assert fresh.exit_code == 0, fresh
    assert Sandbox(timeout=30).run("import sys\n" + HEAP_LAYOUT).stdout == fresh.stdout
    recycled = Sandbox(timeout=30, recycle=True)
    for script in (TAMPER, "x = [str(n) for n in range(5000)]", "import email, csv, decimal"):
        recycled.run(script)
        assert recycled.run("import sys\n" + HEAP_LAYOUT).stdout == fresh.stdout
    # Positive control: in an interpreter that ran something first, the layout differs.
    dirty = Sandbox(timeout=30).run("import sys\nimport email, csv, decimal\n" + HEAP_LAYOUT)
    assert dirty.stdout != fresh.stdout


def _memory_of(instance_settings: RunSettings) -> tuple[BaseInstance, recycle.LinearMemory]:
    instance = WasmEngine().new_instance(instance_settings)
    memory = recycle.LinearMemory.find(instance)
    assert memory is not None, "the instance's memory was not found where expected"
    return instance, memory


def _bytes(memory: recycle.LinearMemory) -> bytes:
    return ctypes.string_at(memory.start, memory.end - memory.start)


def _new_instance_bytes(memory: recycle.LinearMemory, image_file: BinaryIO) -> bytes:
    """What a new instance's memory holds, from the file itself: zeros around the image, which
    wasmtime maps from the compiled file at its offset (read here with a plain read of the
    file the runtime loaded, which the cache may since have replaced under its name)."""
    image = memory.image
    mapped = os.pread(image_file.fileno(), image.end - image.start, image.offset)
    return bytes(image.start - memory.start) + mapped + bytes(memory.end - image.end)


def test_restored_memory_is_byte_for_byte_a_new_instances() -> None:
    settings = RunSettings(limits=Limits(timeout=30))
    used, memory = _memory_of(settings)
    image_file = used.image_file
    assert image_file is not None
    assert _bytes(memory) == _new_instance_bytes(
        memory, image_file
    )  # after the token's run, restored
    result = used.run(ScriptRequest(source=TAMPER.encode()), SkillSet().bind_run())
    assert result.stdout == "tampered\n", result
    written = _bytes(memory)
    assert SECRET.encode() in written  # the positive control: the scan sees the secret
    assert written != _new_instance_bytes(memory, image_file)
    assert memory.restore()
    restored = _bytes(memory)
    assert SECRET.encode() not in restored
    assert restored == _new_instance_bytes(memory, image_file)
    memory.close()
    used.discard()


@pytest.mark.parametrize(
    "script",
    [
        "hoard = bytearray(96 << 20)",  # grows the memory
        "while True: pass",  # hits the timeout
        "import sys; sys.setrecursionlimit(10**6)\ndef f(): f()\nf()",  # crashes the guest
    ],
    ids=["grew-memory", "timeout", "crash"],
)
def test_a_run_that_grew_memory_or_hit_a_limit_is_not_reused(script: str) -> None:
    sandbox = Sandbox(timeout=2, recycle=True)
    assert sandbox.run("print(1)").stdout == "1\n"
    assert sandbox._recycler is not None
    sandbox.run(script)
    assert sandbox._recycler.reused == 1  # the script ran in the recycled instance...
    checked = sandbox.run("import sys\n" + HEAP_LAYOUT)
    assert sandbox._recycler.reused == 1  # ...which was dropped: this ran in a new one
    assert checked.stdout == Sandbox(timeout=30).run("import sys\n" + HEAP_LAYOUT).stdout


def test_an_instance_is_replaced_after_max_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recycle, "MAX_RUNS", 3)
    sandbox = Sandbox(timeout=30, recycle=True)
    for _ in range(7):
        assert sandbox.run("print(1)").stdout == "1\n"
    assert sandbox._recycler is not None
    assert sandbox._recycler.reused == 4  # runs 2, 3, then 5, 6: the 4th and 7th were new


def test_sandboxes_with_mounts_or_the_data_image_are_not_recycled(tmp_path: object) -> None:
    assert Sandbox(recycle=True)._recycler is not None  # the control
    assert Sandbox(recycle=True, mounts=[f"{tmp_path}:/data"])._recycler is None
    assert Sandbox(recycle=True, engine="restricted")._recycler is None


@pytest.mark.skipif(sys.platform != "linux", reason="Linux only")
def test_the_memory_end_probe_tells_mapped_from_unmapped() -> None:
    buffer = ctypes.create_string_buffer(16)
    assert recycle._readable(ctypes.addressof(buffer)) is True
    assert recycle._readable(0) is False


def _mapping(start: int, end: int, perms: str, path: str = "") -> "recycle._Mapping":
    return recycle._Mapping(start, end, perms, 0, (0, 0), 7 if path else 0, path)


def test_only_the_expected_layout_around_the_image_is_restored() -> None:
    """What is restored besides the image must be this memory's: its zero-filled ranges
    between the guard below and the reservation above. Any other neighbour refuses."""
    guard, prefix = _mapping(0, 10, "---p"), _mapping(10, 20, "rw-p")
    image, tail = _mapping(20, 30, "rw-p", "/cache/guest.cwasm"), _mapping(30, 40, "rw-p")
    reservation = _mapping(40, 50, "---p")
    assert recycle._layout([guard, prefix, image, tail, reservation], 2) == (prefix, image, tail)
    close_guard, close_reservation = _mapping(0, 20, "---p"), _mapping(30, 50, "---p")
    assert recycle._layout([close_guard, image, close_reservation], 1) == (None, image, None)
    merged = _mapping(0, 20, "rw-p")  # an unrelated region right below: no guard between
    assert recycle._layout([merged, image, tail, reservation], 1) is None
    gap = _mapping(0, 9, "---p")  # not adjacent
    assert recycle._layout([gap, prefix, image, tail, reservation], 2) is None
    assert recycle._layout([guard, prefix, image, tail], 2) is None  # nothing above
    other_file = _mapping(30, 40, "rw-p", "/somewhere/else")
    assert recycle._layout([guard, prefix, image, other_file, reservation], 2) is None


def _printed_by_a_process(script: str, cache: Path) -> list[str]:
    """What `script` prints, run in a process of its own with `cache` as its compile cache
    (and `HEAP` defined as HEAP_LAYOUT), split in words."""
    done = subprocess.run(
        [sys.executable, "-c", f"HEAP = {HEAP_LAYOUT!r}\n" + script],
        capture_output=True,
        text=True,
        timeout=PROCESS_HANG_GUARD_SECONDS,
        env={**os.environ, "AGENTBOX_CACHE_DIR": str(cache), "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_without_a_usable_cache_every_run_gets_a_new_instance(tmp_path: Path) -> None:
    """A cache folder others may write is not used: the guest is compiled in memory, its image
    is not a file to restore from, and the sandbox falls back to a new instance per run."""
    cache = tmp_path / "shared-cache"
    cache.mkdir(mode=0o777)
    cache.chmod(0o777)
    script = (
        "from agentbox import Sandbox\n"
        "sandbox = Sandbox(timeout=60, recycle=True)\n"
        "outputs = [sandbox.run('import sys\\n' + HEAP).stdout for _ in range(3)]\n"
        "print(len(set(outputs)), sandbox._recycler.reused, sandbox._recycler._unsupported)\n"
    )
    assert _printed_by_a_process(script, cache) == ["1", "0", "True"]


def test_recycling_survives_the_cache_replacing_the_compiled_file(tmp_path: Path) -> None:
    """The compile cache may replace its file while a process has it mapped (another process's
    compile, a damaged file rebuilt): the runtime keeps the file it loaded open, and recycled
    instances restore from that one. (Found in CI: reopening the file by its name failed once
    it had been replaced, and every run got a new instance.)"""
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    artifact = compile_cache.artifact_path(guest_image(), engine_description(False))
    for name in (artifact, artifact.with_suffix(".stamp")):
        (cache / name.name).write_bytes(name.read_bytes())
    script = (
        "import os, pathlib\n"
        "from agentbox import Sandbox\n"
        "first = Sandbox(timeout=60, recycle=True)\n"
        "first.run('print(1)')\n"
        f"artifact = pathlib.Path({str(cache / artifact.name)!r})\n"
        "replacement = artifact.with_name('replacement')\n"
        "replacement.write_bytes(artifact.read_bytes())\n"
        "os.replace(replacement, artifact)  # a new inode under the same name\n"
        "second = Sandbox(timeout=60, recycle=True)\n"
        "outputs = {second.run('import sys\\n' + HEAP).stdout for _ in range(3)}\n"
        "print(len(outputs), second._recycler.reused)\n"
    )
    assert _printed_by_a_process(script, cache) == ["1", "2"]
