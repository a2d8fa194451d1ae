"""The host functions the runner and `skills` call, plugged in once at build time.

Two hosts implement them: the component guest's WIT imports (`wit_host.py`) and the data image's
`host.call` frames (`door_host.py`). Both keep the WIT conventions, so the runner and the scratch
file system do not know which one they talk to: bytes travel as `str` with one char per byte
(latin-1), a skill call returns `(ok, text)`.
"""

# The output targets, as the plugged host names them.
STDOUT: object = "stdout"
STDERR: object = "stderr"


def _unplugged(*args):
    raise RuntimeError("agentbox_guest.host_api is not plugged into a host")


write_output = _unplugged  # (target, data: str) -> None
read_stdin = _unplugged  # (max_bytes: int) -> str
output_file = _unplugged  # (name: str, data: str, first: bool) -> bool
call_skill = _unplugged  # (name: str, payload: str) -> (ok: bool, text: str)
list_skills = _unplugged  # () -> str (JSON)
scratch_limit = _unplugged  # () -> int
input_files = _unplugged  # () -> list[(path: str, data: str)]


def plug(**functions) -> None:
    """Build time: install one host's functions (and its STDOUT/STDERR targets)."""
    unknown = set(functions) - set(globals())
    if unknown:
        raise TypeError(f"unknown host functions: {sorted(unknown)}")
    globals().update(functions)
