"""Test-only child worker: runs the script as plain Python, past any Python-level policy.

It stands for "the policy fell": the script gets real builtins and modules inside the real
child, after `harden` and the OS layer, so the OS layer is tested on its own. Before the layer
is applied it starts a grandchild (`sleep`) in the child's process group, so tests can check
that the group dies with the run. Selected with `WORKERS["raw"] = "raw_worker"` in the parent.
"""

import subprocess
import traceback
from collections.abc import Callable
from typing import Any

from agentbox.engines._child import ChildHost, Script


def prepare() -> Callable[[Script, ChildHost], tuple[int, str]]:
    # Imported now, as a real worker's modules are: after the OS layer no file can be opened.
    for name in ("ctypes", "hashlib", "json", "random", "socket", "threading"):
        __import__(name)

    grandchild = subprocess.Popen(["sleep", "600"])

    def execute(script: Script, host: ChildHost) -> tuple[int, str]:
        namespace: dict[str, Any] = {
            "__name__": "__main__",
            "GRANDCHILD": grandchild.pid,
            "KEEP": {2, host._out.fileno(), host._in.fileno()},
        }
        try:
            exec(compile(script.source, script.filename, "exec"), namespace)
        except BaseException as error:  # noqa: BLE001 - reported like a script error
            host.stderr.write("".join(traceback.format_exception_only(type(error), error)))
            return 1, type(error).__name__
        return 0, ""

    return execute
