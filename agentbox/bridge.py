"""The host side of the WIT `host` interface: routes guest calls to the current run's skills.

The Linker is built once per process, so its host functions cannot close over a run. Each run
executes on its own worker thread, and that thread's `RunContext` says which skills it may call.
"""

import threading
from typing import Protocol

from wasmtime.component import Linker, Variant

# Must match `package agentbox:sandbox@0.1.0; interface host` in guest/wit/agentbox.wit.
HOST_INTERFACE = "agentbox:sandbox/host@0.1.0"


class SkillRouter(Protocol):
    """What a run offers the guest: implemented by `agentbox.skills.SkillSet`."""

    def call_json(self, name: str, data: str) -> tuple[bool, str]: ...

    def list_json(self) -> str: ...


_current = threading.local()


def bind(router: SkillRouter | None) -> None:
    """Make `router` serve the guest calls made from this thread."""
    _current.router = router


def _router() -> SkillRouter | None:
    return getattr(_current, "router", None)


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


def define_host_functions(linker: Linker) -> None:
    with linker.root() as root, root.add_instance(HOST_INTERFACE) as host:
        host.add_func("call-skill", _call_skill)
        host.add_func("list-skills", _list_skills)
