"""A script in the sandbox behaves as under `python script.py`."""

import pytest

from agentbox import ExitCode, RunResult, Sandbox


def test_prints_and_exits_zero(sandbox: Sandbox) -> None:
    result = sandbox.run("print('hello', 6 * 7)")
    assert isinstance(result, RunResult)
    assert (result.stdout, result.stderr, result.exit_code) == ("hello 42\n", "", 0)
    assert result.duration_ms > 0


def test_runs_as_main_with_argv(sandbox: Sandbox) -> None:
    code = "import sys\nprint(__name__, sys.argv)"
    result = sandbox.run(code, args=["--verbose", "x"], filename="tool.py")
    assert result.stdout == "__main__ ['tool.py', '--verbose', 'x']\n"


def test_file_is_set_for_named_scripts_only(sandbox: Sandbox) -> None:
    assert sandbox.run("print(__file__)", filename="job.py").stdout == "job.py\n"
    result = sandbox.run("print(__file__)")
    assert result.exit_code == ExitCode.SCRIPT_ERROR
    assert "NameError" in result.stderr


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("import sys; sys.exit()", 0),
        ("import sys; sys.exit(0)", 0),
        ("import sys; sys.exit(3)", 3),
        ("raise SystemExit(42)", 42),
        ("import os; os._exit(7)", 7),
    ],
)
def test_exit_status(sandbox: Sandbox, code: str, expected: int) -> None:
    assert sandbox.run(code).exit_code == expected


def test_exit_with_message_prints_it_and_returns_1(sandbox: Sandbox) -> None:
    result = sandbox.run("import sys; sys.exit('bad things')")
    assert (result.exit_code, result.stderr) == (1, "bad things\n")


def test_uncaught_exception_traceback_names_file_and_line(sandbox: Sandbox) -> None:
    result = sandbox.run("x = 1\n\nraise ValueError('nope')\n", filename="job.py")
    assert result.exit_code == ExitCode.SCRIPT_ERROR
    assert result.stderr.startswith("Traceback (most recent call last):\n")
    assert 'File "job.py", line 3, in <module>' in result.stderr
    assert "raise ValueError('nope')" in result.stderr
    assert result.stderr.endswith("ValueError: nope\n")
    assert "agentbox_guest" not in result.stderr


def test_output_before_an_error_is_kept(sandbox: Sandbox) -> None:
    result = sandbox.run("print('before')\n1/0")
    assert result.stdout == "before\n"
    assert "ZeroDivisionError" in result.stderr


def test_os_exit_flushes_output(sandbox: Sandbox) -> None:
    result = sandbox.run("import os\nprint('kept')\nos._exit(4)")
    assert (result.stdout, result.exit_code) == ("kept\n", 4)


def test_syntax_error(sandbox: Sandbox) -> None:
    result = sandbox.run("def (:\n", filename="bad.py")
    assert result.exit_code == ExitCode.SCRIPT_ERROR
    assert 'File "bad.py", line 1' in result.stderr
    assert result.stderr.rstrip().endswith("SyntaxError: invalid syntax")


def test_non_utf8_source_without_cookie_is_a_syntax_error(sandbox: Sandbox) -> None:
    result = sandbox.run(b"x = '\xff'\n", filename="latin.py")
    assert result.exit_code == ExitCode.SCRIPT_ERROR
    assert result.stderr == (
        "SyntaxError: Non-UTF-8 code starting with '\\xff' in file latin.py on line 1, "
        "but no encoding declared; see https://peps.python.org/pep-0263/ for details\n"
    )


def test_coding_cookie_is_honoured(sandbox: Sandbox) -> None:
    source = "# -*- coding: latin-1 -*-\nprint('caf\xe9')\n".encode("latin-1")
    assert sandbox.run(source).stdout == "caf\xe9\n"


def test_null_bytes_are_a_syntax_error(sandbox: Sandbox) -> None:
    result = sandbox.run(b"print(1)\x00\n")
    assert result.exit_code == ExitCode.SCRIPT_ERROR
    assert "SyntaxError: source code cannot contain null bytes\n" in result.stderr
    assert "line 1" in result.stderr and "Traceback" not in result.stderr


def test_bom_and_windows_line_endings(sandbox: Sandbox) -> None:
    result = sandbox.run(b"\xef\xbb\xbfx = 1\r\nprint(x + 1)\r\n")
    assert (result.stdout, result.exit_code) == ("2\n", 0)


