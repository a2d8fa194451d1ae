"""Host-side skills: named host functions the sandboxed script may call, and nothing else.

A skill is a Python callable (sync or `async def`) or an external command (see
`agentbox.skills.command`). `@skill` derives the name, description (docstring) and JSON Schema
(type hints) from the function; `SkillSet` holds a run's skills, enforces the bridge limits and
records every call.
"""

import contextvars
import dataclasses
import json
import threading
import time
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agentbox import log
from agentbox.result import SkillCall

if TYPE_CHECKING:
    import asyncio


DEFAULT_SKILL_TIMEOUT_SECONDS = 30.0
DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024
DEFAULT_MAX_CALLS = 1000
# The call log of a run is bounded whatever the script does: at most this many entries (later
# calls are only counted, in `unrecorded`), names and errors cut to these lengths with a marker.
# At most ~1.3 MB of text a run, refused calls included.
MAX_RECORDED_CALLS = 1000
MAX_RECORDED_NAME_CHARS = 200
MAX_RECORDED_ERROR_CHARS = 1000
# No skill has a longer name: the host refuses a longer one without reading it.
MAX_SKILL_NAME_BYTES = 1024


class SkillFailure(Exception):
    """Raised by a skill to send a clean error message to the sandbox (no traceback)."""


_call_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "agentbox_skill_call_deadline", default=None
)


def call_deadline() -> float | None:
    """Inside a skill call: when it must have ended (a `time.monotonic()` value), the earlier
    of the skill's own timeout and its run's deadline. None outside a call. Skills that start
    work the bridge cannot stop (processes: see `agentbox.skills.command`) end it by then."""
    return _call_deadline.get()


@dataclass(frozen=True)
class Skill:
    name: str
    function: Callable[..., Any]
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object"})
    timeout: float | None = None
    raw_data: bool = False
    """Pass the call's JSON data as one argument instead of as keyword arguments."""

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "parameters": self.parameters}


_JSON_TYPES: dict[Any, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    list: "array",
    dict: "object",
    type(None): "null",
}


def _schema_for(annotation: Any) -> dict[str, Any]:
    if annotation in _JSON_TYPES:
        return {"type": _JSON_TYPES[annotation]}
    origin = typing.get_origin(annotation)
    if origin in (list, tuple, set, frozenset, Iterable):
        args = typing.get_args(annotation)
        return {"type": "array", **({"items": _schema_for(args[0])} if args else {})}
    if origin in (dict, Mapping):
        return {"type": "object"}
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [_schema_for(arg) for arg in typing.get_args(annotation)]}
    if origin is typing.Literal:
        return {"enum": list(typing.get_args(annotation))}
    return {}


def parameters_schema(function: Callable[..., Any]) -> dict[str, Any]:
    """A JSON Schema of the function's keyword parameters, from its type hints."""
    import inspect  # here, not at the top: `agentbox run` without skills never needs it

    try:
        hints = typing.get_type_hints(function)
    except Exception:  # noqa: BLE001 - unresolvable hints just mean "any"
        hints = {}
    properties: dict[str, Any] = {}
    required: list[str] = []
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        properties[parameter.name] = _schema_for(hints.get(parameter.name, Any))
        if parameter.default is parameter.empty:
            required.append(parameter.name)
        else:
            properties[parameter.name]["default"] = (
                parameter.default if _is_json(parameter.default) else None
            )
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def skill(
    function: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
) -> Any:
    """Mark a host function as a skill: `@skill` or `@skill(name=..., timeout=...)`."""

    def mark(target: Callable[..., Any]) -> Callable[..., Any]:
        import inspect

        target.__agentbox_skill__ = Skill(  # type: ignore[attr-defined]
            name=name or target.__name__,
            function=target,
            description=description or inspect.cleandoc(target.__doc__ or ""),
            parameters=parameters_schema(target),
            timeout=timeout,
        )
        return target

    return mark(function) if function is not None else mark


def as_skill(item: Any, name: str | None = None) -> Skill:
    """A `Skill` from a Skill, a `@skill` function or a plain callable."""
    if isinstance(item, Skill):
        return item if name is None or name == item.name else _renamed(item, name)
    marked = getattr(item, "__agentbox_skill__", None)
    if isinstance(marked, Skill):
        return marked if name is None else _renamed(marked, name)
    if callable(item):
        marked = skill(item, name=name).__agentbox_skill__
        assert isinstance(marked, Skill)
        return marked
    raise TypeError(f"not a skill: {item!r} (expected a function or agentbox.Skill)")


def _renamed(item: Skill, name: str) -> Skill:
    return dataclasses.replace(item, name=name)


SkillsArgument = Iterable[Any] | Mapping[str, Any] | None

Approver = Callable[[str, Any], bool]


@dataclass(frozen=True)
class BridgeLimits:
    max_payload: int = DEFAULT_MAX_PAYLOAD_BYTES
    max_calls: int = DEFAULT_MAX_CALLS
    default_timeout: float = DEFAULT_SKILL_TIMEOUT_SECONDS


