"""The `asteval` engine: ordinary scripts, skills, limits and the attack corpus."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from attack_corpus import ADVISORIES, ATTACKS, host_snapshot

from agentbox.engines.asteval_engine import AstevalEngine, host_path_scrubber
from agentbox.engines.base import RunSettings, ScriptRequest
from agentbox.exit_codes import ExitCode
from agentbox.limits import Limits
from agentbox.result import RunResult
from agentbox.skills import SkillSet
from tests.helpers import returns

ENGINE = AstevalEngine()


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


async def double(x: int) -> int:
    """Double a number, asynchronously."""
    await asyncio.sleep(0.01)
    return x * 2


SKILLS = SkillSet([add, double])


def run(code: str, timeout: float = 10, memory: int = 256 << 20, **limits: int) -> RunResult:
    settings = RunSettings(Limits(timeout=timeout, memory=memory, **limits))
    return ENGINE.run(ScriptRequest(code.encode()), settings, SKILLS.bind_run())


@pytest.mark.parametrize(
    ("code", "stdout"),
    [
        pytest.param(
            "total = 0\nfor i in range(5):\n    total += i\nprint(total)", "10\n", id="loop"
        ),
        pytest.param("def f(n):\n    return n * 2\nprint(f(21))", "42\n", id="function"),
        pytest.param("print([x for x in range(5) if x % 2])", "[1, 3]\n", id="comprehension"),
        pytest.param("n = 7\nprint(f'{n:03d}')", "007\n", id="f-string"),
        pytest.param("print(math.sqrt(16))", "4.0\n", id="math"),
        pytest.param("print(sys.argv)", "['<stdin>']\n", id="argv"),
    ],
)
def test_ordinary_scripts(code: str, stdout: str) -> None:
    result = run(code)
    assert (result.stdout, result.stderr, result.exit_code) == (stdout, "", 0)
    assert result.engine == "asteval"


def test_uncaught_exception_names_the_line() -> None:
    result = run("x = 1\ny = x / 0\n")
    assert result.exit_code == ExitCode.SCRIPT_ERROR
    assert 'File "<stdin>", line 2' in result.stderr and "ZeroDivisionError" in result.stderr


def test_syntax_error_exits_1() -> None:
    result = run("def f(:\n")
    assert result.exit_code == ExitCode.SCRIPT_ERROR and "SyntaxError" in result.stderr


@pytest.mark.parametrize(
    ("code", "exit_code"),
    [("sys.exit(3)", 3), ("exit()", 0), ("sys.exit('bye')", 1)],
    ids=["int", "none", "message"],
)
def test_sys_exit(code: str, exit_code: int) -> None:
    assert run(code).exit_code == exit_code


def test_skills_sync_and_unknown() -> None:
    result = run(
        "print(skills.add(a=1, b=2), call_skill('add', {'a': 2, 'b': 3}))\n"
        "try:\n    call_skill('nope')\nexcept SkillError:\n    print('caught')"
    )
    assert result.stdout == "3 5\ncaught\n"
    assert [(call.name, call.ok) for call in result.skill_calls] == [
        ("add", True),
        ("add", True),
        ("nope", False),
    ]


def test_async_skill_via_run_async() -> None:
    async def main() -> RunResult:
        skills = SKILLS.bind_run(asyncio.get_running_loop())
        request = ScriptRequest(b"print(skills.double(x=21))")
        return await ENGINE.run_async(request, RunSettings(Limits(timeout=10)), skills)

    result = asyncio.run(main())
    assert result.stdout == "42\n" and result.skill_calls[0].name == "double"


def test_timeout_kills_the_child() -> None:
    result = returns(run, "while True:\n    pass", timeout=1)
    assert (result.exit_code, result.limit) == (ExitCode.TIMEOUT, "timeout")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS is Linux-only")
def test_memory_limit() -> None:
    result = run("x = [0] * (100 * 1024 * 1024)\nprint('ESCAPED')", memory=128 << 20)
    assert (result.exit_code, result.limit) == (ExitCode.MEMORY, "memory")


def test_output_cap() -> None:
    result = run("for i in range(10000):\n    print('x' * 99)", max_output=1000)
    assert result.truncated and len(result.stdout_bytes) == 1000


ASTEVAL_ONLY = [
    # asteval GHSA-3wwr-3g9f-9gc7 (CVE-2025-24359): a format spec that injects a field.
    pytest.param("x = 1\nprint('ESCAPED', f\"{x:{'}{0.__class__}'}}\")", id="GHSA-3wwr-3g9f-9gc7"),
    # asteval GHSA-vp47-9734-prjw: a user function exposed its AST nodes for tampering.
    pytest.param("def f():\n    return 1\nprint('ESCAPED', f.body)", id="GHSA-vp47-9734-prjw"),
    pytest.param("def f():\n    return 1\nprint('ESCAPED', f._interp)", id="procedure-interp"),
    pytest.param("print('ESCAPED', skills._host)", id="private-attribute"),
    pytest.param("print('ESCAPED', sys.stdout._host)", id="private-stream"),
]


@pytest.mark.parametrize("code", ATTACKS + ADVISORIES + ASTEVAL_ONLY)
def test_attack_is_blocked(code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "canary.txt").write_text("untouched")
    monkeypatch.chdir(tmp_path)  # the child inherits it as its working directory
    before = host_snapshot(tmp_path)
    result = run(code, timeout=2, memory=128 << 20)
    assert not result.ok
    assert "ESCAPED" not in result.stdout
    assert host_snapshot(tmp_path) == before


def test_attribute_base_is_evaluated_once() -> None:
    result = run(
        "n = [0]\ndef f():\n    n[0] += 1\n    return 'ab'\nx = f().upper()\nprint(n[0], x)"
    )
    assert result.stdout == "1 AB\n"


def test_non_ascii_identifiers_work_as_in_python() -> None:
    """Issue 12: any non-ASCII identifier failed, with a host path in the error."""
    code = (
        "über = {'ä': 1}\ndef grüße(n):\n    return n * 2\nπ = [ü for ü in range(3)]\n"
        "µ = 3\nprint(über, grüße(2), π, μ)\n"  # µ (micro sign) is NFKC-normalised to μ
    )
    python = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert python.stdout == "{'ä': 1} 4 [0, 1, 2] 3\n"  # positive control: what Python does
    result = run(code)
    assert (result.stdout, result.stderr, result.exit_code) == (python.stdout, "", 0)


HOST_PATHS = [
    p for p in {sys.prefix, sys.base_prefix, os.getcwd(), str(Path(__file__).parents[2])} if p
]


@pytest.mark.parametrize(
    "code",
    [
        "print(café)",
        "def f(:\n",
        "x = 1 / 0",
        "import os",
        "ñ = undefined_name + 1",
        "raise ValueError('bad')",
    ],
    ids=["non-ascii-name-error", "syntax", "zero-division", "import", "assign", "raise"],
)
def test_errors_never_show_a_host_path(code: str) -> None:
    result = run(code)
    assert result.exit_code == ExitCode.SCRIPT_ERROR and "Error" in result.stderr
    assert not [path for path in HOST_PATHS if path in result.stderr], result.stderr


def test_the_scrubber_hides_a_real_host_path() -> None:
    """Positive control for the scrubber itself, on the path the original error showed."""
    import unicodedata

    library = unicodedata.__file__
    assert library is not None and Path(library).is_file()
    scrubbed = host_path_scrubber()(f"RuntimeError: {library}: cannot open shared object file")
    assert scrubbed == "RuntimeError: <host path>: cannot open shared object file"
