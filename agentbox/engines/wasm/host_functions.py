"""The host side of the WIT `host` interface: routes guest calls to the current run.

The Linker is built once per process, so its host functions cannot close over a run. A run
executes on a worker thread, and what `bind` set on that thread says which skills the guest may
call and where its output goes.

The guest's strings arrive as `GuestText` views (see `guest_strings`): the host reads
a skill's name and data only when they are within its limits, and output in bounded pieces, so
what the host allocates does not grow with what the guest sends (beyond wasmtime's own copy).
"""

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from wasmtime.component import Linker, Variant

from agentbox.engines.wasm import guest_strings
from agentbox.engines.wasm.guest_strings import CHUNK_BYTES, GuestText
from agentbox.limits import DEFAULT_SCRATCH_BYTES, MAX_OUTPUT_NAME_BYTES
from agentbox.output_files import OutputFiles
from agentbox.skills.bridge import MAX_RECORDED_NAME_CHARS, MAX_SKILL_NAME_BYTES, cut

# Must match `package agentbox:sandbox@0.1.0; interface host` in guest/wit/agentbox.wit.
HOST_INTERFACE = "agentbox:sandbox/host@0.1.0"


class SkillRouter(Protocol):
    """What a run offers the guest: implemented by `agentbox.skills.RunSkills`."""

    @property
    def max_payload(self) -> int: ...

    def call_json(self, name: str, data: str) -> tuple[bool, str]: ...

    def refuse(self, name: str, message: str) -> str: ...

    def list_json(self) -> str: ...


class OutputSink(Protocol):
    """Where one of a run's output streams goes: `agentbox.output.CappedOutput`."""

    def write(self, data: bytes) -> None: ...


@dataclass(frozen=True)
class RunBinding:
    """What the guest running on this thread reaches through the host functions."""

    router: SkillRouter
    stdout: OutputSink
    stderr: OutputSink
    stdin: Callable[[int], bytes] | None = None
    """Reads at most n bytes of the script's stdin (None: empty stdin)."""
    files: OutputFiles | None = None
    """Where the files the script left in /output go (see `scratch_io`)."""
    scratch: int = DEFAULT_SCRATCH_BYTES
    inputs: Sequence[tuple[str, bytes]] = ()
    """The run's input files (`--file`): guest path under /input, and bytes."""


_current = threading.local()


def bind(binding: RunBinding | None) -> None:
    """Make `binding` serve the guest calls made from this thread."""
    _current.binding = binding


def current_binding() -> RunBinding | None:
    return getattr(_current, "binding", None)


_binding = current_binding


class TextArgument(Protocol):
    """A guest string read on demand: `GuestText` (component) or `door.MemoryText` (core)."""

    size: int

    def text(self, max_bytes: int) -> str | None: ...

    def prefix(self, max_bytes: int) -> str: ...


def _router() -> SkillRouter | None:
    binding = _binding()
    return None if binding is None else binding.router


def _call_skill(_store: object, name: GuestText, data: GuestText) -> Variant:
    return call_skill(name, data)


def call_skill(name: TextArgument, data: TextArgument) -> Variant:
    """A skill call from either guest kind; never raises."""
    router = _router()
    text = name.text(MAX_SKILL_NAME_BYTES)
    if router is None:
        shown = text if text is not None else name.prefix(MAX_RECORDED_NAME_CHARS)
        shown = cut(shown, MAX_RECORDED_NAME_CHARS)
        return Variant("err", f"no skill named {shown!r} (this sandbox has no skills)")
    try:
        if text is None:  # longer than any skill's name: refused unread
            shown = name.prefix(MAX_RECORDED_NAME_CHARS // 2) + f"...[{name.size} bytes in all]"
            return Variant("err", router.refuse(shown, f"no skill named {shown!r}"))
        payload = data.text(router.max_payload)
        if payload is None:  # refused unread
            message = (
                f"data for skill {cut(text, MAX_RECORDED_NAME_CHARS)!r} is larger than the "
                f"limit ({router.max_payload} bytes)"
            )
            return Variant("err", router.refuse(text, message))
        ok, result = router.call_json(text, payload)
    except Exception as error:  # noqa: BLE001 - a host bug must not trap the guest
        return Variant("err", f"skill call failed in the host: {type(error).__name__}")
    return Variant("ok" if ok else "err", result)


def _list_skills(_store: object) -> str:
    return list_skills()


def list_skills() -> str:
    router = _router()
    return "[]" if router is None else router.list_json()


def _write_output(_store: object, target: str, data: GuestText) -> None:
    """Appends to the capture piece by piece: it keeps what fits and only counts the rest."""
    binding = _binding()
    if binding is not None:
        sink = binding.stdout if target == "stdout" else binding.stderr
        for piece in data.chunks():
            sink.write(piece.encode("latin-1", "replace"))  # only a misbehaving guest needs it


def _read_stdin(_store: object, max_bytes: int) -> str:
    return read_stdin_bytes(max_bytes).decode("latin-1")


def read_stdin_bytes(max_bytes: int) -> bytes:
    """At most `max_bytes` (and CHUNK_BYTES) of the script's stdin; empty at its end. The host
    never reads (so never allocates) more than the guest asked for, and a reader that raises is
    the end of input, not a trap."""
    binding = _binding()
    size = min(max_bytes, CHUNK_BYTES)
    if binding is None or binding.stdin is None or size <= 0:
        return b""
    try:
        data = binding.stdin(size)
    except Exception:  # noqa: BLE001 - an unreadable stdin reads as empty, as for `python`
        return b""
    return bytes(data[:size])


def _scratch_limit(_store: object) -> int:
    return scratch_limit()


def scratch_limit() -> int:
    binding = _binding()
    return DEFAULT_SCRATCH_BYTES if binding is None else binding.scratch


def _output_file(_store: object, name: GuestText, data: GuestText, first: bool) -> bool:
    pieces = (piece.encode("latin-1", "replace") for piece in data.chunks())
    return output_file_piece(name, pieces, first)


def output_file_piece(name: TextArgument, pieces: Iterable[bytes], first: bool) -> bool:
    """A piece of a file from /output: kept within the caps, otherwise refused unread."""
    binding = _binding()
    if binding is None or binding.files is None:
        return False
    if first:
        text = name.text(MAX_OUTPUT_NAME_BYTES)
        shown = text if text is not None else name.prefix(100) + f"...[{name.size} bytes]"
        return binding.files.start(text, shown)
    return all(binding.files.append(piece) for piece in pieces)


def _input_files(_store: object) -> list[tuple[str, str]]:
    binding = _binding()
    inputs = () if binding is None else binding.inputs
    return [(path, data.decode("latin-1")) for path, data in inputs]


def define_host_functions(linker: Linker) -> None:
    with linker.root() as root, root.add_instance(HOST_INTERFACE) as host:
        guest_strings.add_func(host, "call-skill", _call_skill)
        host.add_func("list-skills", _list_skills)
        guest_strings.add_func(host, "write-output", _write_output)
        host.add_func("read-stdin", _read_stdin)
        host.add_func("scratch-limit", _scratch_limit)
        guest_strings.add_func(host, "output-file", _output_file)
        host.add_func("input-files", _input_files)
