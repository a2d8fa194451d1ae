"""What a `restricted` script may hold: opaque callables and curated views of allowed modules.

Issue 12: library code that reads attributes by a name its caller chooses
(`functools.update_wrapper(f, statistics.mean, updated=('__globals__',))`) made every library
object the script held a path to `sys`. So a script holds no library function, class or module:

- every callable it gets (builtins, module functions, the engine's own guards) is an `Opaque`:
  a C-level `functools.partial` whose target no attribute reveals;
- an allowed module is a `ModuleView` of the names listed in `EXPOSED`: Opaque callables,
  C-implemented types, plain constants. Classes written in Python are not listed (their methods
  carry `__globals__`), nor is anything that copies attributes by a caller-chosen name;
- what a library call returns is vetted (`Curator.vet`): library functions come back Opaque,
  library generators as lists, named tuples as tuples; modules, frames, code and instances of
  Python-written library classes are refused;
- an exception leaving a library call is re-raised without its traceback, as its own type if
  that type is C-implemented or the script's, else as a fresh instance of its nearest such base;
- the glue between the script and those calls runs in a namespace holding only Opaques.

What remains reachable only through frames (the engine's guard functions are ordinary Python
below some script frames) is behind the guard: frame, traceback and generator attributes are
refused by name, and no exposed callable reads an attribute by a name its caller chooses.
"""

import functools
import importlib
import sys
import types
from collections.abc import Callable
from typing import Any

# The allowed modules and, for each, the names a script gets. Reviewed by hand: each is a
# C function, a plain Python function, a C-implemented type or a constant (`prepare` checks).
# Left out on purpose: functools.update_wrapper / wraps (copy attributes by caller-chosen
# names), total_ordering (installs library functions on the script's class), singledispatch
# and every class written in Python (Counter, Fraction, NormalDist, TextWrapper, ...).
EXPOSED: dict[str, str] = {
    "base64": "b16decode b16encode b32decode b32encode b32hexdecode b32hexencode b64decode "
    "b64encode b85decode b85encode a85decode a85encode decode decodebytes encode encodebytes "
    "standard_b64decode standard_b64encode urlsafe_b64decode urlsafe_b64encode",
    "bisect": "bisect bisect_left bisect_right insort insort_left insort_right",
    "cmath": "acos acosh asin asinh atan atanh cos cosh e exp inf infj isclose isfinite isinf "
    "isnan log log10 nan nanj phase pi polar rect sin sinh sqrt tan tanh tau",
    "collections": "OrderedDict defaultdict deque",
    "copy": "Error copy deepcopy",
    "datetime": "MAXYEAR MINYEAR UTC date datetime time timedelta timezone tzinfo",
    "decimal": "BasicContext Clamped Context ConversionSyntax Decimal DecimalException "
    "DefaultContext DivisionByZero DivisionImpossible DivisionUndefined ExtendedContext "
    "FloatOperation Inexact InvalidContext InvalidOperation MAX_EMAX MAX_PREC MIN_EMIN "
    "MIN_ETINY Overflow ROUND_05UP ROUND_CEILING ROUND_DOWN ROUND_FLOOR ROUND_HALF_DOWN "
    "ROUND_HALF_EVEN ROUND_HALF_UP ROUND_UP Rounded Subnormal Underflow getcontext "
    "localcontext setcontext",
    "difflib": "IS_CHARACTER_JUNK IS_LINE_JUNK context_diff get_close_matches ndiff restore "
    "unified_diff",
    "functools": "WRAPPER_ASSIGNMENTS WRAPPER_UPDATES cache cmp_to_key lru_cache partial reduce",
    "hashlib": "algorithms_available algorithms_guaranteed blake2b blake2s md5 new "
    "pbkdf2_hmac sha1 sha224 sha256 sha384 sha3_224 sha3_256 sha3_384 sha3_512 sha512 "
    "shake_128 shake_256",
    "heapq": "heapify heappop heappush heappushpop heapreplace merge nlargest nsmallest",
    "itertools": "accumulate chain combinations combinations_with_replacement compress count "
    "cycle dropwhile filterfalse groupby islice pairwise permutations product repeat starmap "
    "takewhile tee zip_longest",
    "json": "JSONDecodeError dumps loads",
    "math": "acos acosh asin asinh atan atan2 atanh ceil comb copysign cos cosh degrees dist e "
    "erf erfc exp expm1 fabs factorial floor fmod frexp fsum gamma gcd hypot inf isclose "
    "isfinite isinf isnan isqrt lcm ldexp lgamma log log10 log1p log2 modf nan nextafter perm "
    "pi pow prod radians remainder sin sinh sqrt tan tanh tau trunc ulp",
    "pprint": "isreadable isrecursive pformat pp pprint saferepr",
    "random": "betavariate choice choices expovariate gammavariate gauss getrandbits "
    "lognormvariate normalvariate paretovariate randbytes randint random randrange sample "
    "seed shuffle triangular uniform vonmisesvariate weibullvariate",
    "re": "A ASCII DOTALL I IGNORECASE L LOCALE M MULTILINE NOFLAG S U UNICODE VERBOSE X "
    "Match Pattern compile error escape findall finditer fullmatch match search split sub subn",
    "statistics": "StatisticsError correlation covariance fmean geometric_mean harmonic_mean "
    "linear_regression mean median median_grouped median_high median_low mode multimode pstdev "
    "pvariance quantiles stdev variance",
    "textwrap": "dedent fill indent shorten wrap",
    "time": "asctime ctime gmtime localtime mktime monotonic monotonic_ns perf_counter "
    "perf_counter_ns process_time process_time_ns sleep strftime strptime struct_time time "
    "time_ns",
    "unicodedata": "bidirectional category combining decimal decomposition digit "
    "east_asian_width is_normalized lookup mirrored name normalize numeric unidata_version",
}
# Imported lazily by the modules above at call time; loaded before the OS layer closes files.
LAZY_IMPORTS = ("_strptime", "encodings.idna")

