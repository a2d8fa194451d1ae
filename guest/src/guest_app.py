"""The guest component's entry: runs once at build time (the snapshot), then serves `run` calls.

Everything imported here is booted into the snapshot, so a run starts with it already loaded.
"""

import builtins
import gc

import skills
import wit_world
from agentbox_guest import preload, shims, stdlib_store
from agentbox_guest.runner import ScriptRunner

_finder = stdlib_store.install()
preload.import_all(_finder)
shims.install()
builtins.call_skill = skills.call_skill
stdlib_store.forget_build_paths()
stdlib_store.assert_no_site_packages()
_runner = ScriptRunner()
# Everything booted so far lives for the whole run: move it out of the garbage collector's
# reach, so a collection during a run does not walk (and page in) the whole snapshot.
gc.collect()
gc.freeze()


class WitWorld(wit_world.WitWorld):
    def run(self, request: wit_world.RunRequest) -> wit_world.RunOutcome:
        exit_code, error_type = _runner.run(
            request.source.encode("latin-1"),
            request.filename,
            request.argv,
            request.stdin.encode("latin-1"),
            dict(request.env),
            request.keep_globals,
        )
        return wit_world.RunOutcome(exit_code=exit_code, error_type=error_type)
