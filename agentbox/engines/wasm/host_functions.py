"""The host side of the WIT `host` interface: routes guest calls to the current run.

The Linker is built once per process, so its host functions cannot close over a run. A run
executes on a worker thread, and what `bind` set on that thread says which skills the guest may
call and where its output goes.
"""

import threading
from dataclasses import dataclass
from typing import Protocol

from wasmtime.component import Linker, Variant

# Must match `package agentbox:sandbox@0.1.0; interface host` in guest/wit/agentbox.wit.
HOST_INTERFACE = "agentbox:sandbox/host@0.1.0"


class SkillRouter(Protocol):
    """What a run offers the guest: implemented by `agentbox.skills.SkillSet`."""

    def call_json(self, name: str, data: str) -> tuple[bool, str]: ...

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


_current = threading.local()


def bind(binding: RunBinding | None) -> None:
    """Make `binding` serve the guest calls made from this thread."""
    _current.binding = binding


def _binding() -> RunBinding | None:
    return getattr(_current, "binding", None)


def _router() -> SkillRouter | None:
    binding = _binding()
    return None if binding is None else binding.router


def _call_skill(_store: object, name: str, data: str) -> Variant:
    router = _router()
    if router is None:
        return Variant("err", f"no skill named {name!r} (this sandbox has no skills)")
    try:
        ok, payload = router.call_json(name, data)
    except Exception as error:  # noqa: BLE001 - a host bug must not trap the guest
        return Variant("err", f"skill {name!r} failed in the host: {type(error).__name__}")
    return Variant("ok" if ok else "err", payload)


def _list_skills(_store: object) -> str:
    router = _router()
    return "[]" if router is None else router.list_json()


def _write_output(_store: object, target: str, data: str) -> None:
    binding = _binding()
    if binding is not None:
        sink = binding.stdout if target == "stdout" else binding.stderr
        sink.write(data.encode("latin-1", "replace"))  # only a misbehaving guest needs it


def define_host_functions(linker: Linker) -> None:
    with linker.root() as root, root.add_instance(HOST_INTERFACE) as host:
        host.add_func("call-skill", _call_skill)
        host.add_func("list-skills", _list_skills)
        host.add_func("write-output", _write_output)
