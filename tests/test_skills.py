"""Skills: the only way out of the sandbox. Real subprocess skills, real skills files."""

import asyncio
import json
import sys
from pathlib import Path

import pytest

from agentbox import ExitCode, Sandbox, SkillFailure, skill
from agentbox.skills import BridgeLimits
from agentbox.skills.command import command_skill
from agentbox.skills.from_file import load_skills_file
from tests.helpers import HANG_GUARD_SECONDS, run_cli

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def fixture_command(name: str) -> list[str]:
    return [sys.executable, str(FIXTURES / name)]


@skill
def weather(city: str, unit: str = "C") -> dict:
    """Current weather for a city."""
    return {"city": city, "temp": 21, "unit": unit}


def fail_loudly() -> None:
    raise RuntimeError("secret host detail /etc/shadow")


def refuse() -> None:
    raise SkillFailure("not allowed today")


def returns_set() -> set:
    return {1, 2}


def echo(value=None):
    return value


async def async_double(n: int) -> int:
    await asyncio.sleep(0)
    return n * 2


@pytest.fixture(scope="module")
def box() -> Sandbox:
    return Sandbox(
        timeout=20,
        skills=[
            weather,
            fail_loudly,
            refuse,
            returns_set,
            echo,
            async_double,
            command_skill("echo_cmd", fixture_command("echo_skill.py")),
            command_skill("failing_cmd", fixture_command("failing_skill.py")),
            command_skill("slow_cmd", fixture_command("slow_skill.py"), timeout=0.5),
            command_skill("not_json_cmd", fixture_command("not_json_skill.py")),
        ],
        bridge_limits=BridgeLimits(max_payload=10_000, max_calls=50),
    )


def run_ok(box: Sandbox, code: str) -> str:
    result = box.run(code)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_call_skill_is_a_builtin(box: Sandbox) -> None:
    assert run_ok(box, "print(call_skill('weather', {'city': 'Oslo'}))") == (
        "{'city': 'Oslo', 'temp': 21, 'unit': 'C'}\n"
    )


def test_skills_module_keyword_call_list_and_help(box: Sandbox) -> None:
    code = """
import skills
print(skills.weather(city="Rome", unit="F")["unit"])
names = [s["name"] for s in skills.list()]
print(names[:2])
print(skills.list()[0]["parameters"]["required"])
help(skills.weather)
"""
    out = run_ok(box, code)
    lines = out.splitlines()
    assert lines[0] == "F"
    assert lines[1] == "['weather', 'fail_loudly']"
    assert lines[2] == "['city']"
    assert "Current weather for a city." in out and "city: string" in out


def test_command_skill_receives_json_and_returns_json(box: Sandbox) -> None:
    code = "print(call_skill('echo_cmd', {'n': [1, 2], 'u': 'é'}))"
    assert run_ok(box, code) == "{'received': {'n': [1, 2], 'u': 'é'}}\n"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("call_skill('nope')", "no skill named 'nope'"),
        ("call_skill('weather', {'town': 'x'})", "bad arguments for skill 'weather'"),
        ("call_skill('fail_loudly')", "skill 'fail_loudly' failed: RuntimeError"),
        ("call_skill('refuse')", "not allowed today"),
        ("call_skill('returns_set')", "returned a value that is not JSON"),
        ("call_skill('failing_cmd')", "exited with 3: quota exceeded"),
        ("call_skill('slow_cmd')", "skill 'slow_cmd' timed out after 0.5 s"),
        ("call_skill('not_json_cmd')", "did not print a JSON result"),
        ("call_skill('echo', 'x' * 20000)", "larger than the limit"),
        ("call_skill('echo', {1, 2})", "is not JSON"),
        ("call_skill('echo', float('nan'))", "is not JSON"),
        ("call_skill(42)", "skill name must be a string"),
    ],
)
def test_every_failure_is_a_skill_error(box: Sandbox, call: str, message: str) -> None:
    code = f"import skills\ntry:\n    {call}\nexcept skills.SkillError as e:\n    print(e)\n"
    out = run_ok(box, code)
    assert message in out
    assert "Traceback" not in out and "/etc/shadow" not in out


