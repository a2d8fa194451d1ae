"""Options shared by the commands that run scripts (`run`, `batch`, `mcp`, `serve`): defined once
here."""

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import click

from agentbox.errors import UsageError
from agentbox.limits import (
    DEFAULT_MAX_OUTPUT_BYTES,
    DEFAULT_MAX_OUTPUT_FILES_BYTES,
    DEFAULT_MEMORY_BYTES,
    DEFAULT_SCRATCH_BYTES,
    DEFAULT_TIMEOUT_SECONDS,
    FUEL_RANGE,
    MEMORY_RANGE,
    MIB,
    TIMEOUT_RANGE,
    check_fuel,
    check_max_output,
    check_memory,
    check_timeout,
    parse_size,
)

if TYPE_CHECKING:
    from agentbox.sandbox import Sandbox


def _apply(decorators: Sequence[Any], function: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate `function` so the options show in `--help` in the order listed."""
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


class SizeParamType(click.ParamType):  # type: ignore[type-arg]
    name = "SIZE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_size(value)
        except UsageError as error:
            self.fail(str(error), param, ctx)


SIZE = SizeParamType()


def _checked(check: Callable[[Any], None]) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """An option callback refusing what `check` (the limit's own rule) refuses: the error names
    the option and the valid range in one line (`agentbox.limits` words the range once)."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is not None:
            try:
                check(value)
            except UsageError as error:
                raise click.BadParameter(error.message, ctx, param) from None
        return value

    return callback


def limit_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """--timeout, --memory, --fuel, --max-output, --scratch, --max-output-files, --mount, --env."""
    decorators = [
        click.option(
            "--timeout",
            type=float,
            callback=_checked(check_timeout),
            default=DEFAULT_TIMEOUT_SECONDS,
            show_default=True,
            envvar="AGENTBOX_TIMEOUT",
            help=f"Wall-clock limit in seconds, {TIMEOUT_RANGE}; exit code 124 when hit. "
            "[env: AGENTBOX_TIMEOUT]",
        ),
        click.option(
            "--memory",
            type=SIZE,
            callback=_checked(check_memory),
            default=f"{DEFAULT_MEMORY_BYTES // MIB}M",
            show_default=True,
            envvar="AGENTBOX_MEMORY",
            help=f"Memory limit of the sandbox, {MEMORY_RANGE} (e.g. 256M, 1G). "
            "[env: AGENTBOX_MEMORY]",
        ),
        click.option(
            "--fuel",
            type=int,
            callback=_checked(check_fuel),
            default=None,
            envvar="AGENTBOX_FUEL",
            help=f"Deterministic instruction budget ({FUEL_RANGE}); exit code 152 when it runs "
            "out. "
            "Off by default (it slows code down). [env: AGENTBOX_FUEL]",
        ),
        click.option(
            "--max-output",
            type=SIZE,
            callback=_checked(check_max_output),
            default=f"{DEFAULT_MAX_OUTPUT_BYTES // MIB}M",
            show_default=True,
            envvar="AGENTBOX_MAX_OUTPUT",
            help="Cap on stdout and on stderr, each; the excess is dropped and reported. "
            "[env: AGENTBOX_MAX_OUTPUT]",
        ),
        click.option(
            "--scratch",
            type=SIZE,
            default=f"{DEFAULT_SCRATCH_BYTES // MIB}M",
            show_default=True,
            envvar="AGENTBOX_SCRATCH",
            help="What the sandbox's in-memory /tmp and /output may hold together; a write "
            "past it fails with ENOSPC in the script. [env: AGENTBOX_SCRATCH]",
        ),
        click.option(
            "--max-output-files",
            type=SIZE,
            default=f"{DEFAULT_MAX_OUTPUT_FILES_BYTES // MIB}M",
            show_default=True,
            envvar="AGENTBOX_MAX_OUTPUT_FILES",
            help="Cap on the files returned from /output, in total; files past it are dropped "
            "and reported. [env: AGENTBOX_MAX_OUTPUT_FILES]",
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
            "--file",
            "input_files",
            multiple=True,
            metavar="HOST[:GUEST]",
            help="Copy a host file into the sandbox, read-only, at GUEST (default "
            "/input/NAME; always under /input). Repeatable. The host folder stays invisible.",
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
    return _apply(decorators, function)


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


def skill_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """--skill, --skills, --config, --confirm-skills."""
    decorators = [
        click.option(
            "--skill",
            "skill_commands",
            multiple=True,
            metavar="NAME=COMMAND",
            help="Offer a skill backed by a host command: started per call, JSON data on its "
            "stdin, JSON result on its stdout. Repeatable.",
        ),
        click.option(
            "--skills",
            "skill_files",
            multiple=True,
            type=click.Path(dir_okay=False),
            metavar="FILE.py",
            help="Offer the functions of a Python file as skills (its @agentbox.skill functions, "
            "else its public ones). The file runs on the host with your authority. Repeatable.",
        ),
        click.option(
            "--config",
            "config_path",
            type=click.Path(dir_okay=False),
            default=None,
            envvar="AGENTBOX_CONFIG",
            help="Config file declaring skills and default limits [default: agentbox.toml in "
            "the user config folder (see `agentbox info`), never ./agentbox.toml unless named "
            "here]. [env: AGENTBOX_CONFIG]",
        ),
        click.option(
            "--confirm-skills",
            is_flag=True,
            help="Ask on the terminal before each skill call (refused when there is no terminal).",
        ),
    ]
    return _apply(decorators, function)


def engine_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--engine",
        type=click.Choice(["wasm", "restricted", "asteval", "auto"]),
        default="wasm",
        show_default=True,
        envvar="AGENTBOX_ENGINE",
        help="wasm is the sandbox. restricted and asteval are weaker fallbacks for hosts where "
        "WebAssembly cannot run (docs/engines.md); auto uses wasm and falls back, with a "
        "warning, only if wasm cannot load. [env: AGENTBOX_ENGINE]",
    )(function)


def image_option(function: Callable[..., Any]) -> Callable[..., Any]:
    from agentbox.engines.wasm.images import DEFAULT_IMAGE, IMAGE_VARIABLE, IMAGES, INSTALL_HINT

    return click.option(
        "--image",
        type=click.Choice(IMAGES),
        default=DEFAULT_IMAGE,
        show_default=True,
        envvar=IMAGE_VARIABLE,
        help="The sandbox's Python: default (the standard library) or data (numpy, pandas, "
        f"matplotlib, scipy, scikit-learn...; install it first: `{INSTALL_HINT}`). "
        f"[env: {IMAGE_VARIABLE}]",
    )(function)


def sandbox_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """Every option that shapes a Sandbox: engine, image, limits, mounts, env and skills."""
    return engine_option(image_option(limit_options(skill_options(function))))


def resolved_image(ctx: click.Context, options: dict[str, Any], config_image: str | None) -> str:
    """--image (or AGENTBOX_IMAGE), else the config file's `image`, else the default."""
    image: str = options["image"]
    if config_image is not None and ctx.get_parameter_source("image") in (
        None,
        click.core.ParameterSource.DEFAULT,
    ):
        image = config_image
    return image


_LIMIT_PARAMETERS = ("timeout", "memory", "max_output", "fuel", "scratch", "max_output_files")
_SIZE_PARAMETERS = ("memory", "max_output", "scratch", "max_output_files")


def resolved_limits(
    ctx: click.Context, options: dict[str, Any], config_limits: dict[str, Any]
) -> dict[str, Any]:
    """The limit options, with the config file's values where no option was given."""
    limits = {name: options[name] for name in _LIMIT_PARAMETERS}
    for name, value in config_limits.items():
        if ctx.get_parameter_source(name) in (None, click.core.ParameterSource.DEFAULT):
            limits[name] = parse_size(value) if name in _SIZE_PARAMETERS else value
    return limits


def build_sandbox(
    ctx: click.Context, progress: Callable[[str], None] | None = None, **options: Any
) -> "Sandbox":
    """The Sandbox the options describe; config-file limits apply where no option was given."""
    import os

    from agentbox.config import ignored_working_folder_config, load_config
    from agentbox.input_files import from_options
    from agentbox.sandbox import Sandbox
    from agentbox.skills.command import command_skill, parse_skill_option
    from agentbox.skills.from_file import load_skills_file

    config = load_config(options["config_path"])
    ignored = ignored_working_folder_config(config.path)
    if ignored is not None:
        click.echo(
            f"agentbox: ignoring ./{ignored} (the working folder's config is never read "
            f"implicitly); to apply it: --config ./{ignored}",
            err=True,
        )
    if config.path is not None:
        click.echo(f"agentbox: config from {config.path.absolute()}", err=True)
    limits = resolved_limits(ctx, options, config.limits)
    skills = list(config.skills)
    for path in options["skill_files"]:
        skills.extend(load_skills_file(path))
    for text in options["skill_commands"]:
        skills.append(command_skill(*parse_skill_option(text)))
    sandbox = Sandbox(
        **limits,
        engine=options["engine"],
        image=resolved_image(ctx, options, config.image),
        mounts=options["mounts"],
        files=from_options(options.get("input_files", ())),
        env=parse_env(options["env"], dict(os.environ)),
        skills=skills,
        approve=ask_on_terminal if options["confirm_skills"] else None,
        progress=progress,
        **options.get("sandbox_extra", {}),
    )
    if sandbox.engine_warning:
        click.echo(f"agentbox: {sandbox.engine_warning}", err=True)
    return sandbox


def ask_on_terminal(name: str, data: Any) -> bool:
    """The --confirm-skills gate: asks on the controlling terminal, refuses without one.
    The whole request is shown (control characters escaped): what is approved is what is seen."""
    import json

    from agentbox.skills.terminal import confirm_on_terminal

    request = json.dumps(data, ensure_ascii=False)
    return confirm_on_terminal(f"agentbox: allow skill {name!r} with {request}?")


def server_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """--pool-size, --session-idle, --max-sessions: what the long-lived servers add."""
    from agentbox.server.sessions import DEFAULT_IDLE_TIMEOUT_SECONDS, DEFAULT_MAX_SESSIONS

    decorators = [
        click.option(
            "--pool-size",
            type=click.IntRange(min=0),
            default=2,
            show_default=True,
            help="Sandboxes booted ahead of calls (0: create each on demand).",
        ),
        click.option(
            "--session-idle",
            type=click.FloatRange(min=0, min_open=True),
            default=DEFAULT_IDLE_TIMEOUT_SECONDS,
            show_default=True,
            metavar="SECONDS",
            help="Close a session after this long without a call.",
        ),
        click.option(
            "--max-sessions",
            type=click.IntRange(min=1),
            default=DEFAULT_MAX_SESSIONS,
            show_default=True,
            help="Most sessions open at once; a new one closes the least recently used idle one.",
        ),
    ]
    return _apply(decorators, function)


def echo_progress(message: str) -> None:
    """Progress and notes go to stderr: stdout belongs to the script (or the protocol)."""
    click.echo(message, err=True)
