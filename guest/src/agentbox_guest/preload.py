"""Which stdlib modules are imported at build time, so scripts find them already loaded.

A module left for run time costs its whole import on every run; one imported here costs only
snapshot memory. We import every stdlib module that imports cleanly on WASI, except those whose
import has side effects or that only make sense with a terminal, a GUI or processes.
"""

import sys

# Imported on demand only: importing them at build time would change global state for every
# script (`asyncio` policies, `logging` config are fine; these are not) or is pointless here.
NOT_PRELOADED = frozenset(
    {
        "pydoc_data.topics",  # 1 MB of help text; `help()` imports it when asked
        "_pyrepl",  # the interactive REPL
        "pdb",  # interactive debugger
        "unittest.__main__",
        "this",  # prints the Zen of Python when imported
        "antigravity",  # tries to open a web browser when imported
    }
)


def _wanted(name: str) -> bool:
    if name.endswith(".__main__") or name in NOT_PRELOADED:
        return False
    return not any(name.startswith(prefix + ".") for prefix in NOT_PRELOADED)


def import_all(finder) -> dict[str, str]:
    """Import every stored module; return the ones that failed, with the error."""
    failures: dict[str, str] = {}
    for name in finder.names():
        if not _wanted(name) or name in sys.modules:
            continue
        try:
            __import__(name)
        except BaseException as error:  # noqa: BLE001 - any import failure means "not on WASI"
            failures[name] = f"{type(error).__name__}: {error}"
            for partial in [n for n in sys.modules if n == name or n.startswith(name + ".")]:
                sys.modules.pop(partial, None)
    return failures