def test_result_too_large_is_a_skill_error(box: Sandbox) -> None:
    code = "import skills\ntry:\n    call_skill('echo', ['y' * 4000] * 3)\nexcept skills.SkillError as e:\n    print(e)"
    assert "larger than the limit" in run_ok(box, code)


def test_calls_are_recorded(box: Sandbox) -> None:
    result = box.run(
        "call_skill('weather', {'city': 'a'})\ntry: call_skill('nope')\nexcept Exception: pass"
    )
    assert [(c.name, c.ok) for c in result.skill_calls] == [("weather", True), ("nope", False)]
    assert all(c.duration_ms >= 0 for c in result.skill_calls)
    assert result.to_json()["skill_calls"][1]["error"] == "no skill named 'nope'"


def test_call_cap_per_run(box: Sandbox) -> None:
    code = "import skills\nn = 0\ntry:\n    while True:\n        call_skill('echo', 1); n += 1\nexcept skills.SkillError as e:\n    print(n, e)"
    assert run_ok(box, code) == "50 too many skill calls in one run (limit 50)\n"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]", "[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]"),
        ("10**60", "1000000000000000000000000000000000000000000000000000000000000"),
        ("'\\udcff'", "'\\udcff'"),
        ("None", "None"),
        ("'plain string'", "'plain string'"),
        ("[1, 'two', 3.5, True, None]", "[1, 'two', 3.5, True, None]"),
    ],
)
def test_json_edge_cases_round_trip(box: Sandbox, value: str, expected: str) -> None:
    out = run_ok(box, f"print(repr(call_skill('echo', {value})))")
    assert out == f"{expected}\n"


def test_deeply_nested_data_does_not_crash_the_host(box: Sandbox) -> None:
    code = "x = []\nfor _ in range(500):\n    x = [x]\nprint(str(call_skill('echo', x)).count('['))"
    assert run_ok(box, code) == "501\n"
    # Nesting deep enough to exhaust the guest's C stack ends the run cleanly, never the host.
    too_deep = "x = []\nfor _ in range(100000):\n    x = [x]\ncall_skill('echo', x)"
    result = box.run(too_deep)
    assert (result.exit_code, result.limit) in ((1, None), (ExitCode.CRASH, "crash"))
    assert run_ok(box, "print('still fine')") == "still fine\n"


def test_async_skill_through_run_async(box: Sandbox) -> None:
    async def main() -> str:
        loop_thread_result = await box.run_async("print(call_skill('async_double', {'n': 21}))")
        return loop_thread_result.stdout

    assert asyncio.run(main()) == "42\n"


def test_async_skill_through_sync_run(box: Sandbox) -> None:
    assert run_ok(box, "print(call_skill('async_double', {'n': 4}))") == "8\n"


def test_approve_gate() -> None:
    seen = []

    def approve(name: str, data: object) -> bool:
        seen.append((name, data))
        return data != {"city": "Forbidden"}

    box = Sandbox(skills=[weather], approve=approve)
    code = "import skills\nprint(skills.weather(city='Ok')['city'])\ntry:\n    skills.weather(city='Forbidden')\nexcept skills.SkillError as e:\n    print(e)"
    assert box.run(code).stdout == "Ok\nskill 'weather' was not approved\n"
    assert seen == [("weather", {"city": "Ok"}), ("weather", {"city": "Forbidden"})]


def test_skills_file_loads_marked_functions_only() -> None:
    skills = load_skills_file(FIXTURES / "host_skills.py")
    assert sorted(s.name for s in skills) == ["add", "shout"]
    assert next(s for s in skills if s.name == "shout").timeout == 5


