"""The `restricted` engine: ordinary scripts, skills, limits and the attack corpus."""

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from attack_corpus import ADVISORIES, ATTACKS, host_snapshot

from agentbox.engines.base import RunSettings, ScriptRequest
from agentbox.engines.restricted import ALLOWED_MODULES, RestrictedEngine
from agentbox.errors import UsageError
from agentbox.exit_codes import ExitCode
from agentbox.limits import Limits
from agentbox.result import RunResult
from agentbox.skills import SkillFailure, SkillSet
from tests.helpers import returns

ENGINE = RestrictedEngine()


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


async def double(x: int) -> int:
    """Double a number, asynchronously."""
    await asyncio.sleep(0.01)
    return x * 2


def refuse() -> None:
    raise SkillFailure("not today")


SKILLS = SkillSet([add, double, refuse])


def run(code: str, timeout: float = 10, memory: int = 256 << 20, **limits: int) -> RunResult:
    settings = RunSettings(Limits(timeout=timeout, memory=memory, **limits))
    return ENGINE.run(ScriptRequest(code.encode()), settings, SKILLS.bind_run())


@pytest.mark.parametrize(
    ("code", "stdout"),
    [
        pytest.param("print(sum(i * i for i in range(10)))", "285\n", id="generator"),
        pytest.param("def f(n):\n    return n * 2\nprint(f(21))", "42\n", id="function"),
        pytest.param("print([x for x in range(5) if x % 2])", "[1, 3]\n", id="comprehension"),
        pytest.param("n = 7\nprint(f'{n:03d} {n!r}')", "007 7\n", id="f-string"),
        pytest.param("print('{} {k}'.format(1, k=2))", "1 2\n", id="str-format"),
        pytest.param(
            "class P:\n    def __init__(self, x):\n        self.x = x\n"
            "    def twice(self):\n        return self.x * 2\nprint(P(4).twice())",
            "8\n",
            id="class",
        ),
        pytest.param(
            "import json, math, re\nprint(json.dumps({'a': math.floor(2.5)}), "
            "re.findall(r'\\d', 'a1b2'))",
            "{\"a\": 2} ['1', '2']\n",
            id="imports",
        ),
        pytest.param(
            "from collections import defaultdict\nd = defaultdict(int)\nd['a'] = d['a'] + 2\nprint(d['a'])",
            "2\n",
            id="from",
        ),
        pytest.param("a, (b, c) = 1, (2, 3)\nx = 1\nx += a + b + c\nprint(x)", "7\n", id="unpack"),
        pytest.param("d = {}\nd['k'] = [1]\nd['k'][0] = 2\nprint(d)", "{'k': [2]}\n", id="write"),
        pytest.param("import sys\nprint(sys.argv)", "['<stdin>']\n", id="argv"),
    ],
)
def test_ordinary_scripts(code: str, stdout: str) -> None:
    result = run(code)
    assert (result.stdout, result.stderr, result.exit_code) == (stdout, "", 0)
    assert result.engine == "restricted"


@pytest.mark.parametrize(
    ("code", "stdout"),
    [
        pytest.param(
            "import json\ntry:\n    json.loads('{')\nexcept json.JSONDecodeError as e:\n"
            "    print('bad json:', e)",
            "bad json: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)\n",
            id="library-exception",
        ),
        pytest.param(
            "import statistics\nprint(statistics.mean([1, 2]), "
            "statistics.linear_regression([1, 2, 3], [2, 4, 6]))",
            "1.5 (2.0, 0.0)\n",
            id="named-tuple-result",
        ),
        pytest.param(
            "import difflib\nprint(list(difflib.ndiff(['a'], ['b'])))",
            "['- a', '+ b']\n",
            id="library-generator",
        ),
        pytest.param(
            "import functools\n@functools.lru_cache(maxsize=None)\ndef fib(n):\n"
            "    return n if n < 2 else fib(n - 1) + fib(n - 2)\nprint(fib(50))",
            "12586269025\n",
            id="lru-cache",
        ),
        pytest.param(
            "import re, time\nprint(re.findall('A', 'aA', re.I), "
            "time.strptime('2024', '%Y').tm_year)",
            "['a', 'A'] 2024\n",
            id="flags-and-lazy-import",
        ),
        pytest.param(
            "import sys\nprint('to err', file=sys.stderr)\nsys.stdout.write('out\\n')",
            "out\n",
            id="streams",
        ),
    ],
)
def test_curated_modules_work(code: str, stdout: str) -> None:
    result = run(code)
    assert (result.stdout, result.exit_code) == (stdout, 0), result.stderr


