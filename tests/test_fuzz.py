"""Fuzzing: random scripts, arguments, stdin and CLI options never make a host exception escape.

`Sandbox.run` must always return a `RunResult`; the CLI must end with the script's code, a
documented limit code, or a clean usage error (exit 2, one `agentbox:`/Click message), never an
internal error or a traceback.
"""

import re
import string
from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentbox import AgentboxError, ExitCode, RunResult, Sandbox
from agentbox.cli import cli

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
LIMITS = {None, "timeout", "memory", "fuel", "crash"}
HOST_FRAMES = re.compile(r'File "[^"]*/(agentbox|click|wasmtime)/')
LIMIT_CODES = {ExitCode.TIMEOUT, ExitCode.MEMORY, ExitCode.FUEL, ExitCode.CRASH}


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    sandbox = Sandbox(timeout=3, memory="128M", max_output="64K")
    sandbox.warmup()
    yield sandbox


def check(result: object) -> RunResult:
    assert isinstance(result, RunResult)
    assert isinstance(result.exit_code, int)
    assert result.limit in LIMITS
    assert result.limit != "crash" or result.exit_code == ExitCode.CRASH
    assert len(result.stdout_bytes) <= 64 * 1024 and len(result.stderr_bytes) <= 64 * 1024
    assert "panicked" not in result.stderr, result.stderr
    return result


PYTHONISH = st.lists(
    st.sampled_from(
        [
            "print(1)",
            "x = 1",
            "import json",
            "json.loads('[1]')",
            "raise ValueError",
            "if x:",
            "    pass",
            "def f(",
            "):",
            "'''",
            '"',
            "\\",
            "\t",
            "\r\n",
            "\0",
            "\ufeff",
            "# coding: latin-1",
            "import sys; sys.exit(3)",
            "input()",
            "print(sys.argv)",
            "1/0",
            "λ = 2",
            "\udcff",
            "yield",
            "return",
            "await x",
            "import os; os._exit(5)",
            "exit()",
            "del __builtins__",
        ]
    ),
    max_size=8,
).map("\n".join)


@FUZZ
@given(code=st.binary(max_size=2000))
def test_random_bytes_as_a_script(box: Sandbox, code: bytes) -> None:
    check(box.run(code))


@FUZZ
@given(code=st.text(max_size=500) | PYTHONISH)
def test_random_text_as_a_script(box: Sandbox, code: str) -> None:
    check(box.run(code))


@FUZZ
@given(
    args=st.lists(st.text(max_size=50), max_size=8),
    stdin=st.binary(max_size=2000) | st.text(max_size=200),
    filename=st.text(min_size=1, max_size=30),
)
def test_random_args_stdin_and_filename(
    box: Sandbox, args: list[str], stdin: bytes | str, filename: str
) -> None:
    code = "import sys\nprint(len(sys.argv), sys.stdin.buffer.read()[:10])"
    result = check(box.run(code, args=args, stdin=stdin, filename=filename))
    if result.exit_code == ExitCode.OK:
        assert result.stdout.startswith(f"{len(args) + 1} ")


def sizes() -> st.SearchStrategy[str]:
    number = st.one_of(
        st.integers(min_value=-10, max_value=2**70).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
    )
    suffix = st.sampled_from(["", "K", "M", "G", "T", "MiB", "b", "x", " "])
    return st.one_of(st.tuples(number, suffix).map("".join), st.text(max_size=10))


def numbers() -> st.SearchStrategy[str]:
    return st.one_of(
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.integers(min_value=-(2**70), max_value=2**70).map(str),
        st.text(alphabet=string.printable, max_size=8),
    )


def invoke(
    options: list[str], script: bytes = b"print(1)\n", script_may_fail: bool = False
) -> None:
    result = CliRunner().invoke(cli, ["run", *options, "-"], input=script, catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(
            f"host exception escaped for {options!r}: {result.exception!r}"
        ) from result.exception
    output = result.output
    assert "internal error" not in output, (options, output)
    assert not HOST_FRAMES.search(output), (options, output)
    assert "panicked" not in output, (options, output)
    if result.exit_code == ExitCode.USAGE:
        return
    allowed = {ExitCode.OK, *LIMIT_CODES} | ({ExitCode.SCRIPT_ERROR} if script_may_fail else set())
    assert result.exit_code in allowed, (options, result.exit_code, output)
    if result.exit_code == ExitCode.OK and not script_may_fail:
        assert result.stdout.startswith("1") or result.stdout == "", (options, output)


@FUZZ
@given(timeout=numbers())
def test_cli_random_timeout(timeout: str) -> None:
    invoke(["--timeout", timeout])


@FUZZ
@given(memory=sizes(), max_output=sizes())
def test_cli_random_sizes(memory: str, max_output: str) -> None:
    invoke(["--memory", memory, "--max-output", max_output])


@settings(FUZZ, max_examples=15)
@given(fuel=numbers())
def test_cli_random_fuel(fuel: str) -> None:
    invoke(["--fuel", fuel])


@FUZZ
@given(
    env=st.lists(st.text(max_size=20).filter(lambda s: "\0" not in s), max_size=4),
    mounts=st.lists(
        st.one_of(
            st.sampled_from(["/tmp", "/tmp:ro", "/tmp:/x", "/tmp:/x:rw", "/nonexistent", ":", ""]),
            st.text(max_size=20).filter(lambda s: "\0" not in s),
        ),
        max_size=3,
    ),
)
def test_cli_random_env_and_mounts(env: list[str], mounts: list[str]) -> None:
    options = [part for value in env for part in ("--env", value)]
    options += [part for value in mounts for part in ("--mount", value)]
    invoke(options, b"import os\nprint(1, len(os.environ))\n")


@settings(FUZZ, max_examples=25)
@given(
    timeout=st.sampled_from(["0.5", "1", "1e-9"]),
    memory=st.sampled_from(["64M", "128M", "1G", "100"]),
    max_output=st.sampled_from(["0", "1", "10", "1K", "1M"]),
    script=st.sampled_from(
        [b"print(1)", b"while True: pass", b"bytearray(10**9)", b"print('x' * 10**6)", b"\xff"]
    ),
)
def test_cli_random_everything(timeout: str, memory: str, max_output: str, script: bytes) -> None:
    options = ["--timeout", timeout, "--memory", memory, "--max-output", max_output]
    invoke(options, script, script_may_fail=True)


@FUZZ
@given(
    timeout=st.floats(allow_nan=True, allow_infinity=True) | st.integers(-5, 2**70),
    memory=st.integers(-5, 2**70) | sizes(),
    max_output=st.integers(-5, 2**70) | sizes(),
)
def test_api_random_limits(timeout: float, memory: int | str, max_output: int | str) -> None:
    """Constructing a Sandbox either fails with AgentboxError or gives one that runs."""
    try:
        sandbox = Sandbox(timeout=timeout, memory=memory, max_output=max_output)
    except AgentboxError:
        return
    except (click.ClickException, TypeError) as error:  # pragma: no cover - reported below
        raise AssertionError(f"unexpected {error!r}") from error
    result = sandbox.run("print(1)")
    assert isinstance(result, RunResult)
    assert result.limit in LIMITS