def test_cli_skill_options_with_real_processes(tmp_path: Path) -> None:
    code = b"import skills\nprint(skills.add(a=1, b=2), skills.shout(text='hi'), call_skill('echo', [1]))"
    result = run_cli(
        "run",
        "--skills",
        str(FIXTURES / "host_skills.py"),
        "--skill",
        f"echo={sys.executable} {FIXTURES / 'echo_skill.py'}",
        "--json",
        "-",
        stdin=code,
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["stdout"] == "3 HI! {'received': [1]}\n"
    assert [c["name"] for c in payload["skill_calls"]] == ["add", "shout", "echo"]


def test_config_file_declares_skills_and_limits(tmp_path: Path) -> None:
    config = tmp_path / "agentbox.toml"
    config.write_text(
        f"""
[limits]
timeout = 1.5

[skills.echo]
command = ["{sys.executable}", "{FIXTURES / "echo_skill.py"}"]
description = "Echo the data."
timeout = 5
"""
    )
    code = b"import skills\nprint(skills.list()[0]['description'], call_skill('echo', 'x'))\nwhile True: pass"
    result = run_cli("run", "--config", str(config), "--json", "-", stdin=code)
    payload = json.loads(result.stdout)
    assert payload["stdout"] == "Echo the data. {'received': 'x'}\n"
    assert payload["limit"] == "timeout" and "1.5 s" in payload["message"]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("[skills.x]\ndescription = 'no command'", "'command' is a required property"),
        ("[limits]\ntimeout = -1", "limits/timeout"),
        ("[bogus]\n", "Additional properties are not allowed"),
        ("not toml [", "cannot read config"),
    ],
)
def test_invalid_config_is_one_clear_line(tmp_path: Path, content: str, fragment: str) -> None:
    config = tmp_path / "agentbox.toml"
    config.write_text(content)
    result = run_cli("run", "--config", str(config), "-", stdin=b"print(1)")
    assert result.returncode == 2
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("agentbox: ") and fragment in lines[0]


def test_confirm_skills_refuses_without_a_terminal() -> None:
    code = b"import skills\ntry:\n    call_skill('echo', 1)\nexcept skills.SkillError as e:\n    print(e)"
    result = run_cli(
        "run",
        "--confirm-skills",
        "--skill",
        f"echo={sys.executable} {FIXTURES / 'echo_skill.py'}",
        "-",
        stdin=code,
        new_session=True,
    )
    assert result.stdout == b"skill 'echo' was not approved\n", result.stderr


# A request longer than the old 500-character preview, ending in a terminal escape sequence
# (which would turn the rest of the prompt red if it reached the terminal raw) and a bidi
# override (which would reorder what the human reads).
_CONFIRMED_REQUEST = "A" * 600 + "\x1b[31mRED\u202eEND"


def _drive_at_terminal(script: Path, answer: bytes) -> tuple[int, bytes]:
    """Run the real CLI with `--confirm-skills` on a new pseudo-terminal (its controlling
    terminal), answer the prompt with `answer`; return the exit status and all it printed."""
    import os
    import pty
    import select

    argv = [
        sys.executable,
        "-m",
        "agentbox",
        "run",
        "--confirm-skills",
        "--skill",
        f"echo={sys.executable} {FIXTURES / 'echo_skill.py'}",
        str(script),
    ]
    pid, master = pty.fork()
    if pid == 0:  # the child: a session leader whose controlling terminal is the pty
        os.execv(sys.executable, argv)
    transcript = bytearray()
    answered = False
    polls_left = HANG_GUARD_SECONDS / 0.5  # a hang guard, not a speed check
    while polls_left > 0:
        ready, _, _ = select.select([master], [], [], 0.5)
        polls_left -= 1
        if not ready:
            continue
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal (it exited)
            break
        if not chunk:
            break
        transcript += chunk
        if not answered and b"[y/N]" in transcript:
            os.write(master, answer + b"\n")
            answered = True
    os.close(master)
    _, status = os.waitpid(pid, 0)
    assert answered, bytes(transcript)
    return os.waitstatus_to_exitcode(status), bytes(transcript)


