"""Escape attempts both fallback engines must block; shared by their test modules.

Each case prints ESCAPED only if it got hold of something it must not have. The tests assert
that the run failed, that ESCAPED never appears, and that the host is unchanged.
"""

import os
from pathlib import Path

import pytest

ATTACKS = [
    pytest.param("x = ().__class__.__base__.__subclasses__()\nprint('ESCAPED')", id="subclasses"),
    pytest.param("x = type(()).mro()\nprint('ESCAPED', x)", id="mro"),
    pytest.param("x = getattr((), '__class__')\nprint('ESCAPED', x)", id="getattr-dunder"),
    pytest.param("print('ESCAPED', '{0.__class__}'.format(1))", id="format-attr"),
    pytest.param("print('ESCAPED', str.format('{0.__class__}', 1))", id="unbound-format"),
    pytest.param("print('ESCAPED', '{x.__class__}'.format_map({'x': 1}))", id="format-map-attr"),
    pytest.param(
        "def g():\n    yield 1\nprint('ESCAPED', '{0.gi_frame.f_back}'.format(g()))",
        id="format-gi-frame",
    ),
    pytest.param("def g():\n    yield 1\nprint('ESCAPED', g().gi_frame)", id="gi-frame"),
    pytest.param(
        "def g():\n    yield 1\nf = getattr(g(), 'gi_frame')\nprint('ESCAPED', f)",
        id="getattr-gi-frame",
    ),
    pytest.param(
        "try:\n    1/0\nexcept Exception as e:\n    print('ESCAPED', e.__traceback__.tb_frame)",
        id="traceback-frame",
    ),
    pytest.param(
        "try:\n    1/0\nexcept Exception as e:\n    t = getattr(e, '__traceback__')\n"
        "    print('ESCAPED', t)",
        id="getattr-traceback",
    ),
    pytest.param("print('ESCAPED', (1).__reduce__())", id="reduce"),
    pytest.param("print('ESCAPED', print.__reduce_ex__(2))", id="reduce-builtin"),
    pytest.param("print('ESCAPED', vars())", id="vars"),
    pytest.param("print('ESCAPED', dir(1))", id="dir"),
    pytest.param("print('ESCAPED', globals())", id="globals"),
    pytest.param("print('ESCAPED', type.__dict__)", id="type-dict"),
    pytest.param("print('ESCAPED', __builtins__)", id="builtins-name"),
    pytest.param("import os\nprint('ESCAPED', os.environ)", id="import-os"),
    pytest.param("import sys\nprint('ESCAPED', sys.modules)", id="sys-modules"),
    pytest.param("import subprocess\nprint('ESCAPED')", id="import-subprocess"),
    pytest.param("import importlib\nprint('ESCAPED')", id="import-importlib"),
    pytest.param("import builtins\nprint('ESCAPED', builtins.open)", id="import-builtins"),
    pytest.param("print('ESCAPED', __import__('os'))", id="dunder-import"),
    pytest.param("print('ESCAPED', open('/etc/hostname').read())", id="open"),
    pytest.param("print('ESCAPED', eval('1+1'))", id="eval"),
    pytest.param("exec('print(1)')\nprint('ESCAPED')", id="exec"),
    pytest.param("print('ESCAPED', compile('1', 'x', 'eval'))", id="compile"),
    pytest.param("def f():\n    pass\nprint('ESCAPED', f.__globals__)", id="function-globals"),
    pytest.param("x = 'a' * 10**10\nprint('ESCAPED')", id="huge-string"),
    pytest.param("x = 10**10**10\nprint('ESCAPED')", id="huge-power"),
    pytest.param("def f(n):\n    return f(n + 1)\nf(0)\nprint('ESCAPED')", id="deep-recursion"),
    pytest.param("raise SystemExit('bye')\nprint('ESCAPED')", id="system-exit-message"),
    # Published RestrictedPython/asteval escape classes, re-tried on curated objects (issue 12).
    pytest.param(
        "def f():\n    pass\nprint('ESCAPED', '{0.__globals__}'.format(f))", id="format-globals"
    ),
    pytest.param(
        "def f():\n    pass\nprint('ESCAPED', '{0:{1}}'.format(f, '{0.__globals__}'))",
        id="format-nested-spec",
    ),
    pytest.param("def f():\n    pass\nprint('ESCAPED', f.__builtins__)", id="function-builtins"),
    pytest.param("print('ESCAPED', (lambda: 0).__code__)", id="lambda-code"),
    pytest.param("print('ESCAPED', getattr(1, '__cla' + 'ss__'))", id="getattr-computed"),
    pytest.param("def g():\n    yield 1\nprint('ESCAPED', g().gi_code)", id="gi-code"),
    pytest.param("async def c():\n    pass\nprint('ESCAPED', c().cr_frame)", id="cr-frame"),
    pytest.param("async def a():\n    yield 1\nprint('ESCAPED', a().ag_frame)", id="ag-frame"),
    pytest.param("print('ESCAPED', print.__self__)", id="print-self"),
    pytest.param("print('ESCAPED', len.__self__.open)", id="len-self-open"),
    pytest.param(
        "try:\n    1/0\nexcept Exception as e:\n    print('ESCAPED', e.with_traceback(None).__traceback__)",
        id="with-traceback",
    ),
]

# Published advisories, re-tried against both engines.
ADVISORIES = [
    # asteval GHSA-89v8-rhwq-hf77 (CVE-2026-55244): BaseException subclasses escaped eval().
    pytest.param("raise KeyboardInterrupt('x')\nprint('ESCAPED')", id="GHSA-89v8-keyboard"),
    pytest.param("raise BaseException('x')\nprint('ESCAPED')", id="GHSA-89v8-base"),
    # asteval issue #86: print.__reduce__() handed out getattr and the interpreter.
    pytest.param("r = print.__reduce__()\nprint('ESCAPED', r)", id="asteval-86-reduce"),
    # RestrictedPython CVE-2024-47532: AttributeError.obj leaked the object behind a guard.
    pytest.param(
        "try:\n    raise AttributeError('x')\nexcept AttributeError as e:\n"
        "    print('ESCAPED', e.obj)",
        id="CVE-2024-47532-obj",
    ),
    # RestrictedPython CVE-2023-41039 / CVE-2026-76825: string.Formatter traversal.
    pytest.param(
        "import string\nprint('ESCAPED', string.Formatter().format('{0.__class__}', 1))",
        id="CVE-2023-41039-formatter",
    ),
]


def host_snapshot(directory: Path) -> dict[str, object]:
    """What an escaped script would most likely touch in the host: env and its working dir."""
    return {
        "env": dict(os.environ),
        "cwd": os.getcwd(),
        "files": sorted((path.name, path.read_bytes()) for path in directory.iterdir()),
    }
