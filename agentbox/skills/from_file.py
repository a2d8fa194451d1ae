"""Load host skills from a Python file (`--skills FILE.py`).

The file runs in the host with the user's full authority: it is the user's own code, not
sandboxed code. Its `@agentbox.skill` functions are the skills; if it marks none, every public
function defined in the file is one.
"""

import importlib.util
import inspect
import sys
from pathlib import Path

from agentbox.errors import UsageError
from agentbox.skills import Skill, as_skill


def load_skills_file(path: str | Path) -> list[Skill]:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"cannot load skills from {str(path)!r}: no such file")
    module_name = f"agentbox_user_skills_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot load skills from {str(path)!r}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # noqa: BLE001 - the user's file failed: one clear line
        sys.modules.pop(module_name, None)
        raise UsageError(
            f"cannot load skills from {str(path)!r}: {type(error).__name__}: {error}"
        ) from None
    functions = [
        value
        for name, value in vars(module).items()
        if inspect.isfunction(value) and value.__module__ == module_name
    ]
    marked = [function for function in functions if hasattr(function, "__agentbox_skill__")]
    chosen = marked or [function for function in functions if not function.__name__.startswith("_")]
    if not chosen:
        raise UsageError(f"{str(path)!r} defines no skills (no public functions)")
    return [as_skill(function) for function in chosen]
