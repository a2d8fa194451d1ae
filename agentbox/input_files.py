"""Input files (`--file HOST[:GUEST]`, `Sandbox(files=...)`): copied into the run's read-only
`/input`, so a script reads them without any host folder being mounted."""

import binascii
import os
import posixpath
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from agentbox.errors import UsageError

INPUT_ROOT = "/input"
MAX_PART_BYTES = 255
MAX_PATH_BYTES = 4096

FilesArgument = Mapping[str, bytes | str | os.PathLike[str]] | None


def guest_path(name: str) -> str:
    """`data.csv` or `/input/data.csv` -> `/input/data.csv`; anything outside /input refused."""
    if "\0" in name or "\\" in name:
        raise UsageError(f"invalid input file path {name!r}")
    joined = name if name.startswith("/") else f"{INPUT_ROOT}/{name}"
    normal = posixpath.normpath(joined)
    parts = normal[len(INPUT_ROOT) + 1 :].split("/")
    if not normal.startswith(INPUT_ROOT + "/") or ".." in joined.split("/") or not all(parts):
        raise UsageError(f"input file path {name!r} must lie under {INPUT_ROOT}/")
    if len(normal.encode()) > MAX_PATH_BYTES or any(
        len(part.encode()) > MAX_PART_BYTES for part in parts
    ):
        raise UsageError(f"input file path {name[:100]!r} is too long")
    return normal


def parse_file_option(text: str) -> tuple[str, Path]:
    """`HOST[:GUEST]` -> (guest path, host path); GUEST defaults to /input/<host file name>."""
    host, separator, guest = text.rpartition(":")
    if not separator or not guest.startswith("/") or not host:
        host, guest = text, ""
    path = Path(host)
    return guest_path(guest or path.name), path


def load_files(
    files: FilesArgument, max_total: int, beside: Sequence[tuple[str, bytes]] = ()
) -> tuple[tuple[str, bytes], ...]:
    """Read every input now (a later change on the host does not reach runs), within `max_total`
    counting the files already there (`beside`: a sandbox's, for one run's own files; a run's
    file replaces one of theirs at the same path)."""
    loaded: dict[str, bytes] = {}
    for name, content in (files or {}).items():
        target = guest_path(name)
        data = bytes(content) if isinstance(content, bytes | bytearray) else _read(Path(content))
        if any(
            other.startswith(target + "/") or target.startswith(other + "/")
            for other in (*loaded, *dict(beside))
        ):
            raise UsageError(f"input file {target} clashes with another input's folder")
        loaded[target] = data
    total = sum(len(data) for data in {**dict(beside), **loaded}.values())
    if total > max_total:
        raise UsageError(
            f"input files total {total} bytes, more than {max_total} (half of --memory: they "
            "are copied into the sandbox's memory)"
        )
    return tuple(sorted(loaded.items()))


def _read(path: Path) -> bytes:
    if path.is_dir():
        raise UsageError(f"--file {path}: is a folder (mount folders with --mount)")
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"--file {path}: no such file") from None
    except OSError as error:
        raise UsageError(f"--file {path}: {error.strerror or error}") from None


def from_options(options: Iterable[str]) -> dict[str, Path]:
    """The CLI's `--file` values as a `Sandbox(files=...)` mapping."""
    return dict(parse_file_option(text) for text in options)


def from_wire(items: object) -> dict[str, bytes]:
    """Input files as JSON carries them (MCP's and serve's `files`, a batch task's `files`): a
    list of `{"name": ..., "text": ...}` or `{"name": ..., "base64": ...}` objects."""
    if not isinstance(items, list):
        raise UsageError('files must be a list of {"name", "text" or "base64"} objects')
    files: dict[str, bytes] = {}
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise UsageError(f"files[{number}]: an object with a string `name` is needed")
        contents = [key for key in ("text", "base64") if item.get(key) is not None]
        if len(contents) != 1 or set(item) - {"name", "text", "base64"}:
            raise UsageError(f"files[{number}]: give `name` and one of `text` or `base64`")
        content = item[contents[0]]
        if not isinstance(content, str):
            raise UsageError(f"files[{number}]: `{contents[0]}` must be a string")
        files[item["name"]] = _decoded(content, contents[0] == "base64", number)
    return files


def _decoded(content: str, base64: bool, number: int) -> bytes:
    if not base64:
        return content.encode("utf-8", "surrogatepass")
    try:
        return binascii.a2b_base64(content.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError):
        raise UsageError(f"files[{number}]: `base64` is not valid base64") from None
