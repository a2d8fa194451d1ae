"""The component guest's host: the WIT imports, plugged into `agentbox_guest.host_api`."""

from agentbox_guest import host_api
from componentize_py_types import Err
from wit_world.imports import host


def _call_skill(name, payload):
    try:
        return True, host.call_skill(name, payload)
    except Err as error:
        return False, error.value


def plug() -> None:
    host_api.plug(
        STDOUT=host.OutputTarget.STDOUT,
        STDERR=host.OutputTarget.STDERR,
        write_output=host.write_output,
        read_stdin=host.read_stdin,
        output_file=host.output_file,
        call_skill=_call_skill,
        list_skills=host.list_skills,
        scratch_limit=host.scratch_limit,
        input_files=host.input_files,
    )
