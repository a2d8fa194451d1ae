"""Nothing a `restricted` script can hold leads to a module, a function's globals or a frame.

Issue 12: `functools.update_wrapper` read `__globals__` off `statistics.mean` for the script.
Whatever library code may read off an object the script passes in, these walks check that
there is nothing to find: they follow *every* attribute (underscored ones too, as library
code would), container items, and the results of calling exposed callables.
"""

import os
import types
from collections import deque
from collections.abc import Iterator
from typing import Any

import pytest

from agentbox.engines._child import ChildHost, Script
from agentbox.engines._curated import EXPOSED, Curator, Opaque
from agentbox.engines.restricted import _Policy

# What must never be reachable: modules (real `builtins` included), globals, frames, code.
FORBIDDEN = (
    types.ModuleType,
    types.FunctionType,
    types.FrameType,
    types.CodeType,
    types.TracebackType,
    types.GeneratorType,
)
MAX_DEPTH = 3
ATOMS = (type(None), bool, int, float, complex, str, bytes)


def _attributes(obj: Any) -> Iterator[tuple[str, Any]]:
    names = set(dir(obj))
    if isinstance(obj, type):
        for base in obj.__mro__:
            names |= set(vars(base))
    for name in sorted(names):
        try:
            yield name, getattr(obj, name)
        except Exception:  # noqa: BLE001 - a refusing attribute is not a path
            continue
    if isinstance(obj, dict | types.MappingProxyType):
        yield from ((f"[{key!r}]", value) for key, value in list(obj.items()))
    elif isinstance(obj, list | tuple | set | frozenset | deque):
        yield from ((f"[{i}]", value) for i, value in enumerate(list(obj)))


def find_forbidden(root: Any, label: str) -> list[str]:
    """Paths from `root` to anything in FORBIDDEN or with `__globals__`/`__self__` a module."""
    found: list[str] = []
    seen: set[int] = set()
    queue: deque[tuple[Any, str, int]] = deque([(root, label, 0)])
    while queue:
        obj, path, depth = queue.popleft()
        if id(obj) in seen or isinstance(obj, ATOMS):
            continue
        seen.add(id(obj))
        if isinstance(obj, FORBIDDEN) or "__globals__" in dir(obj):
            found.append(f"{path} -> {type(obj).__name__}")
            continue
        if isinstance(getattr(obj, "__self__", None), types.ModuleType):
            found.append(f"{path}.__self__ -> module")
            continue
        if depth < MAX_DEPTH:
            queue.extend((value, f"{path}.{name}", depth + 1) for name, value in _attributes(obj))
    return found


@pytest.fixture(scope="module")
def policy() -> _Policy:
    """A real policy over a real (idle) host, as a run builds it; no skills registered."""
    read_end, write_end = os.pipe()
    host = ChildHost(os.fdopen(write_end, "wb"), os.fdopen(read_end, "rb"), 1 << 20)
    host._skill_specs = []  # what the parent answers for a run without skills
    return _Policy(Script(b"", "<stdin>", ["<stdin>"], ""), host)


@pytest.mark.parametrize("module", sorted(EXPOSED))
def test_every_exposed_attribute_leads_nowhere(policy: _Policy, module: str) -> None:
    view = policy.curator.views[module]
    assert not find_forbidden(view, module)
    names = [name for name in vars(view) if not name.startswith("_")]
    assert sorted(names) == sorted(EXPOSED[module].split())  # positive control: all walked


def test_builtins_globals_and_shims_lead_nowhere(policy: _Policy) -> None:
    namespace = policy.globals()
    assert not find_forbidden(namespace, "globals")
    for name, shim in policy.shims.items():
        assert not find_forbidden(shim, name)


