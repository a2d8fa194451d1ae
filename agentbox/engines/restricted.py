"""The `restricted` engine: RestrictedPython in a killable, resource-limited child process.

RestrictedPython rewrites the script at compile time so that every attribute access, item
access, iteration, attribute write and import goes through a guard this module defines. What
the script can hold at all is curated (`_curated`): module views instead of modules, Opaque
callables instead of functions, so that library code reading attributes *for* the script finds
nothing (issue 12). All of it is a Python-level policy inside the same interpreter as the
script, weaker than the wasm engine's WebAssembly boundary (see docs/engines.md); the child's
process limits (`_child.harden`) and, on Linux, its seccomp filter (`_oslayer`) are the second
layer.
"""

import ast
import builtins
import functools
import linecache
import operator
import string
import sys
import traceback
import types
import weakref
from _string import formatter_field_name_split
from collections.abc import Callable
from typing import Any

from RestrictedPython.compile import compile_restricted_exec
from RestrictedPython.Guards import (
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safe_builtins,
)
from RestrictedPython.transformer import INSPECT_ATTRIBUTES

from agentbox.engines._child import (
    ChildHost,
    ChildProcessEngine,
    Script,
    SkillError,
    SkillFunction,
    exit_status,
)
from agentbox.engines._curated import EXPOSED, LAZY_IMPORTS, Curator, ModuleView, opaque
from agentbox.exit_codes import ExitCode

# Modules a script may import, as curated views (`_curated.EXPOSED`): none evaluates strings
# as code, hands out raw getattr (`operator` is absent: attrgetter/methodcaller bypass the
# guard) or copies attributes by a caller-chosen name; `string` is a shim without `Formatter`.
ALLOWED_MODULES = frozenset(EXPOSED)

# Attributes that walk from an object to frames, code or globals. Names starting with `_` are
# refused anyway; `obj` is AttributeError.obj (CVE-2024-47532); `mro` lists a type's bases.
DENIED_ATTRIBUTES = frozenset(INSPECT_ATTRIBUTES) | {
    "cr_origin",
    "f_lasti",
    "f_lineno",
    "func_closure",
    "func_code",
    "func_globals",
    "gi_running",
    "gi_suspended",
    "im_class",
    "im_func",
    "im_self",
    "mro",
    "tb_lasti",
    "tb_lineno",
}
_DANGEROUS_TYPES = (types.FrameType, types.CodeType, types.TracebackType)

_INPLACE: dict[str, Callable[[Any, Any], Any]] = {
    "+=": operator.iadd,
    "-=": operator.isub,
    "*=": operator.imul,
    "/=": operator.itruediv,
    "//=": operator.ifloordiv,
    "%=": operator.imod,
    "**=": operator.ipow,
    "<<=": operator.ilshift,
    ">>=": operator.irshift,
    "&=": operator.iand,
    "|=": operator.ior,
    "^=": operator.ixor,
    "@=": operator.imatmul,
}


class RestrictedEngine(ChildProcessEngine):
    """RestrictedPython guards plus a child process for real timeouts and memory limits."""

    name = "restricted"


def is_denied(obj: Any, name: str) -> bool:
    """The name-based part of the policy, shared with the asteval engine."""
    return (
        name.startswith("_")
        or name in DENIED_ATTRIBUTES
        or (name == "obj" and isinstance(obj, BaseException))
    )


def guarded_getattr(obj: Any, name: str, *default: Any) -> Any:
    """Every attribute read of the script (and `getattr`, and `str.format` fields)."""
    if not isinstance(name, str):
        raise TypeError("attribute name must be a string")
    if is_denied(obj, name):
        raise AttributeError(f"access to attribute {name!r} is not allowed")
    if name in ("format", "format_map") and (
        isinstance(obj, str) or (isinstance(obj, type) and issubclass(obj, str))
    ):
        return _bound_format(obj, name)
    try:
        value = getattr(obj, name)
    except AttributeError:
        if default:
            return default[0]
        owner = (
            f"module {obj.__name__!r}"
            if isinstance(obj, ModuleView)
            else f"{type(obj).__name__!r} object"
        )
        raise AttributeError(  # a new error: the original's `obj`/`name` would reach the script
            f"{owner} has no attribute {name!r}"
            + (" in the restricted engine" if isinstance(obj, ModuleView) else "")
        ) from None
    return _checked(value, name)


