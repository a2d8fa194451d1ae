"""`agentbox.toml`: declared skills and default limits, validated against a JSON Schema.

    image = "data"          # optional: the sandbox's image (default: "default")

    [limits]
    timeout = 10
    memory = "256M"

    [skills.weather]
    command = "python weather.py"
    description = "Current weather for a city."
    timeout = 5
    parameters = { type = "object", properties = { city = { type = "string" } } }

Read only from a place the sandbox cannot write: the file named with `--config PATH` (or
`AGENTBOX_CONFIG`), else `agentbox.toml` in the user config folder (platformdirs:
`~/.config/agentbox/` on Linux), which must be private to the user and which `rw` mounts may not
reach. Never from the working folder implicitly: a script with a `rw` mount of it could plant
one granting itself command skills. The CLI names the file that applied (and an ignored
`./agentbox.toml`) on stderr. Command-line options win.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentbox import native_folders
from agentbox.errors import UsageError
from agentbox.skills import Skill
from agentbox.skills.command import command_skill

_SIZE = {"type": ["string", "integer"]}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "image": {"enum": ["default", "data"]},
        "limits": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "timeout": {"type": "number", "exclusiveMinimum": 0},
                "memory": _SIZE,
                "max_output": _SIZE,
                "scratch": _SIZE,
                "max_output_files": _SIZE,
                "fuel": {"type": "integer", "minimum": 1},
            },
        },
        "skills": {
            "type": "object",
            "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["command"],
                "properties": {
                    "command": {
                        "oneOf": [
                            {"type": "string", "minLength": 1},
                            {"type": "array", "items": {"type": "string"}, "minItems": 1},
                        ]
                    },
                    "description": {"type": "string"},
                    "timeout": {"type": "number", "exclusiveMinimum": 0},
                    "parameters": {"type": "object"},
                },
            },
        },
    },
}


@dataclass
class Config:
    limits: dict[str, Any] = field(default_factory=dict)
    skills: list[Skill] = field(default_factory=list)
    path: Path | None = None
    image: str | None = None


def user_config_file() -> Path:
    """`agentbox.toml` in the user config folder: the only config read without being named."""
    return native_folders.config_dir() / native_folders.CONFIG_FILE_NAME


def ignored_working_folder_config(applied: Path | None) -> Path | None:
    """`./agentbox.toml` when it exists but is not the config that applied."""
    candidate = Path(native_folders.CONFIG_FILE_NAME)
    if not candidate.is_file():
        return None
    if applied is not None and applied.resolve() == candidate.resolve():
        return None
    return candidate


def load_config(path: str | Path | None) -> Config:
    """The named config file, else the user's `agentbox.toml` if present, else an empty config."""
    if path is None:
        candidate = user_config_file()
        if not candidate.is_file():
            return Config()
        problem = native_folders.file_problem(candidate)
        if problem is not None:
            raise UsageError(f"refusing config {str(candidate)!r}: {problem}")
        path = candidate
    path = Path(path)
    import tomllib  # only when there is a config file: `agentbox run` does not pay for it

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"config file {str(path)!r} not found") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise UsageError(f"cannot read config {str(path)!r}: {error}") from None
    _validate(data, path)
    skills = [
        command_skill(
            name,
            spec["command"],
            description=spec.get("description", ""),
            parameters=spec.get("parameters"),
            timeout=spec.get("timeout"),
        )
        for name, spec in data.get("skills", {}).items()
    ]
    return Config(
        limits=dict(data.get("limits", {})), skills=skills, path=path, image=data.get("image")
    )


def _validate(data: dict[str, Any], path: Path) -> None:
    import jsonschema

    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(SCHEMA).iter_errors(data)
    )
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path) or "top level"
        raise UsageError(f"invalid config {str(path)!r} at {where}: {error.message}")