class SkillSet:
    """A sandbox's skills. `bind_run()` gives each run its own call log and counters."""

    def __init__(
        self,
        skills: SkillsArgument = None,
        *,
        limits: BridgeLimits | None = None,
        approve: Approver | None = None,
    ) -> None:
        self.limits = limits or BridgeLimits()
        self.approve = approve
        self._skills: dict[str, Skill] = {}
        items: Iterable[tuple[str | None, Any]]
        if skills is None:
            items = ()
        elif isinstance(skills, Mapping):
            items = skills.items()
        else:
            items = ((None, item) for item in skills)
        for item_name, item in items:
            spec = as_skill(item, item_name)
            if len(spec.name.encode("utf-8", "surrogatepass")) > MAX_SKILL_NAME_BYTES:
                raise ValueError(f"a skill name is longer than {MAX_SKILL_NAME_BYTES} bytes")
            if spec.name in self._skills:
                raise ValueError(f"two skills are named {spec.name!r}")
            self._skills[spec.name] = spec
        self._list_json = json.dumps([spec.spec() for spec in self._skills.values()])

    def __len__(self) -> int:
        return len(self._skills)

    def names(self) -> list[str]:
        return list(self._skills)

    def specs(self) -> list[dict[str, Any]]:
        return [spec.spec() for spec in self._skills.values()]

    def bind_run(self, loop: "asyncio.AbstractEventLoop | None" = None) -> "RunSkills":
        return RunSkills(self, loop)

    def get(self, name: str) -> Skill | None:
        return self._skills.get(name)

    def list_json(self) -> str:
        return self._list_json


def utf8_size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def cut(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}...[{len(text) - limit} more characters]"


class RunSkills:
    """The bridge as one run sees it: enforces limits, records calls (implements SkillRouter).

    `calls` holds the first MAX_RECORDED_CALLS calls (refused ones included); `unrecorded`
    counts the rest.
    """

    def __init__(self, skills: SkillSet, loop: "asyncio.AbstractEventLoop | None") -> None:
        self._skills = skills
        self._loop = loop
        self.calls: list[SkillCall] = []
        self.unrecorded = 0
        self._attempts = 0
        self._lock = threading.Lock()
        self._run_deadline: float | None = None

    def start_clock(self, timeout: float) -> None:
        """The run started with this wall-clock limit: no skill call outlives its deadline."""
        self._run_deadline = time.monotonic() + timeout

    def list_json(self) -> str:
        return self._skills.list_json()

    @property
    def max_payload(self) -> int:
        return self._skills.limits.max_payload

    def refuse(self, name: str, message: str) -> str:
        """Record a call the bridge refused before reading it all; return what the guest sees."""
        self._record(name, time.perf_counter(), message)
        return message

    def call_json(self, name: str, data: str) -> tuple[bool, str]:
        started = time.perf_counter()
        try:
            result = self._call(name, data)
        except SkillFailure as failure:
            self._record(name, started, str(failure))
            return False, str(failure)
        self._record(name, started, None)
        return True, result

    def _record(self, name: str, started: float, error: str | None) -> None:
        call = SkillCall(
            cut(name, MAX_RECORDED_NAME_CHARS),
            (time.perf_counter() - started) * 1000,
            error is None,
            None if error is None else cut(error, MAX_RECORDED_ERROR_CHARS),
        )
        with self._lock:
            if len(self.calls) < MAX_RECORDED_CALLS:
                self.calls.append(call)
            else:
                self.unrecorded += 1

    def _call(self, name: str, data: str) -> str:
        limits = self._skills.limits
        with self._lock:
            self._attempts += 1
            refused = self._attempts > limits.max_calls
        if refused:
            raise SkillFailure(f"too many skill calls in one run (limit {limits.max_calls})")
        spec = self._skills.get(name)
        if spec is None:
            raise SkillFailure(f"no skill named {cut(name, MAX_RECORDED_NAME_CHARS)!r}")
        # Characters first: a string longer than the limit in characters is too long in bytes,
        # and is refused without another copy of it (the fallback engines' calls arrive whole).
        if len(data) > limits.max_payload or utf8_size(data) > limits.max_payload:
            raise SkillFailure(
                f"data for skill {name!r} is larger than the limit ({limits.max_payload} bytes)"
            )
        try:
            arguments = json.loads(data)
        except ValueError as error:
            raise SkillFailure(f"data for skill {name!r} is not JSON: {error}") from None
        _check_arguments(spec, arguments)
        if self._skills.approve is not None and not self._skills.approve(name, arguments):
            raise SkillFailure(f"skill {name!r} was not approved")
        value = self._invoke(spec, arguments)
        try:
            result = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise SkillFailure(
                f"skill {name!r} returned a value that is not JSON: {error}"
            ) from None
        if len(result) > limits.max_payload or utf8_size(result) > limits.max_payload:
            raise SkillFailure(
                f"result of skill {name!r} is larger than the limit ({limits.max_payload} bytes)"
            )
        return result

    def _invoke(self, spec: Skill, arguments: Any) -> Any:
        import inspect

        function = spec.function
        positional, keywords = ([arguments], {}) if spec.raw_data else _arguments_for(arguments)
        try:
            inspect.signature(function).bind(*positional, **keywords)
        except TypeError as error:
            raise SkillFailure(f"bad arguments for skill {spec.name!r}: {error}") from None
        except ValueError:
            pass  # no signature (a builtin): let the call decide
        own = spec.timeout if spec.timeout is not None else self._skills.limits.default_timeout
        timeout = own
        if self._run_deadline is not None:
            timeout = max(0.0, min(own, self._run_deadline - time.monotonic()))
        token = _call_deadline.set(time.monotonic() + timeout)
        try:
            if inspect.iscoroutinefunction(function):
                return self._await(function(*positional, **keywords), timeout)
            return _call_with_timeout(function, positional, keywords, timeout)
        except SkillFailure:
            raise
        except TimeoutError:
            ending = f"after {own:g} s" if timeout == own else "at the run's deadline"
            raise SkillFailure(f"skill {spec.name!r} timed out {ending}") from None
        except Exception as error:  # noqa: BLE001 - logged, and reported to the guest
            _log_failure(spec.name, error)
            raise SkillFailure(f"skill {spec.name!r} failed: {type(error).__name__}") from None
        finally:
            _call_deadline.reset(token)

    def _await(self, coroutine: Any, timeout: float) -> Any:
        import asyncio

        if self._loop is not None and self._loop.is_running():
            future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
            try:
                return future.result(timeout)
            except TimeoutError:
                future.cancel()
                raise
        return asyncio.run(asyncio.wait_for(coroutine, timeout))