# Calls a script can make, whose results are then walked the same way.
SAMPLE_CALLS = [
    ("datetime", "datetime.now", ()),
    ("datetime", "timedelta", (1,)),
    ("decimal", "Decimal", ("1.5",)),
    ("decimal", "getcontext", ()),
    ("decimal", "localcontext", ()),
    ("re", "compile", ("a(b)",)),
    ("re", "match", ("a(b)", "ab")),
    ("re", "finditer", ("a", "aa")),
    ("hashlib", "sha256", (b"x",)),
    ("hashlib", "new", ("md5",)),
    ("collections", "deque", ([1],)),
    ("itertools", "count", ()),
    ("itertools", "tee", ([1, 2],)),
    ("functools", "lru_cache", ()),
    ("functools", "partial", ("len", "ab")),  # the script's own `len`
    ("difflib", "ndiff", (["a"], ["b"])),
    ("difflib", "unified_diff", (["a"], ["b"])),
    ("heapq", "merge", ([1], [2])),
    ("statistics", "mean", ([1, 2],)),
    ("statistics", "quantiles", ([1, 2, 3, 4],)),
    ("time", "localtime", ()),
    ("json", "loads", ('{"a": [1, 2.5, null]}',)),
    ("copy", "deepcopy", ({"a": [1]},)),
    ("textwrap", "wrap", ("a b c",)),
    ("random", "sample", (range(10), 3)),
    ("unicodedata", "normalize", ("NFC", "é")),
]


def _resolve(view: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        view = getattr(view, part)
    return view


@pytest.mark.parametrize(("module", "name", "args"), SAMPLE_CALLS, ids=lambda v: str(v)[:30])
def test_what_exposed_callables_return_leads_nowhere(
    policy: _Policy, module: str, name: str, args: tuple[Any, ...]
) -> None:
    builtins = policy.builtins()
    args = tuple(builtins[arg] if arg == "len" else arg for arg in args)
    result = _resolve(policy.curator.views[module], name)(*args)
    assert result is not None  # positive control: the call ran and returned something
    assert not find_forbidden(result, f"{module}.{name}()")


def test_a_library_exception_reaches_the_script_without_library_frames(policy: _Policy) -> None:
    loads = policy.curator.views["json"].loads
    with pytest.raises(ValueError, match="Expecting value") as caught:
        loads("")
    assert type(caught.value) is ValueError  # not json's Python-written JSONDecodeError
    frames = []
    traceback = caught.value.__traceback__
    while traceback is not None:
        frames.append(traceback.tb_frame.f_globals)
        traceback = traceback.tb_next
    assert frames  # positive control: the traceback was walked
    assert all("__name__" not in f or f["__name__"] == __name__ for f in frames)


def test_the_walk_finds_what_the_published_attack_used() -> None:
    """Positive control: the walk does flag the raw objects the attack held."""
    import datetime
    import statistics

    assert find_forbidden(statistics.mean, "statistics.mean")
    assert find_forbidden(datetime, "datetime")
    assert find_forbidden(len, "len")  # len.__self__ is the builtins module
    assert not find_forbidden(Curator().expose(statistics.mean), "opaque mean")
    assert isinstance(Curator().expose(len), Opaque)


def test_update_wrapper_finds_nothing_on_what_the_script_holds(policy: _Policy) -> None:
    """The published gadget, run for real against the curated objects and (control) raw ones."""
    import functools
    import statistics

    script_globals = policy.globals()
    exec("def f():\n    pass\ndef g():\n    pass\n", script_globals)
    curated_mean = policy.curator.views["statistics"].mean
    functools.update_wrapper(
        script_globals["f"], curated_mean, assigned=(), updated=("__globals__", "__dict__")
    )
    assert "sys" not in script_globals
    for name in ("__globals__", "__self__", "__wrapped__", "__code__", "func"):
        assert not find_forbidden(getattr(curated_mean, name, None), name)
    # Positive control: the raw function is what the attack copied `sys` from.
    functools.update_wrapper(
        script_globals["g"], statistics.mean, assigned=(), updated=("__globals__",)
    )
    assert isinstance(script_globals["sys"], types.ModuleType)
