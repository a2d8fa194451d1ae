"""One instance of the default image reused run after run, its memory put back in between.

A process that runs scripts one after another (a batch worker) pays, for every fresh instance,
instantiation (~1.4 ms here), the first touch of the copy-on-write memory image (~590 page
faults, ~2.8 ms) and the unmapping when it is freed. Reusing one instance skips all three: after
each run, every page of linear memory the run wrote is copied back from the snapshot, and the
next run starts from the same bytes a new instance would (~1.4-1.8 ms, no page faults; see
docs/batch.md, Sizing).

What a run can change, and how each is put back or makes the instance be dropped:
- **Linear memory**: wasmtime maps the snapshot's memory image from the compiled artifact,
  copy-on-write, between zero-filled ranges. A page the run wrote is a private copy in that
  mapping (`/proc/self/pagemap` tells them apart from pages still shared with the file): it is
  copied back from a read-only mapping of the same file, and a used zero-filled page is
  zeroed. Pages only read are left mapped, so the next run does not fault them in again.
- **Memory size**: a run that grew its memory leaves it grown (WebAssembly cannot shrink it);
  the instance is dropped, as it is after any trap, limit or abandoned run (`usable`).
- **Globals and tables**: a call that returns has put its stack pointer back; the image's other
  globals and its tables are only written by its initialisation, which ran at build time.
- **Host state**: the WASI resources a run can open are its streams and timers, which it closes;
  with mounts a run could leave host files open, so sandboxes with mounts are not recycled.
  A script that took over the interpreter could still leave handles open; they carry no data,
  and an instance is dropped after MAX_RUNS runs, so they cannot pile up.

Linux only (pagemap); elsewhere, and wherever the memory cannot be found exactly as expected,
every run gets a fresh instance as before. Tests: tests/isolation/test_recycled_instances.py.
"""

import ctypes
import ctypes.util
import errno
import mmap
import os
import re
import secrets
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from agentbox.engines.base import ScriptRequest
from agentbox.skills import SkillSet

if TYPE_CHECKING:
    from agentbox.engines.wasm.engine import BaseInstance
    from agentbox.result import RunResult
    from agentbox.skills import RunSkills

# An instance is dropped after this many runs (see the module docstring: host handles).
MAX_RUNS = 1000

_PAGE = mmap.PAGESIZE  # pagemap has one entry per page of the host's size

# The flags byte of a /proc/self/pagemap entry (its top 8 bits): present, swapped, file-backed.
_PRESENT, _SWAPPED, _FILE = 0x80, 0x40, 0x20
# Per flags byte: whether the page holds bytes the run may have written.
_WRITTEN_IMAGE_PAGE = bytes(
    1 if flags & _SWAPPED or (flags & _PRESENT and not flags & _FILE) else 0 for flags in range(256)
)
_USED_ZERO_PAGE = bytes(1 if flags & (_PRESENT | _SWAPPED) else 0 for flags in range(256))
_RUNS_OF_PAGES = re.compile(b"\x01+")
_MAPS_LINE = re.compile(
    r"^([0-9a-f]+)-([0-9a-f]+) (\S{4}) ([0-9a-f]+) ([0-9a-f]+):([0-9a-f]+) (\d+)\s*(.*)$"
)


@dataclass(frozen=True)
class _Mapping:
    start: int
    end: int
    perms: str
    offset: int
    device: tuple[int, int]
    inode: int
    path: str


def supported() -> bool:
    return sys.platform == "linux" and os.access("/proc/self/pagemap", os.R_OK)


def mappings() -> frozenset[_Mapping]:
    """This process's memory mappings (/proc/self/maps)."""
    found = set()
    with open("/proc/self/maps") as maps:
        for line in maps:
            match = _MAPS_LINE.match(line.rstrip("\n"))
            if match is None:
                continue
            start, end, perms, offset, major, minor, inode, path = match.groups()
            found.add(
                _Mapping(
                    int(start, 16),
                    int(end, 16),
                    perms,
                    int(offset, 16),
                    (int(major, 16), int(minor, 16)),
                    int(inode),
                    path,
                )
            )
    return frozenset(found)


_process_vm_readv: Any = None


def _reader() -> Any:
    """libc's `process_vm_readv`, which reads memory with the process's own permissions (unlike
    /proc/self/mem, which can read an inaccessible mapping)."""
    global _process_vm_readv
    if _process_vm_readv is None:
        function = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True).process_vm_readv
        function.restype = ctypes.c_ssize_t
        vector, count = ctypes.c_void_p, ctypes.c_ulong  # an iovec array, its length
        function.argtypes = [ctypes.c_int, vector, count, vector, count, ctypes.c_ulong]
        _process_vm_readv = function
    return _process_vm_readv