def _checked(value: Any, name: str) -> Any:
    if isinstance(value, types.ModuleType) and value.__name__ not in ALLOWED_MODULES:
        raise AttributeError(f"access to module {name!r} is not allowed")
    if isinstance(value, _DANGEROUS_TYPES):
        raise AttributeError(f"access to attribute {name!r} is not allowed")
    return value


class _SafeFormatter(string.Formatter):
    """`str.format` whose `{0.attr}` fields go through the same guard as the script."""

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> tuple[Any, Any]:
        first, rest = formatter_field_name_split(field_name)
        obj = self.get_value(first, args, kwargs)
        for is_attribute, key in rest:
            obj = guarded_getattr(obj, key) if is_attribute else obj[key]
        return obj, first


_FORMATTER = _SafeFormatter()


def _bound_format(obj: Any, name: str) -> Callable[..., str]:
    def format_map(text: str, mapping: Any) -> str:
        return _FORMATTER.vformat(str(text), (), mapping)

    def format_(text: str, *args: Any, **kwargs: Any) -> str:
        return _FORMATTER.vformat(str(text), args, kwargs)

    function = format_map if name == "format_map" else format_
    return opaque(function, obj) if isinstance(obj, str) else opaque(function)


def _string_shim() -> ModuleView:
    """`string` without `Formatter` and `Template` (attribute traversal, CVE-2023-41039)."""
    shim = ModuleView(
        **{
            name: getattr(string, name)
            for name in (
                "ascii_letters",
                "ascii_lowercase",
                "ascii_uppercase",
                "digits",
                "hexdigits",
                "octdigits",
                "printable",
                "punctuation",
                "whitespace",
            )
        }
    )
    shim.__name__ = "string"
    return shim