_ATOMS = (type(None), bool, int, float, complex, str, bytes)
_C_DESCRIPTORS = (
    types.BuiltinFunctionType,
    types.ClassMethodDescriptorType,
    types.GetSetDescriptorType,
    types.MemberDescriptorType,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
)
_FRAMES = (types.FrameType, types.CodeType, types.TracebackType, types.ModuleType)
_LIBRARY_ITERATORS = (types.GeneratorType, types.CoroutineType, types.AsyncGeneratorType)


class Opaque(functools.partial):  # type: ignore[type-arg]
    """A callable that hides its target: no attribute, copy or `partial()` of it leads there."""

    __slots__ = ()
    func = args = keywords = None  # type: ignore[assignment]  # shadow partial's members
    __reduce__ = __reduce_ex__ = __setstate__ = None  # type: ignore[assignment]


def opaque(target: Callable[..., Any], *bound: Any) -> Opaque:
    """An Opaque of `target` (an instance dict stops `partial()` from unwrapping it)."""
    wrapper = Opaque(target, *bound)
    wrapper.__dict__  # noqa: B018 - creating the dict is the point
    return wrapper


class ModuleView(types.SimpleNamespace):
    """What `import NAME` gives a script: the exposed names only, no module object."""

    __slots__ = ()


# The glue between a script and the callables it holds. Compiled into a namespace holding only
# Opaques, so a frame of it (in a traceback, below a callback) leads nowhere.
_GLUE = """
def call(target, *args, **kwargs):
    try:
        return vet(target(*args, **kwargs))
    except BaseException as error:
        failure = launder(error)
    raise failure

def guard(target, *args, **kwargs):
    try:
        return target(*args, **kwargs)
    except BaseException as error:
        failure = launder(error)
    raise failure
"""


