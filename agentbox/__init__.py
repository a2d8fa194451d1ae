"""agentbox: run untrusted, AI-written Python in a WebAssembly sandbox that starts in milliseconds.

    from agentbox import Sandbox
    result = Sandbox(timeout=5).run("print(1 + 1)")
    result.stdout  # '2\\n'

Names are imported on first use, so `agentbox run` starts without loading what it never needs.
"""

import importlib
from typing import TYPE_CHECKING, Any

from agentbox._version import __version__

if TYPE_CHECKING:
    from agentbox.errors import AgentboxError, UsageError
    from agentbox.exit_codes import ExitCode
    from agentbox.limits import Limits
    from agentbox.mounts import Mount
    from agentbox.output import OutputCallback
    from agentbox.result import RunResult, SkillCall
    from agentbox.sandbox import Sandbox
    from agentbox.session import Session, SessionClosedError
    from agentbox.skills import Skill, SkillFailure, skill
    from agentbox.streaming import RunStream

_EXPORTS = {
    "AgentboxError": "agentbox.errors",
    "UsageError": "agentbox.errors",
    "ExitCode": "agentbox.exit_codes",
    "Limits": "agentbox.limits",
    "Mount": "agentbox.mounts",
    "OutputCallback": "agentbox.output",
    "RunResult": "agentbox.result",
    "RunStream": "agentbox.streaming",
    "SkillCall": "agentbox.result",
    "Sandbox": "agentbox.sandbox",
    "Session": "agentbox.session",
    "SessionClosedError": "agentbox.session",
    "Skill": "agentbox.skills",
    "SkillFailure": "agentbox.skills",
    "skill": "agentbox.skills",
}

__all__ = [
    "AgentboxError",
    "ExitCode",
    "Limits",
    "Mount",
    "OutputCallback",
    "RunResult",
    "RunStream",
    "Sandbox",
    "Session",
    "SessionClosedError",
    "Skill",
    "SkillCall",
    "SkillFailure",
    "UsageError",
    "__version__",
    "skill",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'agentbox' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
