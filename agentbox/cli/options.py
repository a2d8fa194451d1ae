"""Options shared by the commands that run scripts (`run`, `mcp`, `serve`): defined once here."""

from collections.abc import Callable
from typing import Any

import click

from agentbox.errors import UsageError
from agentbox.limits import (
    DEFAULT_MAX_OUTPUT_BYTES,
    DEFAULT_MEMORY_BYTES,
    DEFAULT_TIMEOUT_SECONDS,
    MIB,
    parse_size,
)


class SizeParamType(click.ParamType):
    name = "SIZE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_size(value)
        except UsageError as error:
            self.fail(str(error), param, ctx)


SIZE = SizeParamType()


def limit_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """--timeout, --memory, --fuel, --max-output, --mount, --env."""
    decorators = [
        click.option(
            "--timeout",
            type=click.FloatRange(min=0, min_open=True),
            default=DEFAULT_TIMEOUT_SECONDS,
            show_default=True,
            envvar="AGENTBOX_TIMEOUT",
            help="Wall-clock limit in seconds; exit code 124 when hit. [env: AGENTBOX_TIMEOUT]",
        ),
        click.option(
            "--memory",
            type=SIZE,
            default=f"{DEFAULT_MEMORY_BYTES // MIB}M",
            show_default=True,
            envvar="AGENTBOX_MEMORY",
            help="Memory limit of the sandbox (e.g. 256M, 1G). [env: AGENTBOX_MEMORY]",
        ),
        click.option(
            "--fuel",
            type=click.IntRange(min=1),
            default=None,
            envvar="AGENTBOX_FUEL",
            help="Deterministic instruction budget; exit code 152 when it runs out. "
            "Off by default (it slows code down). [env: AGENTBOX_FUEL]",
        ),
        click.option(
            "--max-output",
            type=SIZE,
            default=f"{DEFAULT_MAX_OUTPUT_BYTES // MIB}M",
            show_default=True,
            envvar="AGENTBOX_MAX_OUTPUT",
            help="Cap on stdout and on stderr, each; the excess is dropped and reported. "
            "[env: AGENTBOX_MAX_OUTPUT]",
        ),
        click.option(
            "--mount",
            "mounts",
            multiple=True,
            metavar="HOST[:GUEST][:ro|rw]",
            help="Show a host folder in the sandbox (default guest path /data, read-only). "
            "Repeatable.",
        ),
        click.option(
            "--env",
            "env",
            multiple=True,
            metavar="KEY[=VALUE]",
            help="Set a variable in the sandbox; KEY alone copies it from the host. Repeatable. "
            "The sandbox sees no host variables otherwise.",
        ),
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


def parse_env(pairs: tuple[str, ...], host_env: dict[str, str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not key:
            raise UsageError(f"invalid --env {pair!r}: use KEY=VALUE or KEY")
        if not separator:
            if key not in host_env:
                raise UsageError(f"--env {key}: no such variable in the host environment")
            value = host_env[key]
        env[key] = value
    return env
