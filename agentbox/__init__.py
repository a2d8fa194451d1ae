"""agentbox: run untrusted, AI-written Python in a WebAssembly sandbox that starts in milliseconds.

from agentbox import Sandbox
result = Sandbox(timeout=5).run("print(1 + 1)")
result.stdout  # '2\\n'
"""

from agentbox._version import __version__
from agentbox.errors import AgentboxError, UsageError
from agentbox.exit_codes import ExitCode
from agentbox.limits import Limits
from agentbox.mounts import Mount
from agentbox.result import RunResult, SkillCall
from agentbox.sandbox import Sandbox
from agentbox.session import Session, SessionClosedError
from agentbox.skills import Skill, SkillFailure, skill

__all__ = [
    "AgentboxError",
    "ExitCode",
    "Limits",
    "Mount",
    "RunResult",
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