def test_a_python_written_class_is_refused_with_one_clear_line() -> None:
    result = run("from collections import Counter\n")
    assert result.exit_code == ExitCode.SCRIPT_ERROR
    assert result.stderr.strip().splitlines()[-1] == (
        "AttributeError: module 'collections' has no attribute 'Counter' in the restricted engine"
    )


def test_stdin_and_input() -> None:
    settings = RunSettings(Limits(timeout=10))
    request = ScriptRequest(
        b"print(input().upper())\nimport sys\nprint(sys.stdin.read())", stdin=b"ab\ncd"
    )
    result = ENGINE.run(request, settings, SKILLS.bind_run())
    assert result.stdout == "AB\ncd\n"


def test_uncaught_exception_names_the_line() -> None:
    result = run("x = 1\ny = x / 0\n")
    assert result.exit_code == ExitCode.SCRIPT_ERROR and result.limit is None
    assert 'File "<stdin>", line 2' in result.stderr
    assert result.stderr.rstrip().endswith("ZeroDivisionError: division by zero")
    assert "/" not in result.stderr.split("\n")[1]  # no host paths in the traceback


@pytest.mark.parametrize("code", ["def f(:\n", "x = (1).__class__"], ids=["syntax", "policy"])
def test_compile_errors_exit_1(code: str) -> None:
    result = run(code)
    assert result.exit_code == ExitCode.SCRIPT_ERROR and "line 1" in result.stderr.lower()


@pytest.mark.parametrize(
    ("code", "exit_code"),
    [("import sys\nsys.exit(3)", 3), ("import sys\nsys.exit()", 0), ("exit('bye')", 1)],
    ids=["int", "none", "message"],
)
def test_sys_exit(code: str, exit_code: int) -> None:
    assert run(code).exit_code == exit_code


def test_skills_sync_and_listing() -> None:
    result = run(
        "import skills\nprint(skills.add(a=1, b=2), call_skill('add', {'a': 2, 'b': 3}))\n"
        "print([s['name'] for s in skills.list()])"
    )
    assert result.stdout == "3 5\n['add', 'double', 'refuse']\n"
    assert [(call.name, call.ok) for call in result.skill_calls] == [("add", True), ("add", True)]


@pytest.mark.parametrize(
    ("call", "message"),
    [("call_skill('nope')", "no skill named 'nope'"), ("skills.refuse()", "not today")],
    ids=["unknown", "failure"],
)
def test_skill_errors_raise_skill_error(call: str, message: str) -> None:
    result = run(f"try:\n    {call}\nexcept skills.SkillError as e:\n    print('caught', e)")
    assert result.stdout == f"caught {message}\n"
    assert result.skill_calls[-1].ok is False


def test_async_skill_via_run_async() -> None:
    async def main() -> RunResult:
        skills = SKILLS.bind_run(asyncio.get_running_loop())
        request = ScriptRequest(b"print(skills.double(x=21))")
        return await ENGINE.run_async(request, RunSettings(Limits(timeout=10)), skills)

    result = asyncio.run(main())
    assert result.stdout == "42\n" and result.skill_calls[0].name == "double"


def test_timeout_kills_the_child() -> None:
    result = returns(run, "print('started', flush=True)\nwhile True:\n    pass", timeout=1)
    assert (result.exit_code, result.limit) == (ExitCode.TIMEOUT, "timeout")
    assert result.stdout == "started\n"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS is Linux-only")
def test_memory_limit() -> None:
    result = run("x = bytearray(200 * 1024 * 1024)\nprint('ESCAPED')", memory=128 << 20)
    assert (result.exit_code, result.limit) == (ExitCode.MEMORY, "memory")
    assert "ESCAPED" not in result.stdout