def is_c_type(cls: type) -> bool:
    """Whether no class in `cls`'s MRO holds anything written in Python."""
    return all(_c_class_dict(base) for base in cls.__mro__)


@functools.cache
def _c_class_dict(cls: type) -> bool:
    return all(_harmless(value, cls) for value in vars(cls).values())


def _harmless(value: Any, owner: type) -> bool:
    """Whether a class attribute is C-level and leads to no module or Python code."""
    if isinstance(value, _ATOMS) or value is NotImplemented or type(value) is owner:
        return True  # type(value) is owner: e.g. timezone.utc
    if isinstance(value, types.BuiltinFunctionType):
        return not isinstance(value.__self__, types.ModuleType)
    if isinstance(value, _C_DESCRIPTORS):
        return True
    if isinstance(value, tuple | frozenset):
        return all(isinstance(item, _ATOMS) for item in value)
    if isinstance(value, type):
        return value in _CHECKING or _checking(value)
    if isinstance(value, _FRAMES + _LIBRARY_ITERATORS) or hasattr(value, "__dict__"):
        return False
    return type(value) in _CHECKING or _checking(type(value))  # e.g. date.resolution


_CHECKING: set[type] = set()


def _checking(kind: type) -> bool:
    _CHECKING.add(kind)
    try:
        return is_c_type(kind)
    finally:
        _CHECKING.discard(kind)


