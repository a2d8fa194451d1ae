"""Shared fixtures: one real Sandbox per test session (the compiled guest is shared anyway)."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from agentbox import Sandbox

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def sandbox() -> Sandbox:
    box = Sandbox(timeout=20)
    box.warmup()
    return box


@pytest.fixture
def cli_runner() -> CliRunner:
    return CliRunner()
