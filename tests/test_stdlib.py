"""The whole standard library travels inside the snapshot: nothing is read from the host."""

import json

from agentbox import Sandbox
from agentbox.engines.wasm.stdlib_support import UNSUPPORTED

SWEEP = """
import contextlib, importlib, io, json, sys
results = {}
for name in sorted(sys.stdlib_module_names):
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # `this` prints the Zen
            importlib.import_module(name)
        results[name] = None
    except BaseException as error:
        results[name] = f"{type(error).__name__}: {error}"
print(json.dumps(results))
"""


def test_every_supported_stdlib_module_imports(sandbox: Sandbox) -> None:
    result = sandbox.run(SWEEP)
    assert result.exit_code == 0, result.stderr
    outcomes: dict[str, str | None] = json.loads(result.stdout)
    failed = {name: error for name, error in outcomes.items() if error is not None}
    unexpected_failures = {name: error for name, error in failed.items() if name not in UNSUPPORTED}
    assert unexpected_failures == {}
    now_working = sorted(set(UNSUPPORTED) - set(failed))
    assert now_working == [], "listed as unsupported but imports: update stdlib_support.py"
    assert set(UNSUPPORTED) <= set(outcomes), "unsupported list names a non-stdlib module"


def test_heavy_modules_work_with_no_host_paths(sandbox: Sandbox) -> None:
    code = """
import decimal, sqlite3, zoneinfo, asyncio, socket, tomllib, csv, statistics, email.parser
import xml.etree.ElementTree as ET, http.client, urllib.request, concurrent.futures, hashlib
import encodings.idna, unicodedata, difflib, fractions, dataclasses, typing, pathlib
print(decimal.Decimal(1) / 7)
db = sqlite3.connect(":memory:")
db.execute("create table t(x)")
db.execute("insert into t values (2)")
print(db.execute("select x * 21 from t").fetchone()[0])
print(asyncio.run(asyncio.sleep(0, result="async")))
print(ET.fromstring("<a><b>xml</b></a>").find("b").text, "bücher".encode("idna"))
print(hashlib.sha256(b"x").hexdigest()[:8], statistics.mean([1, 2, 3]))
import sys; print(sys.path, [p for p in sys.path if p.startswith("/python")])
"""
    result = sandbox.run(code)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:5] == [
        "0.1428571428571428571428571429",
        "42",
        "async",
        "xml b'xn--bcher-kva'",
        "2d711642 2",
    ]
    assert lines[5] == "[] []"


def test_module_imported_at_run_time_is_not_preloaded_but_works(sandbox: Sandbox) -> None:
    result = sandbox.run("import sys; print('this' in sys.modules); import this")
    assert result.stdout.startswith("False\nThe Zen of Python")


def test_docs_list_matches_the_module() -> None:
    from pathlib import Path

    from agentbox.engines.wasm.stdlib_support import markdown_table

    docs = (Path(__file__).resolve().parent.parent / "docs" / "stdlib.md").read_text()
    assert markdown_table() in docs