class Curator:
    """One run's view of the allowed modules, and the vetting of what library calls return."""

    def __init__(self) -> None:
        self.script_globals: dict[str, Any] = {}
        self.script_classes: set[int] = set()
        glue: dict[str, Any] = {
            "__builtins__": {"__import__": opaque(_lazy_import)},
            "BaseException": BaseException,
            "vet": opaque(self.vet),
            "launder": opaque(self.launder),
        }
        exec(compile(_GLUE, "<agentbox>", "exec"), glue)
        self._call, self._guard = glue["call"], glue["guard"]
        self.views = {name: self._view(name) for name in EXPOSED}

    # -------------------------------------------------------------- wrapping

    def expose(self, target: Callable[..., Any]) -> Opaque:
        """A library callable for the script: vetted results, laundered exceptions."""
        return opaque(self._call, opaque(target))

    def guarded(self, target: Callable[..., Any]) -> Opaque:
        """One of the engine's own callables: results pass through, exceptions laundered."""
        return opaque(self._guard, opaque(target))

    def _view(self, module_name: str) -> ModuleView:
        module = importlib.import_module(module_name)
        view = ModuleView()
        for name in EXPOSED[module_name].split():
            setattr(view, name, self._exposed_value(module_name, name, getattr(module, name)))
        view.__name__ = module_name
        return view

    def _exposed_value(self, module_name: str, name: str, value: Any) -> Any:
        if isinstance(value, type):
            if is_c_type(value):
                return value
            if issubclass(value, BaseException):
                return _c_base(value)  # what a laundered instance of it is raised as
            raise TypeError(f"{module_name}.{name} is a Python class: it cannot be exposed")
        if isinstance(value, int) and type(value) is not bool and type(value) is not int:
            return int(value)  # re.IGNORECASE and friends are enum members
        if callable(value):
            return self.expose(value)
        if isinstance(value, _ATOMS) or is_c_type(type(value)):
            return value
        if isinstance(value, set | frozenset | tuple) and all(isinstance(v, str) for v in value):
            return value
        raise TypeError(f"{module_name}.{name} cannot be exposed ({type(value).__name__})")

    # -------------------------------------------------------------- vetting

    def is_script_class(self, cls: type) -> bool:
        return id(cls) in self.script_classes

    def _safe_type(self, cls: type) -> bool:
        return all(self.is_script_class(base) or _c_class_dict(base) for base in cls.__mro__)

    def vet(self, value: Any) -> Any:
        """What a library call may hand the script (see the module docstring)."""
        return self._vet(value, set())

    def _vet(self, value: Any, seen: set[int]) -> Any:
        kind = type(value)
        if kind in _ATOMS or isinstance(value, Opaque) or id(value) in seen:
            return value
        if isinstance(value, _FRAMES):
            raise TypeError(f"a {kind.__name__} cannot be handed to the script")
        if isinstance(value, types.FunctionType):
            return value if value.__globals__ is self.script_globals else self.expose(value)
        if isinstance(value, types.MethodType):
            mine = isinstance(value.__func__, types.FunctionType) and (
                value.__func__.__globals__ is self.script_globals
            )
            return value if mine else self.expose(value)
        if isinstance(value, types.BuiltinFunctionType):
            owner = value.__self__
            mine = not isinstance(owner, types.ModuleType) and self._safe_type(type(owner))
            return value if owner is not None and mine else self.expose(value)
        if isinstance(value, _LIBRARY_ITERATORS):
            return self._vet_generator(value, seen)
        if isinstance(value, type):
            if self._safe_type(value):
                return value
            raise TypeError(f"class {value.__qualname__} is not available in the restricted engine")
        seen.add(id(value))
        if isinstance(value, tuple) and not self._safe_type(kind):
            return tuple(self._vet(item, seen) for item in value)  # e.g. a statistics result
        if not self._safe_type(kind):
            raise TypeError(
                f"{kind.__module__}.{kind.__qualname__} objects are not available in the "
                "restricted engine"
            )
        if isinstance(value, functools.partial):
            for item in (value.func, *value.args, *(value.keywords or {}).values()):
                if self._vet(item, seen) is not item:
                    raise TypeError("a partial of a library function cannot be handed out")
        elif isinstance(value, dict):
            pairs = [(self._vet(k, seen), self._vet(v, seen)) for k, v in value.items()]
            if any(
                a is not k or b is not v
                for (a, b), (k, v) in zip(pairs, value.items(), strict=True)
            ):
                return dict(pairs)
        elif isinstance(value, list | tuple | set | frozenset):
            items = [self._vet(item, seen) for item in value]
            if any(a is not b for a, b in zip(items, value, strict=True)):
                return (list if isinstance(value, list) else kind)(items)
        return value

    def _vet_generator(self, value: Any, seen: set[int]) -> Any:
        frame = getattr(value, "gi_frame", None) or getattr(value, "cr_frame", None)
        if frame is not None and frame.f_globals is self.script_globals:
            return value  # the script's own generator
        if not isinstance(value, types.GeneratorType):
            raise TypeError(f"a library {type(value).__name__} cannot be handed to the script")
        return iter([self._vet(item, seen) for item in value])  # e.g. difflib.ndiff

    # -------------------------------------------------------------- exceptions

    def launder(self, error: BaseException) -> BaseException:
        """The exception the script sees instead of `error`: no traceback, no library frames."""
        try:
            kind = type(error)
            if self._safe_type(kind):
                if self.vet(error.args) is not error.args:
                    raise TypeError("arguments")
                error.__traceback__ = None
                error.__context__ = error.__cause__ = None
                return error
            return _c_base(kind)(str(error))
        except BaseException as failure:  # noqa: BLE001 - never let a library frame through
            return RuntimeError(
                f"{type(error).__name__} in a library call ({type(failure).__name__})"
            )


def _lazy_import(name: str, *args: Any, **kwargs: Any) -> types.ModuleType:
    """`__import__` for C functions that import at call time (`time.strptime`): loaded ones."""
    if name not in LAZY_IMPORTS or name not in sys.modules:
        raise ImportError(f"import of {name!r} is not allowed")
    return sys.modules[name]


def _c_base(kind: type[BaseException]) -> type[BaseException]:
    """The nearest C-implemented exception type in `kind`'s MRO."""
    for base in kind.__mro__:
        if is_c_type(base):
            return base
    return Exception
