"""The host side of the skill bridge: the only way out of the sandbox.

`bridge` declares skills (`@skill`, `Skill`) and enforces what a run may do with them (limits,
approval, the call log); `command` turns a command line into a skill, `from_file` loads the
`@skill` functions of a Python file, and `terminal` asks a human before a call. Engines call
skills only through `RunSkills`.
"""

from agentbox.skills.bridge import (
    Approver,
    BridgeLimits,
    RunSkills,
    Skill,
    SkillFailure,
    SkillsArgument,
    SkillSet,
    as_skill,
    skill,
)

__all__ = [
    "Approver",
    "BridgeLimits",
    "RunSkills",
    "Skill",
    "SkillFailure",
    "SkillSet",
    "SkillsArgument",
    "as_skill",
    "skill",
]