class _Policy:
    """The guards, builtins and module views of one run (in the child).

    Every callable the script can reach is an Opaque (`_curated`): the script holds no
    function of agentbox, RestrictedPython or the standard library, so no attribute of
    anything it holds leads to their globals.
    """

    def __init__(self, script: Script, host: ChildHost) -> None:
        self.host = host
        self.curator = Curator()
        self.classes: weakref.WeakSet[type] = weakref.WeakSet()
        self.stdin = script.stdin
        guarded = self.curator.guarded
        self.sys = ModuleView(
            argv=list(script.argv),
            exit=guarded(_exit),
            maxsize=sys.maxsize,
            stdin=self.stdin,
            stdout=_stream_view("sys.stdout", host.stdout, guarded),
            stderr=_stream_view("sys.stderr", host.stderr, guarded),
            version=sys.version,
            version_info=tuple(sys.version_info),
        )
        self.sys.__name__ = "sys"
        self.shims = {"sys": self.sys, "string": _string_shim(), "skills": self._skills()}

    def _skills(self) -> ModuleView:
        """`skills` as the wasm guest has it, with each skill an Opaque."""
        expose, host = self.curator.expose, self.host
        view = ModuleView(
            **{spec["name"]: expose(SkillFunction(host, spec)) for spec in host.list_skills()}
        )
        view.list = expose(host.list_skills)
        view.call_skill = expose(host.call_skill)
        view.SkillError = SkillError
        view.__name__ = "skills"
        return view

    def import_(
        self,
        name: str,
        globals_: Any = None,
        locals_: Any = None,
        fromlist: Any = (),
        level: int = 0,
    ) -> Any:
        if level != 0:
            raise ImportError("relative imports are not allowed")
        if name in self.shims:
            module = self.shims[name]
        elif name in self.curator.views:
            module = self.curator.views[name]
        else:
            raise ImportError(f"import of {name!r} is not allowed")
        for attribute in fromlist or ():
            guarded_getattr(module, attribute)  # `from x import y` reads y without _getattr_
        return module

    def write_guard(self, obj: Any) -> Any:
        """Attribute and item writes: containers, and classes the script defined."""
        if isinstance(obj, dict | list | bytearray) or type(obj) in self.classes:
            return obj
        if isinstance(obj, type) and obj in self.classes:
            return obj
        raise TypeError(f"cannot modify {type(obj).__name__!r} objects")

    def build_class(self, function: Any, name: str, *bases: Any, **keywords: Any) -> type:
        # RestrictedPython passes `metaclass=__metaclass__` (type); anything else is refused.
        if keywords.get("metaclass", type) is not type:
            raise TypeError("metaclasses are not allowed")
        cls: type = builtins.__build_class__(function, name, *bases, **keywords)
        self.classes.add(cls)
        self.curator.script_classes.add(id(cls))
        return cls

    def setattr_(self, obj: Any, name: str, value: Any) -> None:
        if name.startswith("_"):
            raise AttributeError(f"cannot set attribute {name!r}")
        setattr(self.write_guard(obj), name, value)

    def delattr_(self, obj: Any, name: str) -> None:
        if name.startswith("_"):
            raise AttributeError(f"cannot delete attribute {name!r}")
        delattr(self.write_guard(obj), name)

    def print_factory(self, _getattr: Any = None) -> types.SimpleNamespace:
        """RestrictedPython's `print` hook: `builtins.print`, whose default file is the
        script's stdout in the child (`child_main`)."""
        return types.SimpleNamespace(_call_print=opaque(print))

    def input_(self, prompt: object = "") -> str:
        if prompt:
            print(prompt, end="")
        line = self.stdin.readline()
        if not line:
            raise EOFError("EOF when reading a line")
        return line.removesuffix("\n")

    def builtins(self) -> dict[str, Any]:
        table = dict(safe_builtins)
        for name in (
            "all",
            "any",
            "ascii",
            "bin",
            "bytearray",
            "bytes",
            "classmethod",
            "dict",
            "enumerate",
            "filter",
            "format",
            "frozenset",
            "iter",
            "list",
            "map",
            "max",
            "min",
            "next",
            "object",
            "property",
            "reversed",
            "set",
            "sorted",
            "staticmethod",
            "sum",
            "super",
            "tuple",
            "zip",
            "NotImplemented",
            "StopAsyncIteration",
        ):
            table[name] = getattr(builtins, name)
        guarded = self.curator.guarded
        table.update(
            __build_class__=guarded(self.build_class),
            __import__=guarded(self.import_),
            call_skill=self.shims["skills"].call_skill,
            delattr=guarded(self.delattr_),
            exit=guarded(_exit),
            getattr=guarded(guarded_getattr),
            hasattr=guarded(_guarded_hasattr),
            input=guarded(self.input_),
            quit=guarded(_exit),
            setattr=guarded(self.setattr_),
            type=opaque(_type),
        )
        table.pop("_getattr_", None)
        # C builtins become Opaque too: `len.__self__` is the real `builtins` module.
        return {
            name: opaque(value)
            if callable(value) and not isinstance(value, type | functools.partial)
            else value
            for name, value in table.items()
        }

    def globals(self) -> dict[str, Any]:
        guarded = self.curator.guarded
        namespace = {
            "__builtins__": self.builtins(),
            "__name__": "__main__",
            "__metaclass__": type,
            "_apply_": opaque(operator.call),
            "_getattr_": guarded(guarded_getattr),
            "_getitem_": opaque(operator.getitem),
            "_getiter_": opaque(iter),
            "_inplacevar_": guarded(_inplace),
            "_iter_unpack_sequence_": guarded(guarded_iter_unpack_sequence),
            "_print_": guarded(self.print_factory),
            "_unpack_sequence_": guarded(guarded_unpack_sequence),
            "_write_": guarded(self.write_guard),
            "skills": self.shims["skills"],
        }
        self.curator.script_globals = namespace
        return namespace