@pytest.mark.parametrize("code", ["", "   \n\n\t\n", "# only a comment"])
def test_empty_scripts_succeed(sandbox: Sandbox, code: str) -> None:
    result = sandbox.run(code)
    assert (result.stdout, result.stderr, result.exit_code) == ("", "", 0)


def test_input_reads_stdin(sandbox: Sandbox) -> None:
    code = "import sys\nprint(input().upper())\nprint(sys.stdin.read().split())"
    result = sandbox.run(code, stdin=b"first line\nsecond third\n")
    assert result.stdout == "FIRST LINE\n['second', 'third']\n"


def test_input_at_end_of_stdin_raises_eoferror(sandbox: Sandbox) -> None:
    result = sandbox.run("input()")
    assert result.exit_code == 1 and "EOFError" in result.stderr


def test_binary_output_is_kept_byte_for_byte(sandbox: Sandbox) -> None:
    result = sandbox.run("import sys; sys.stdout.buffer.write(bytes(range(256)))")
    assert result.stdout_bytes == bytes(range(256))


def test_stdout_and_stderr_are_separate(sandbox: Sandbox) -> None:
    result = sandbox.run("import sys\nprint('out')\nprint('err', file=sys.stderr)")
    assert (result.stdout, result.stderr) == ("out\n", "err\n")


def test_print_and_raw_descriptor_writes_keep_their_order(sandbox: Sandbox) -> None:
    """`sys.stdout` reaches the host through its own call, `os.write(1, ...)` through WASI."""
    code = (
        "import os, sys\nprint('a')\nos.write(1, b'b\\n')\nprint('c', end='')\nsys.stdout.flush()"
    )
    code += "\nos.write(1, b'd\\n')\nprint(sys.stdout.fileno(), sys.stderr.fileno())"
    assert sandbox.run(code).stdout == "a\nb\ncd\n1 2\n"


def test_atexit_handlers_run(sandbox: Sandbox) -> None:
    result = sandbox.run("import atexit\natexit.register(print, 'bye')\nprint('hi')")
    assert result.stdout == "hi\nbye\n"


def test_random_is_reseeded_every_run(sandbox: Sandbox) -> None:
    code = "import random; print(random.random(), random.getrandbits(64))"
    outputs = {sandbox.run(code).stdout for _ in range(3)}
    assert len(outputs) == 3
    pooled = Sandbox(pool_size=2)  # instances primed with an empty run before they are used
    assert len({pooled.run(code).stdout for _ in range(3)} | outputs) == 6
    pooled.close()


def test_a_session_continues_its_random_stream() -> None:
    with Sandbox().session() as session:
        session.run("import random\nrandom.seed(7)\nrandom.random()")
        result = session.run(
            "b = random.random()\nrandom.seed(7)\nrandom.random()\nprint(b == random.random())"
        )
    assert result.stdout == "True\n"


def test_a_first_run_sees_no_trace_of_the_build_time_warm_up() -> None:
    """The snapshot ran a warm-up script at build time (see `ScriptRunner.warm_up`)."""
    code = "print(sorted(k for k in globals() if not k.startswith('__')), __name__)"
    assert Sandbox().run(code).stdout == "[] __main__\n"
    with Sandbox().session() as session:
        assert session.run(code).stdout == "[] __main__\n"


def test_runs_share_no_state(sandbox: Sandbox) -> None:
    first = sandbox.run("import builtins, json\nbuiltins.leak = 1\njson.leak = 2\nprint('set')")
    assert first.stdout == "set\n"
    second = sandbox.run(
        "import builtins, json\nprint(hasattr(builtins, 'leak'), hasattr(json, 'leak'))"
    )
    assert second.stdout == "False False\n"


def test_environment_is_only_what_the_sandbox_was_given() -> None:
    box = Sandbox(env={"GREETING": "hi"})
    result = box.run("import os; print(dict(os.environ))")
    assert result.stdout == "{'GREETING': 'hi'}\n"


def test_str_and_bytes_code_are_equivalent(sandbox: Sandbox) -> None:
    assert sandbox.run("print('é')").stdout == sandbox.run("print('é')".encode()).stdout == "é\n"


def test_lone_surrogates_in_code_and_args_do_not_crash_the_host(sandbox: Sandbox) -> None:
    result = sandbox.run("print('\udcff')")
    assert result.exit_code == ExitCode.SCRIPT_ERROR and "SyntaxError" in result.stderr
    result = sandbox.run("import sys; print(sys.argv[1])", args=["a\udcffb"])
    assert result.stdout == "a\ufffdb\n"
