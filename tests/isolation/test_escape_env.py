"""Environment: the guest sees exactly the variables it was given, never the host's."""

import json
import uuid

import pytest

from agentbox import AgentboxError, ExitCode, Sandbox
from tests.helpers import run_cli

DUMP = "import json, os\nprint(json.dumps([dict(os.environ), os.getenv('AGENTBOX_TEST_SECRET')]))"


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    value = f"s3cret-{uuid.uuid4().hex}"
    monkeypatch.setenv("AGENTBOX_TEST_SECRET", value)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", value)
    return value


def test_api_guest_sees_no_host_variables(secret: str) -> None:
    result = Sandbox(timeout=20).run(DUMP)
    assert result.exit_code == ExitCode.OK, result.stderr
    assert json.loads(result.stdout) == [{}, None]
    assert secret not in result.stdout


def test_api_guest_sees_exactly_the_given_variables(secret: str) -> None:
    result = Sandbox(timeout=20, env={"FOO": "bar", "EMPTY": ""}).run(DUMP)
    assert json.loads(result.stdout) == [{"FOO": "bar", "EMPTY": ""}, None]


def test_api_environment_does_not_carry_over_between_runs(image_sandbox: Sandbox) -> None:
    first = image_sandbox.run("import os\nos.environ['LEFT_BEHIND'] = '1'\nos.putenv('PUT', '1')")
    assert first.exit_code == ExitCode.OK
    result = image_sandbox.run(DUMP)
    assert json.loads(result.stdout) == [{}, None]


def test_cli_guest_sees_no_host_variables(secret: str) -> None:
    completed = run_cli("run", "-", stdin=DUMP.encode())
    assert completed.returncode == ExitCode.OK, completed.stderr
    assert json.loads(completed.stdout) == [{}, None]
    assert secret.encode() not in completed.stdout + completed.stderr


def test_cli_env_passes_exactly_those_variables(secret: str) -> None:
    completed = run_cli(
        "run", "--env", "FOO=bar=baz", "--env", "AGENTBOX_TEST_SECRET", "-", stdin=DUMP.encode()
    )
    assert completed.returncode == ExitCode.OK, completed.stderr
    assert json.loads(completed.stdout) == [
        {"FOO": "bar=baz", "AGENTBOX_TEST_SECRET": secret},
        secret,
    ]


def test_cli_env_of_a_missing_host_variable_is_a_usage_error() -> None:
    completed = run_cli("run", "--env", "AGENTBOX_SURELY_UNSET_VARIABLE", "-", stdin=b"print(1)")
    assert completed.returncode == ExitCode.USAGE
    assert completed.stdout == b""
    lines = completed.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("agentbox: "), lines


def test_cli_agentbox_settings_from_the_environment_are_not_visible(secret: str) -> None:
    completed = run_cli(
        "run", "-", stdin=DUMP.encode(), env={"AGENTBOX_TIMEOUT": "20", "AGENTBOX_DEBUG": "1"}
    )
    assert json.loads(completed.stdout) == [{}, None]


@pytest.mark.parametrize(
    "env", [{"": "x"}, {"A=B": "c"}, {"NUL\0": "x"}, {"K": "nul\0value"}], ids=repr
)
def test_api_invalid_variable_names_are_rejected_cleanly(env: dict[str, str]) -> None:
    """A name WASI cannot hold must be refused by the host, not crash the guest (Rust panic)."""
    try:
        result = Sandbox(timeout=20, env=env).run("print(1)")
    except AgentboxError:
        return
    assert result.limit != "crash", (result.message, result.stderr)
    assert "panicked" not in result.stderr
