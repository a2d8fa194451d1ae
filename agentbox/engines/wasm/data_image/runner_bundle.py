"""The guest code that goes into the data image at build time: agentbox's runner, then
guest_init.py.

The runner is the component guest's own pure-Python modules (guest/src: `agentbox_guest`,
`skills`), shipped as package data (`agentbox/guest/data_runner.json`, written by `make guest`),
never a second copy. `init_source()` prefixes guest_init.py with a prelude that serves those
modules to `import` from memory (their source also goes to `linecache`, for tracebacks), so the
snapshot holds them already imported.
"""

import json
from functools import cache
from importlib import resources
from pathlib import Path

from agentbox import _frozen
from agentbox.errors import GuestNotBuiltError

RUNNER_FILE = "data_runner.json"
# Each run's `turn` source: one fixed call into the runner, which fetches the request itself.
TURN_SOURCE = b"__import__('agentbox_guest.data_entry').data_entry.serve()"

_PRELUDE = '''
def _agentbox_install_runner(sources):
    import importlib.util, linecache, sys

    class Sources:
        """Serves agentbox's runner modules from memory (see runner_bundle.py)."""

        @classmethod
        def find_spec(cls, name, path=None, target=None):
            base = name.replace(".", "/")
            for file, package in ((base + ".py", False), (base + "/__init__.py", True)):
                if file in sources:
                    origin = "/agentbox/" + file
                    return importlib.util.spec_from_loader(
                        name, cls, origin=origin, is_package=package
                    )
            return None

        @staticmethod
        def create_module(spec):
            return None

        @staticmethod
        def exec_module(module):
            origin = module.__spec__.origin
            text = sources[origin[len("/agentbox/"):]]
            module.__file__ = origin
            linecache.cache[origin] = (len(text), None, text.splitlines(True), origin)
            exec(compile(text, origin, "exec", dont_inherit=True), module.__dict__)

    sys.meta_path.insert(0, Sources)


_agentbox_install_runner({sources!r})
del _agentbox_install_runner
'''


def _runner_file() -> Path:
    folder = _frozen.guest_folder() or Path(str(resources.files("agentbox") / "guest"))
    return folder / RUNNER_FILE


@cache
def runner_sources() -> dict[str, str]:
    """{path under guest/src: source} of the runner modules the data image carries."""
    path = _runner_file()
    if not path.is_file():
        raise GuestNotBuiltError(
            f"the data image's runner is not built ({path} is missing): run `make guest`"
        )
    sources = json.loads(path.read_text(encoding="utf-8"))
    return {str(name): str(text) for name, text in sources.items()}


def bundle(guest_init: str) -> str:
    """The whole init source: the runner's modules made importable, then `guest_init`."""
    return _PRELUDE.replace("{sources!r}", repr(runner_sources())) + "\n" + guest_init
