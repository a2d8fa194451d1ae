"""The data image's runner: installed once at build time (by guest_init.py, before the snapshot),
then entered by every run's `turn` with one fixed line (TURN_SOURCE on the host), which fetches
the run's request through `host.call`, runs it as the component guest does, and reports back.
"""

import builtins
import gc
import os
import sys

import skills

from agentbox_guest import door_host, host_api, scratch, shims
from agentbox_guest.runner import ScriptRunner

_runner = None


def _reseed_numpy() -> None:
    """numpy's global RandomState is in the snapshot too: reseed it from WASI's random_get."""
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()


# Where matplotlib keeps its configuration and font cache: the in-memory scratch /tmp (the image
# has no writable folder), read while it is imported at build time.
MPLCONFIGDIR = "/tmp/.matplotlib"
# What /tmp may hold at build time (matplotlib's font cache); emptied by the first run.
_BUILD_SCRATCH_BYTES = 64 * 1024 * 1024


def prepare() -> None:
    """Build time, before the data stack is imported: plug the door in, install the shims and
    the scratch file system (an in-memory /tmp for matplotlib's config folder)."""
    door_host.plug()
    shims.install()
    scratch.install()
    scratch.FS.limit_source = host_api.scratch_limit
    scratch.FS.input_source = host_api.input_files
    scratch.begin_run(fresh=True)
    scratch.FS.limit = _BUILD_SCRATCH_BYTES  # no host answers at build time
    builtins.call_skill = skills.call_skill
    os.environ["MPLCONFIGDIR"] = MPLCONFIGDIR


def install() -> None:
    """Build time, after the data stack is imported and warmed: the runner, its run path warmed
    as the component guest's `guest_app` does, and the heap frozen."""
    global _runner
    _runner = ScriptRunner()
    _runner.reseed_hooks.append(_reseed_numpy)
    _runner.warm_up()
    gc.collect()
    gc.freeze()


def serve() -> None:
    """One run: the request from the host, the script, the outcome back to the host."""
    request = door_host.request()
    exit_code, error_type = _runner.run(
        request["source"],
        request["filename"],
        request["argv"],
        request["env"],
        request["keep_globals"],
    )
    door_host.report(exit_code, error_type)
