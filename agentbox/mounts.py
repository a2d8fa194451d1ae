"""Host folders made visible inside the sandbox (`--mount HOST[:GUEST][:ro|rw]`).

A `rw` mount that contains, or lies inside, a folder agentbox loads code or configuration from
(its cache, its config folder, its own install: `native_folders.protected_folders()`) is
refused: a script could otherwise change what agentbox runs natively next time. Folders are
compared by identity (device and inode of the resolved path and of every folder above it), so
`..`, symbolic links, bind mounts and case-insensitive file systems name the same folder.
"""

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from agentbox.errors import UsageError

_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")

_Identity = tuple[int, int]


@dataclass(frozen=True)
class Mount:
    """`host` is shown at `guest` (an absolute guest path); read-only unless `writable`."""

    host: Path
    guest: str
    writable: bool = False

    def __post_init__(self) -> None:
        host = Path(self.host).expanduser().resolve()
        object.__setattr__(self, "host", host)
        if self.writable:
            _refuse_protected(host)

    @classmethod
    def parse(cls, text: str) -> "Mount":
        """`HOST`, `HOST:GUEST`, `HOST:ro|rw` or `HOST:GUEST:ro|rw` (default guest: /data)."""
        drive = ""
        if _WINDOWS_DRIVE.match(text):
            drive, text = text[:2], text[2:]
        parts = text.split(":")
        writable = False
        if len(parts) > 1 and parts[-1] in ("ro", "rw"):
            writable = parts.pop() == "rw"
        if len(parts) > 2 or not parts[0]:
            raise UsageError(f"invalid mount {drive + text!r}: use HOST[:GUEST][:ro|rw]")
        guest = parts[1] if len(parts) == 2 else "/data"
        host = Path(drive + parts[0])
        _require_folder(host.expanduser(), host)
        return cls(host, guest, writable).checked()

    def checked(self) -> "Mount":
        _require_folder(self.host, self.host)
        guest = PurePosixPath(self.guest)
        if not guest.is_absolute() or ".." in guest.parts or str(guest) == "/":
            raise UsageError(f"invalid guest path {self.guest!r}: use an absolute path below /")
        return Mount(self.host, str(guest), self.writable)


def _require_folder(path: Path, shown: Path) -> None:
    if not path.exists():
        raise UsageError(f"cannot mount {shown}: no such folder")
    if not path.is_dir():
        raise UsageError(f"cannot mount {shown}: not a directory")


def refuse_shared_guest_paths(mounts: "Iterable[Mount]") -> None:
    """Two mounts onto one guest path would silently hide one of them: refused."""
    seen: dict[str, Mount] = {}
    for mount in mounts:
        guest = str(PurePosixPath(mount.guest))
        earlier = seen.setdefault(guest, mount)
        if earlier is not mount:
            raise UsageError(
                f"two mounts onto the guest path {guest} ({earlier.host} and {mount.host}): "
                "one would hide the other; give each its own, e.g. HOST:/data2"
            )


def _identities(path: Path) -> list[_Identity]:
    """(device, inode) of `path` (if it exists) and of each existing folder above it."""
    found = []
    for folder in (path, *path.parents):
        try:
            info = os.stat(folder)
        except OSError:
            continue
        found.append((info.st_dev, info.st_ino))
    return found


def _refuse_protected(host: Path) -> None:
    from agentbox.native_folders import protected_folders

    above_mount = _identities(host)
    if not above_mount or not host.exists():
        return  # not a folder: checked() says so
    mount = above_mount[0]
    for folder, holds in protected_folders().items():
        resolved = folder.expanduser().resolve()
        above_folder = _identities(resolved)
        if mount in above_folder:
            relation = "is" if resolved.exists() and above_folder[0] == mount else "contains"
        elif resolved.exists() and above_folder and above_folder[0] in above_mount:
            relation = "lies inside"
        else:
            continue
        raise UsageError(
            f"refusing to mount {host} read-write: it {relation} {resolved} ({holds}), so a "
            "script could change what agentbox runs next; mount another folder, or read-only"
        )
