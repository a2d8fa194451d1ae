"""The guest component's entry: runs once at build time (the snapshot), then serves `run` calls.

Everything imported here is booted into the snapshot, so a run starts with it already loaded.
"""

import builtins
import gc

import skills
import wit_host
import wit_world
from agentbox_guest import host_api, preload, scratch, shims, stdlib_store
from agentbox_guest.runner import ScriptRunner

RUN_HEADROOM_BYTES = 16 * 1024 * 1024

wit_host.plug()
_finder = stdlib_store.install()
preload.import_all(_finder)
shims.install()
scratch.install()
scratch.FS.limit_source = host_api.scratch_limit
scratch.FS.input_source = host_api.input_files
builtins.call_skill = skills.call_skill
stdlib_store.forget_build_paths()
stdlib_store.assert_no_site_packages()
_runner = ScriptRunner()
_runner.warm_up()
# What a run without a context sees (see `run` in the WIT file).
_DEFAULT_CONTEXT = wit_world.RunContext(filename="<stdin>", argv=["<stdin>"], env=[])
# Everything booted so far lives for the whole run: move it out of the garbage collector's
# reach, so a collection during a run does not walk (and page in) the whole snapshot.
gc.collect()
gc.freeze()


class WitWorld(wit_world.WitWorld):
    def run(
        self, source: str, keep_globals: bool, context: wit_world.RunContext | None
    ) -> wit_world.RunOutcome:
        if context is None:
            context = _DEFAULT_CONTEXT
        exit_code, error_type = _runner.run(
            source.encode("latin-1"),
            context.filename,
            context.argv,
            dict(context.env),
            keep_globals,
        )
        return wit_world.RunOutcome(exit_code=exit_code, error_type=error_type)


# Free heap that runs allocate from before they grow the memory: a batch worker puts an instance
# back after a run only if the run did not grow it (agentbox/engines/wasm/recycle.py). Freed last,
# it is zeros past the allocator's top chunk: not in the memory image, and no page until touched.
bytearray(RUN_HEADROOM_BYTES)