def test_output_cap() -> None:
    result = run("for i in range(10000):\n    print('x' * 99)", max_output=1000)
    assert result.truncated and len(result.stdout_bytes) == 1000
    assert "999000 bytes beyond" in (result.message or "")


def test_fuel_is_refused() -> None:
    with pytest.raises(UsageError, match="fuel"):
        ENGINE.run(ScriptRequest(b""), RunSettings(Limits(fuel=10)), SKILLS.bind_run())


RESTRICTED_ONLY = [
    # RestrictedPython CVE-2025-22153: try/except* escaped the guards.
    pytest.param(
        "try:\n    pass\nexcept* Exception:\n    pass\nprint('ESCAPED')", id="CVE-2025-22153"
    ),
    # RestrictedPython GHSA-ffg3-p8fm-mjx2: a positional-only parameter shadowed a guard.
    pytest.param(
        "def f(_getattr_, /):\n    return _getattr_\nprint('ESCAPED')", id="GHSA-ffg3-p8fm-mjx2"
    ),
    pytest.param("import json\nprint('ESCAPED', json.codecs)", id="module-walk"),
    pytest.param("import re\nprint('ESCAPED', re.enum.sys)", id="module-walk-deep"),
    pytest.param("from json import codecs\nprint('ESCAPED', codecs)", id="from-import-walk"),
    pytest.param("import operator\nprint('ESCAPED')", id="operator-attrgetter"),
    pytest.param("import json\njson.dumps = 1\nprint('ESCAPED')", id="module-write"),
    pytest.param("setattr(print, '__doc__', 'x')\nprint('ESCAPED')", id="setattr-dunder"),
    pytest.param("X = type('X', (), {})\nprint('ESCAPED', X)", id="type-3-args"),
    pytest.param(
        "T = type(int)\nX = T('X', (), {'__getattr__': lambda self, name: name})\n"
        "print('ESCAPED', X().anything)",
        id="metaclass-via-type-of-type",
    ),
    pytest.param(
        "import functools\ndef f(x: 'int'):\n    pass\nprint('ESCAPED')", id="annotation-eval"
    ),
    pytest.param(
        "class M(type):\n    pass\nclass X(metaclass=M):\n    pass\nprint('ESCAPED')",
        id="metaclass",
    ),
]


