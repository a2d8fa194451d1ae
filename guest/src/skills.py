"""Skills: host functions the sandbox's owner chose to expose. The only way out of the sandbox.

    import skills
    skills.list()                      # [{"name", "description", "parameters"}, ...]
    skills.fetch_url(url="https://…")  # keyword arguments become the call's JSON data
    call_skill("fetch_url", {"url": "https://…"})   # the same, available without import

Every failure (unknown skill, bad arguments, the skill failed, timeout, payload too large, a
result that is not JSON) raises `skills.SkillError`.
"""

import json
import sys

from agentbox_guest import host_api

__all__ = ["SkillError", "UnknownSkillError", "call_skill", "list"]

_list = list


class SkillError(Exception):
    """A skill call failed; the message says why."""


class UnknownSkillError(SkillError, AttributeError):
    """`skills.NAME` for a skill this sandbox does not have: a SkillError like every other
    failure, and an AttributeError so `hasattr(skills, NAME)` answers False."""


def call_skill(name, data=None):
    """Call the skill `name` with `data` (any JSON value) and return its JSON result."""
    if not isinstance(name, str):
        raise SkillError(f"skill name must be a string, not {type(name).__name__}")
    try:
        payload = json.dumps(data, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise SkillError(f"data for skill {name!r} is not JSON: {error}") from None
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    ok, result = host_api.call_skill(name, payload)
    if not ok:
        raise SkillError(result)
    return json.loads(result)


def list():
    """The skills this sandbox may call: `[{"name", "description", "parameters"}]`."""
    return json.loads(host_api.list_skills())


class _Skill:
    def __init__(self, spec):
        self.__name__ = spec["name"]
        self._parameters = spec.get("parameters") or {}
        lines = [spec.get("description") or "(no description)"]
        properties = self._parameters.get("properties") or {}
        required = set(self._parameters.get("required") or ())
        if properties:
            lines += ["", "Parameters:"]
            for parameter, schema in properties.items():
                kind = schema.get("type", "any") if isinstance(schema, dict) else "any"
                mark = "" if parameter in required else " (optional)"
                lines.append(f"  {parameter}: {kind}{mark}")
        self.__doc__ = "\n".join(lines)

    def __call__(self, **kwargs):
        return call_skill(self.__name__, kwargs)

    def __repr__(self):
        return f"<skill {self.__name__}>"


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    for spec in list():
        if spec["name"] == name:
            return _Skill(spec)
    raise UnknownSkillError(f"no skill named {name!r}; skills.list() shows the available ones")


def _keep_source_for_tracebacks():
    """Runs at build time, while this file is readable: at run time no host path exists, so
    without this a traceback into this module would show no source lines. An entry without a
    modification time is one `linecache.checkcache` keeps."""
    import linecache

    try:
        with open(__file__, encoding="utf-8") as source:
            lines = source.readlines()
    except OSError:
        return
    linecache.cache[__file__] = (sum(map(len, lines)), None, lines, __file__)


_keep_source_for_tracebacks()


def __dir__():
    return sorted(_list(__all__) + [spec["name"] for spec in list()])
