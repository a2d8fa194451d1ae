"""Host folders made visible inside the sandbox (`--mount HOST[:GUEST][:ro|rw]`)."""

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from agentbox.errors import UsageError

_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


@dataclass(frozen=True)
class Mount:
    """`host` is shown at `guest` (an absolute guest path); read-only unless `writable`."""

    host: Path
    guest: str
    writable: bool = False

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
        return cls(Path(drive + parts[0]), guest, writable).checked()

    def checked(self) -> "Mount":
        host = self.host.expanduser()
        if not host.is_dir():
            raise UsageError(f"cannot mount {self.host}: not a directory")
        guest = PurePosixPath(self.guest)
        if not guest.is_absolute() or ".." in guest.parts or str(guest) == "/":
            raise UsageError(f"invalid guest path {self.guest!r}: use an absolute path below /")
        return Mount(host.resolve(), str(guest), self.writable)