@pytest.mark.parametrize(("answer", "expected"), [(b"y", b"RESULT"), (b"n", b"not approved")])
def test_confirm_skills_asks_at_a_real_terminal(
    tmp_path: Path, answer: bytes, expected: bytes
) -> None:
    script = tmp_path / "ask.py"
    script.write_text(
        "import skills\n"
        "try:\n"
        f"    print('RESULT', len(call_skill('echo', {_CONFIRMED_REQUEST!r})['received']))\n"
        "except skills.SkillError as e:\n"
        "    print(e)\n"
    )
    exit_code, transcript = _drive_at_terminal(script, answer)
    assert exit_code == 0, transcript
    prompt = transcript[: transcript.index(b"[y/N]")].decode()
    # The whole request is shown, and nothing in it acts on the terminal.
    assert "A" * 600 + "\\u001b[31mRED\\u202eEND" in prompt
    assert "\x1b" not in prompt and "\u202e" not in prompt
    assert expected in transcript
    if answer == b"y":
        assert f"RESULT {len(_CONFIRMED_REQUEST)}".encode() in transcript


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("skills.weather(city=3)", "bad arguments for skill 'weather': ['city']: 3 is not of type"),
        ("skills.weather(unit='K')", "'city' is a required property"),
        ("skills.weather(city='Oslo', unit=['C'])", "['unit']: ['C'] is not of type 'string'"),
    ],
)
def test_arguments_are_checked_against_the_schema_before_the_call(
    box: Sandbox, call: str, message: str
) -> None:
    """The JSON Schema the script sees is enforced: the host function is never called with
    data it does not accept (the skill would have returned `city=3` unchanged)."""
    out = run_ok(
        box,
        f"import skills\ntry:\n    print({call})\nexcept skills.SkillError as e:\n    print(e)\n",
    )
    assert message in out, out
    # positive control: valid arguments reach the function
    assert run_ok(box, "import skills\nprint(skills.weather(city='Oslo'))") == (
        "{'city': 'Oslo', 'temp': 21, 'unit': 'C'}\n"
    )


def test_unknown_skill_attribute_is_a_skill_error(box: Sandbox) -> None:
    """The README's `except skills.SkillError` catches `skills.fetch_url(...)` without such a
    skill; `hasattr` still answers False."""
    code = (
        "import skills\n"
        "print(hasattr(skills, 'fetch_url'))\n"
        "try:\n    skills.fetch_url(url='https://evil.example/')\n"
        "except skills.SkillError as error:\n    print(type(error).__name__, error)\n"
    )
    assert run_ok(box, code) == (
        "False\nUnknownSkillError no skill named 'fetch_url'; skills.list() shows the available "
        "ones\n"
    )


def test_guest_tracebacks_into_skills_show_source_lines(box: Sandbox) -> None:
    result = box.run("import skills\nskills.call_skill(42)")
    assert result.exit_code == 1
    assert "skills.py" in result.stderr
    assert 'raise SkillError(f"skill name must be a string' in result.stderr, result.stderr


def test_a_skill_that_raises_is_one_line_on_stderr_unless_debugging(tmp_path: Path) -> None:
    skills_file = tmp_path / "raising.py"
    skills_file.write_text(
        "import agentbox\n\n@agentbox.skill\ndef boom() -> None:\n"
        "    raise RuntimeError('the host said no\\nsecond line')\n"
    )
    code = b"import skills\ntry:\n    skills.boom()\nexcept skills.SkillError as e:\n    print(e)\n"
    quiet = run_cli("run", "--skills", str(skills_file), "-", stdin=code)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout == b"skill 'boom' failed: RuntimeError\n"
    assert quiet.stderr.decode().splitlines() == [
        "agentbox: skill 'boom' raised RuntimeError: the host said no "
        "(set AGENTBOX_DEBUG=1 for its traceback)"
    ]
    debug = run_cli(
        "run", "--skills", str(skills_file), "-", stdin=code, env={"AGENTBOX_DEBUG": "1"}
    )
    assert debug.returncode == 0, debug.stderr
    assert b"Traceback (most recent call last)" in debug.stderr
    assert b"second line" in debug.stderr
