"""`agentbox run --output-dir DIR`: the files a script left in /output, written into DIR.

The names come from the script, so they are treated as hostile: every part is checked
(no `..`, no absolute paths, no Windows device names or reserved characters, at most 255 bytes),
nothing is written through a symbolic link, and an existing file is kept unless `--overwrite`.
"""

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from agentbox.result import OutputFile

# Windows reserves these names in every folder, whatever the extension (`nul.txt` too).
_DEVICE_NAMES = re.compile(
    r"^(con|prn|aux|nul|conin\$|conout\$|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?$", re.I
)
_RESERVED_CHARACTERS = re.compile(r'[\x00-\x1f\x7f<>:"\\|?*]')
MAX_PART_BYTES = 255
MAX_DEPTH = 32


def output_dir_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """--output-dir, --overwrite, --json-file-contents."""
    for decorator in reversed(
        [
            click.option(
                "--output-dir",
                type=click.Path(file_okay=False, path_type=Path),
                default=None,
                metavar="DIR",
                help="Write the files the script left in /output into DIR (created if needed; "
                "names are checked, never outside DIR).",
            ),
            click.option(
                "--overwrite",
                is_flag=True,
                help="With --output-dir, replace files that already exist there.",
            ),
            click.option(
                "--json-file-contents",
                is_flag=True,
                help="With --json, include each returned file's bytes (base64).",
            ),
        ]
    ):
        function = decorator(function)
    return function


def safe_parts(name: str) -> list[str] | None:
    """The path parts of a returned file's name, or None when any part is unsafe to create."""
    parts = name.split("/")
    if not 0 < len(parts) <= MAX_DEPTH:
        return None
    for part in parts:
        if part in ("", ".", ".."):
            return None
        if _RESERVED_CHARACTERS.search(part) or _DEVICE_NAMES.match(part.rstrip(" .")):
            return None
        if part != part.rstrip(" .") or len(part.encode("utf-8", "surrogatepass")) > MAX_PART_BYTES:
            return None
    return parts


def _folders(root: Path, parts: list[str]) -> Iterator[Path]:
    for depth in range(1, len(parts)):
        yield root.joinpath(*parts[:depth])


def write_files(files: list[OutputFile], folder: Path, overwrite: bool) -> list[str]:
    """Write `files` under `folder`; returns one note per file not written."""
    notes: list[str] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return [f"cannot create --output-dir {folder}: {error.strerror or error}"]
    for file in files:
        parts = safe_parts(file.name)
        if parts is None:
            notes.append(f"not writing {file.name[:200]!r}: not a safe file name")
            continue
        try:
            for sub in _folders(folder, parts):
                if sub.is_symlink():
                    raise OSError(f"{sub} is a symbolic link")
                sub.mkdir(exist_ok=True)
            _write(folder.joinpath(*parts), file.data, overwrite)
        except FileExistsError:
            notes.append(f"not overwriting {folder.joinpath(*parts)} (use --overwrite)")
        except OSError as error:
            notes.append(
                f"not writing {file.name[:200]!r}: {getattr(error, 'strerror', None) or error}"
            )
    return notes


def _write(target: Path, data: bytes, overwrite: bool) -> None:
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
    flags |= os.O_TRUNC if overwrite else os.O_EXCL
    if overwrite and target.is_symlink():
        raise OSError(f"{target} is a symbolic link")
    descriptor = os.open(target, flags, 0o644)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(data)


def report(files: list[OutputFile], folder: Path | None, overwrite: bool, as_json: bool) -> None:
    """After a run: write the files (if asked) and say on stderr what was not written."""
    if folder is not None:
        for note in write_files(files, folder, overwrite):
            click.echo(f"agentbox: {note}", err=True)
    elif files and not as_json:
        click.echo(
            f"agentbox: the script left {len(files)} files in /output "
            "(--output-dir DIR saves them)",
            err=True,
        )