def _stream_view(name: str, stream: Any, guarded: Callable[..., Any]) -> ModuleView:
    """`sys.stdout`/`sys.stderr`: write and flush, nothing that leads to the stream object."""
    view = ModuleView(write=guarded(stream.write), flush=guarded(stream.flush))
    view.__name__ = name
    return view


def _exit(code: object = None) -> None:
    raise SystemExit(code)


def _guarded_hasattr(obj: Any, name: str) -> bool:
    try:
        guarded_getattr(obj, name)
    except AttributeError:
        return False
    return True


def _type(obj: Any) -> type:
    """One-argument `type` only, and never a metaclass: `type(int)` is `type` itself, whose
    three-argument form builds classes with any dunder method, around the guards."""
    kind = type(obj)
    if issubclass(kind, type):
        raise TypeError("type() of a class is not available in the restricted engine")
    return kind


def _inplace(op: str, target: Any, value: Any) -> Any:
    return _INPLACE[op](target, value)


class _AnnotationCheck(ast.NodeVisitor):
    """Refuse annotations: `typing.get_type_hints` (via functools.singledispatch) evals them."""

    def generic_visit(self, node: ast.AST) -> None:
        if isinstance(node, ast.arg) and node.annotation is not None:
            raise SyntaxError("annotations are not allowed", (None, node.lineno, None, None))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.returns:
            raise SyntaxError("annotations are not allowed", (None, node.lineno, None, None))
        super().generic_visit(node)


def prepare() -> Callable[[Script, ChildHost], tuple[int, str]]:
    """Import everything a run may need now: after `harden` no file can be opened."""
    for name in sorted(ALLOWED_MODULES) + list(LAZY_IMPORTS):
        __import__(name)
    traceback.format_exception(ValueError, ValueError("warm-up"), None)

    def execute(script: Script, host: ChildHost) -> tuple[int, str]:
        text = script.source.decode("utf-8", "replace")
        try:
            tree = ast.parse(script.source, script.filename)
            _AnnotationCheck().visit(tree)
        except (SyntaxError, ValueError) as error:
            if isinstance(error, SyntaxError) and error.filename is None:
                error.filename = script.filename
            traceback.print_exception(type(error), error, None, file=host.stderr, chain=False)
            return ExitCode.SCRIPT_ERROR, type(error).__name__
        compiled = compile_restricted_exec(tree, script.filename)
        if compiled.errors:
            for line in compiled.errors:
                print(f'File "{script.filename}", {line}', file=host.stderr)
            return ExitCode.SCRIPT_ERROR, "SyntaxError"
        linecache.cache[script.filename] = (
            len(text),
            None,
            text.splitlines(keepends=True),
            script.filename,
        )
        policy = _Policy(script, host)
        assert compiled.code is not None  # compile errors returned above
        try:
            exec(compiled.code, policy.globals())
        except SystemExit as exit_request:
            return exit_status(exit_request.code, host.stderr), ""
        except BaseException as error:  # noqa: BLE001 - like `python`: report anything
            _print_script_traceback(error, script.filename, host)
            return ExitCode.SCRIPT_ERROR, type(error).__name__
        return ExitCode.OK, ""

    return execute


def _print_script_traceback(error: BaseException, filename: str, host: ChildHost) -> None:
    """The traceback `python` prints, with only the script's frames (no host paths)."""
    frames = [
        frame for frame in traceback.extract_tb(error.__traceback__) if frame.filename == filename
    ]
    lines = ["Traceback (most recent call last):\n"] if frames else []
    lines += traceback.StackSummary.from_list(frames).format()
    lines += traceback.format_exception_only(type(error), error)
    host.stderr.write("".join(lines))