class _IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("length", ctypes.c_size_t)]


def _readable(address: int) -> bool | None:
    """Whether the byte at `address` can be read (None: the probe itself failed)."""
    byte = ctypes.c_char()
    local = _IoVec(ctypes.cast(ctypes.pointer(byte), ctypes.c_void_p), 1)
    remote = _IoVec(address, 1)
    done = _reader()(os.getpid(), ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
    if done == 1:
        return True
    return False if ctypes.get_errno() == errno.EFAULT else None


class LinearMemory:
    """The guest's linear memory in this process: the image mapped from the compiled file, with the
    zero-filled ranges around it, and a read-only mapping of the same bytes to restore from."""

    def __init__(
        self,
        image: _Mapping,
        before: _Mapping | None,
        after: _Mapping | None,
        image_file: BinaryIO,
    ) -> None:
        self.image = image
        self._zeroed = [m for m in (before, after) if m is not None]
        self.start = (before or image).start
        self.end = (after or image).end
        self._pristine = mmap.mmap(
            image_file.fileno(),
            image.end - image.start,
            flags=mmap.MAP_PRIVATE,
            prot=mmap.PROT_READ,
            offset=image.offset,
        )
        self._pagemap = os.open("/proc/self/pagemap", os.O_RDONLY | os.O_CLOEXEC)
        self._zeros = bytes(max((m.end - m.start for m in self._zeroed), default=0))

    @classmethod
    def find(cls, instance: "BaseInstance") -> "LinearMemory | None":
        """The memory of `instance`, which has not run yet, if it is laid out as expected: a
        writable private mapping of its compiled file (`image_file`, kept open by the runtime:
        the same inode even if the cache has replaced the file since), with at most a writable
        anonymous mapping right before and right after it, between the memory's guard and its
        reservation. Other instances map the same file, so `instance` runs a script holding a
        random token first: its memory is the one mapping whose written pages hold the token
        (read through /proc/self/mem, which fails rather than crashes on an instance being
        unmapped meanwhile). None if there is no such mapping: the guest was compiled in
        memory (the cache folder could not be used), or a pooling allocator lays memory out
        its own way."""
        image_file = instance.image_file
        if image_file is None:
            return None
        compiled = os.fstat(image_file.fileno())
        token = secrets.token_hex(16)
        marked = instance.run(ScriptRequest(source=f"# {token}\n".encode()), SkillSet().bind_run())
        if marked.exit_code != 0 or not instance.usable:
            return None
        now = sorted(mappings(), key=lambda m: m.start)
        images = [
            m
            for m in now
            if m.perms == "rw-p"
            and m.inode == compiled.st_ino
            and os.makedev(*m.device) == compiled.st_dev
            and _holds(m, token.encode())
        ]
        if len(images) != 1:
            return None
        layout = _layout(now, now.index(images[0]))
        if layout is None:
            return None
        before_image, image, after_image = layout
        try:
            memory = cls(image, before_image, after_image, image_file)
        except OSError:
            return None
        if not memory.restore():  # the token's run must leave no trace either
            memory.close()
            return None
        return memory

    def restore(self) -> bool:
        """Put back every page written since the instance was made; False (nothing restored)
        if the memory grew, or its end cannot be checked: the instance must then be dropped."""
        if _readable(self.end) is not False:
            return False
        image = self.image
        with memoryview(self._pristine) as pristine:
            self._restore_range(image.start, image.end, pristine, _WRITTEN_IMAGE_PAGE)
        for zeroed in self._zeroed:
            self._restore_range(zeroed.start, zeroed.end, None, _USED_ZERO_PAGE)
        return True

    def _restore_range(
        self, start: int, end: int, original: memoryview | None, table: bytes
    ) -> None:
        memory = (ctypes.c_char * (end - start)).from_address(start)
        target = memoryview(memory).cast("B")
        for first, last in _written(self._pagemap, start, end, table):
            if original is not None:
                target[first:last] = original[first:last]
            elif target[first:last] != self._zeros[: last - first]:
                target[first:last] = self._zeros[: last - first]

    def close(self) -> None:
        self._pristine.close()
        os.close(self._pagemap)


def _layout(
    mappings: list[_Mapping], index: int
) -> tuple[_Mapping | None, _Mapping, _Mapping | None] | None:
    """The memory around the image at `mappings[index]` (sorted by address): its zero-filled
    ranges before and after it, if they exist, between the inaccessible guard below the memory
    and the inaccessible reservation above it. None for any other layout: then what is around
    the image may not be this memory's, and nothing may be restored."""

    def adjacent(lower: int, upper: int) -> bool:
        return lower >= 0 and upper < len(mappings) and mappings[lower].end == mappings[upper].start

    def zero_filled(position: int) -> bool:
        mapping = mappings[position]
        return mapping.perms == "rw-p" and mapping.inode == 0 and mapping.path == ""

    def inaccessible(position: int) -> bool:
        return mappings[position].perms == "---p" and mappings[position].path == ""

    low = index - 1
    before = None
    if adjacent(low, index) and zero_filled(low):
        before, low = mappings[low], low - 1
    if not (adjacent(low, low + 1) and inaccessible(low)):
        return None
    high = index + 1
    after = None
    if adjacent(index, high) and zero_filled(high):
        after, high = mappings[high], high + 1
    if not (adjacent(high - 1, high) and inaccessible(high)):
        return None
    return before, mappings[index], after


def _written(pagemap: int, start: int, end: int, table: bytes) -> Iterator[tuple[int, int]]:
    """Offsets from `start` of the runs of pages that `table` picks by their pagemap flags."""
    pages = (end - start) // _PAGE
    entries = os.pread(pagemap, pages * 8, (start // _PAGE) * 8)
    if len(entries) != pages * 8:
        raise OSError("short read of /proc/self/pagemap")
    for run in _RUNS_OF_PAGES.finditer(entries[7::8].translate(table)):
        yield run.start() * _PAGE, run.end() * _PAGE


def _holds(mapping: _Mapping, token: bytes) -> bool:
    """Whether a page of `mapping` written since it was mapped holds `token`."""
    pagemap = os.open("/proc/self/pagemap", os.O_RDONLY | os.O_CLOEXEC)
    memory = os.open("/proc/self/mem", os.O_RDONLY | os.O_CLOEXEC)
    try:
        for first, last in _written(pagemap, mapping.start, mapping.end, _WRITTEN_IMAGE_PAGE):
            try:
                if token in os.pread(memory, last - first, mapping.start + first):
                    return True
            except OSError:  # unmapped meanwhile: not this instance's
                return False
        return False
    finally:
        os.close(pagemap)
        os.close(memory)


@dataclass
class _Kept:
    instance: "BaseInstance"
    memory: LinearMemory
    runs: int = 0


class Recycler:
    """Runs scripts in one kept instance, restored after each run; a fresh one when it cannot
    be (the first run, after a run that grew memory or hit a limit, or while it is busy)."""

    def __init__(self, new_instance: "Callable[[], BaseInstance]") -> None:
        self._new_instance = new_instance
        self._kept: _Kept | None = None
        self._lock = threading.Lock()
        self._unsupported = False
        self.reused = 0
        """Runs that ran in an instance restored after an earlier run."""

    def run(
        self, request: "ScriptRequest", skills: "RunSkills", timeout: float | None
    ) -> "RunResult":
        with self._lock:
            kept, self._kept = self._kept, None
            if kept is not None:
                self.reused += 1
        if kept is None:
            instance = self._new_instance()
            if self._unsupported:
                return instance.run_once(request, skills, timeout=timeout)
            try:
                memory = LinearMemory.find(instance)
            except BaseException:
                instance.discard()
                raise
            if memory is None:  # not laid out as expected: one-shot runs from now on
                self._unsupported = True
                instance.discard()
                return self._new_instance().run_once(request, skills, timeout=timeout)
            kept = _Kept(instance, memory)
        try:
            result = kept.instance.run(request, skills, timeout=timeout)
        except BaseException:
            self._drop(kept)
            raise
        kept.runs += 1
        if kept.instance.usable and kept.runs < MAX_RUNS and kept.memory.restore():
            with self._lock:
                if self._kept is None:
                    self._kept, kept = kept, None
        if kept is not None:
            self._drop(kept)
        return result

    def close(self) -> None:
        with self._lock:
            kept, self._kept = self._kept, None
        if kept is not None:
            self._drop(kept)

    @staticmethod
    def _drop(kept: _Kept) -> None:
        kept.memory.close()
        kept.instance.discard()


def recycler_for(new_instance: "Callable[[], BaseInstance]") -> Recycler | None:
    """A recycler, where recycling works: Linux, and instances on demand (a pooled engine
    lays memory out in its own slots)."""
    from agentbox.engines.wasm.runtime import pooling_in_use

    if not supported() or pooling_in_use() is not None:
        return None
    return Recycler(new_instance)