# A skill declaring this schema (a command's default) declares nothing about its data.
_UNDECLARED_SCHEMAS: tuple[dict[str, Any], ...] = ({}, {"type": "object"})


def _check_arguments(spec: Skill, arguments: Any) -> None:
    """Refuse data the skill's JSON Schema (what `skills.list()` shows the script) rejects,
    before the host function runs. A function skill's schema describes keyword arguments, so
    data that is not an object (passed as one positional argument) is left to its signature."""
    schema = spec.parameters
    if schema in _UNDECLARED_SCHEMAS or (not spec.raw_data and not isinstance(arguments, dict)):
        return
    import jsonschema  # ~0.1 s, paid by the first call of a skill that declares parameters

    try:
        validator = jsonschema.validators.validator_for(
            schema, default=jsonschema.Draft202012Validator
        )(schema)
        error = jsonschema.exceptions.best_match(validator.iter_errors(arguments))
    except Exception as problem:  # noqa: BLE001 - the host's schema is broken, not the call
        raise SkillFailure(
            f"skill {spec.name!r} has an invalid parameters schema ({type(problem).__name__})"
        ) from None
    if error is not None:
        where = "".join(f"[{part!r}]" for part in error.absolute_path)
        raise SkillFailure(
            f"bad arguments for skill {spec.name!r}: "
            f"{f'{where}: ' if where else ''}{cut(error.message, MAX_RECORDED_ERROR_CHARS)}"
        )


def _log_failure(name: str, error: Exception) -> None:
    """One line on the host's stderr for a skill that raised; its traceback only with
    AGENTBOX_DEBUG=1 (a skill that fails on every call would otherwise flood the log)."""
    logger = log.logger("agentbox.skills")
    if log.debug_enabled():
        logger.exception("agentbox: skill %r raised", name)
        return
    first_line = next(iter(str(error).splitlines()), "")
    logger.warning(
        "agentbox: skill %r raised %s%s (set %s=1 for its traceback)",
        name,
        type(error).__name__,
        f": {cut(first_line, MAX_RECORDED_ERROR_CHARS)}" if first_line else "",
        log.DEBUG_VARIABLE,
    )


def _arguments_for(arguments: Any) -> tuple[list[Any], dict[str, Any]]:
    """A dict becomes keyword arguments, null no arguments, anything else one argument."""
    if arguments is None:
        return [], {}
    if isinstance(arguments, dict) and all(isinstance(key, str) for key in arguments):
        return [], arguments
    return [arguments], {}


def _call_with_timeout(
    function: Callable[..., Any], positional: list[Any], keywords: dict[str, Any], timeout: float
) -> Any:
    """Run a sync skill on a helper thread so a hung skill cannot hold the run past `timeout`.

    A Python thread cannot be killed: a skill that ignores the timeout keeps running in the
    background (documented); the sandboxed script gets its SkillError on time.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = function(*positional, **keywords)
        except BaseException as error:  # noqa: BLE001 - re-raised on the calling thread
            box["error"] = error

    context = contextvars.copy_context()  # the call's deadline (`call_deadline`) goes along
    worker = threading.Thread(
        target=context.run, args=(target,), name="agentbox-skill", daemon=True
    )
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise TimeoutError
    if "error" in box:
        raise box["error"]
    return box["value"]