# Issue 12: allowed library functions that copy attributes by a name the script chooses
# (`functools.update_wrapper`) reached real modules through objects the script held.
_CAPTURE = (
    "box = []\n"
    "class X:\n"
    "    sys = property(lambda self: None, lambda self, value: box.append(value))\n"
    "    tb = property(lambda self: None, lambda self, value: box.append(value))\n"
)
ATTRIBUTE_COPY = [
    pytest.param(
        "import functools, statistics\ndef f():\n    pass\n"
        "functools.update_wrapper(f, statistics.mean, assigned=(), updated=('__globals__',))\n"
        "print('ESCAPED', sys.modules['os'])",
        id="update-wrapper-globals-statistics",
    ),
    pytest.param(
        "import functools, statistics\ndef f():\n    pass\n"
        "g = functools.wraps(statistics.mean, assigned=(), updated=('__globals__',))(f)\n"
        "print('ESCAPED', sys.modules['builtins'])",
        id="wraps-globals-statistics",
    ),
    pytest.param(
        "import functools, datetime\n"
        + _CAPTURE
        + "functools.update_wrapper(X(), datetime, assigned=('sys',), updated=())\n"
        "print('ESCAPED', box[0].modules['os'])",
        id="update-wrapper-datetime-sys",
    ),
    pytest.param(
        "import functools, fractions\n"
        + _CAPTURE
        + "functools.update_wrapper(X(), fractions, assigned=('sys',), updated=())\n"
        "print('ESCAPED', box[0].modules['os'])",
        id="update-wrapper-fractions-sys",
    ),
    pytest.param(
        "import functools, math\n" + _CAPTURE + "class Y:\n    pass\n"
        "functools.update_wrapper(Y(), math.sqrt, assigned=('__self__',), updated=())\n"
        "print('ESCAPED', box)",
        id="update-wrapper-builtin-self",
    ),
    pytest.param(
        "import functools\n" + _CAPTURE + "try:\n    1/0\nexcept Exception as e:\n"
        "    functools.update_wrapper(X(), e, assigned=('__traceback__',), updated=())\n"
        "print('ESCAPED', box)",
        id="update-wrapper-traceback",
    ),
    pytest.param(
        "import statistics\nprint('ESCAPED', '{0.mean.__globals__}'.format(statistics))",
        id="format-globals",
    ),
    pytest.param(
        "import statistics\nprint('ESCAPED', '{m.__globals__[sys]}'.format_map({'m': statistics.mean}))",
        id="format-map-globals",
    ),
    pytest.param(
        "import json\nprint('ESCAPED', getattr(json.dumps, '__globals__'))", id="getattr-globals"
    ),
    pytest.param("print('ESCAPED', len.__self__)", id="builtin-self"),
    pytest.param("print('ESCAPED', getattr(len, '__self__'))", id="getattr-builtin-self"),
    pytest.param(
        "import collections\nprint('ESCAPED', collections.Counter.most_common)", id="python-class"
    ),
    pytest.param("import fractions\nprint('ESCAPED', fractions.Fraction(1, 3))", id="fractions"),
    pytest.param(
        "import functools\nprint('ESCAPED', functools.reduce(getattr, ['__class__'], 1))",
        id="reduce-getattr",
    ),
    pytest.param("print('ESCAPED', list(map(getattr, [1], ['__class__'])))", id="map-getattr"),
    pytest.param(
        "import operator\nprint('ESCAPED', operator.attrgetter('__class__')(1))", id="attrgetter"
    ),
    pytest.param(
        "def g():\n    yield 1\nprint('ESCAPED', g().gi_frame.f_back.f_globals)", id="gi-frame-back"
    ),
    pytest.param(
        "x = ().__class__.__mro__[-1].__subclasses__()\nprint('ESCAPED', x)", id="mro-walk"
    ),
    pytest.param("import copy\nprint('ESCAPED', copy.copy(len).__self__)", id="copy-builtin-self"),
]


@pytest.mark.parametrize("code", ATTACKS + ADVISORIES + RESTRICTED_ONLY + ATTRIBUTE_COPY)
def test_attack_is_blocked(code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "canary.txt").write_text("untouched")
    monkeypatch.chdir(tmp_path)  # the child inherits it as its working directory
    before = host_snapshot(tmp_path)
    result = run(code, timeout=2, memory=128 << 20)
    assert not result.ok
    assert "ESCAPED" not in result.stdout
    assert host_snapshot(tmp_path) == before


def test_allowed_modules_hand_out_no_raw_escape_hatches() -> None:
    """No public attribute of an allowed module is a raw getattr, eval or import."""
    import builtins
    import importlib
    import operator

    forbidden = {
        id(getattr(builtins, n))
        for n in ("getattr", "eval", "exec", "open", "compile", "__import__", "vars")
    }
    forbidden |= {id(operator.attrgetter), id(operator.methodcaller)}
    for name in ALLOWED_MODULES:
        module = importlib.import_module(name)
        for attribute in dir(module):
            if not attribute.startswith("_"):
                assert id(getattr(module, attribute)) not in forbidden, f"{name}.{attribute}"


@pytest.mark.skipif(sys.platform == "win32", reason="no resource module on Windows")
def test_os_limits_hold_even_without_the_python_layer() -> None:
    """`harden` alone stops new files and sockets while the descriptor table stays full (all
    macOS has); `os.close` undoes it, which is why Linux has seccomp (test_os_layer.py)."""
    probe = (
        "from agentbox.engines._child import harden\nimport socket\nharden(64 << 20)\n"
        "for attempt in (lambda: open('/tmp/agentbox-probe', 'w'), socket.socket):\n"
        "    try:\n        attempt()\n        print('opened')\n"
        "    except OSError:\n        print('refused')\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30)
    assert out.stdout.split() == ["refused", "refused"], out.stderr
