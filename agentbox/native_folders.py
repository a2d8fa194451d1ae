"""The folders agentbox loads native code or configuration from, and whether one is private.

The compiled guest (`.cwasm`, mapped and executed by wasmtime) and a onefile binary's unpacked
payload (`_libwasmtime.so` and friends) live in the cache folder; the user's config file (which
can grant command skills) lives in the config folder; installed guest images (a WebAssembly
module agentbox compiles and runs, and the folders it preopens) live in the data folder.
Whoever can write there can run code as the user, so:

- `problem(folder)` says why a folder is not private to this user (owned by someone else,
  writable by group or others, a symbolic link, or inside a folder others could rename it out
  of); native code is then not loaded from it;
- `make_private(folder)` creates missing folders as 0700 whatever the umask;
- `protected_folders()` lists what a `rw` mount must not contain or lie inside
  (`agentbox.mounts`).

Standard library and platformdirs only: the onefile binary's payload runtime imports this before
wasmtime can load.
"""

import contextlib
import os
import stat
import sys
from pathlib import Path

import platformdirs

CACHE_DIR_VARIABLE = "AGENTBOX_CACHE_DIR"
DATA_DIR_VARIABLE = "AGENTBOX_DATA_DIR"
APP_NAME = "agentbox"
CONFIG_FILE_NAME = "agentbox.toml"
_SHARED_WRITE = stat.S_IWGRP | stat.S_IWOTH


def cache_dir() -> Path:
    """The cache folder: `AGENTBOX_CACHE_DIR`, else the platform's user cache folder."""
    override = os.environ.get(CACHE_DIR_VARIABLE)
    return Path(override) if override else Path(platformdirs.user_cache_dir(APP_NAME))


def data_dir() -> Path:
    """The data folder, where installed guest images live (`agentbox image install`):
    `AGENTBOX_DATA_DIR`, else the platform's user data folder. Not the cache folder, so
    `agentbox cache clear` does not remove an image that takes minutes to build."""
    override = os.environ.get(DATA_DIR_VARIABLE)
    return Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME))


def config_dir() -> Path:
    """The user config folder (platformdirs), the only place a config file is found implicitly."""
    return Path(platformdirs.user_config_dir(APP_NAME))


def problem(folder: Path) -> str | None:
    """Why `folder` must not hold code agentbox loads natively; None when it is private.

    Private: a real folder (not a symbolic link), owned by this user, writable by no one else,
    and every folder above it (as written and as resolved) owned by this user or root and either
    not writable by others or sticky (like /tmp), so nobody else can swap it out. Not checked on
    Windows, where the user profile's ACLs decide.
    """
    if os.name == "nt":
        return None
    uid = os.geteuid()
    try:
        info = os.lstat(folder)
    except OSError as error:
        return f"cannot inspect it ({error.strerror})"
    if stat.S_ISLNK(info.st_mode):
        return "it is a symbolic link"
    if not stat.S_ISDIR(info.st_mode):
        return "it is not a folder"
    if info.st_uid != uid:
        return f"it is owned by uid {info.st_uid}, not by you (uid {uid})"
    if info.st_mode & _SHARED_WRITE:
        return f"it is writable by other users (mode {stat.S_IMODE(info.st_mode):o})"
    absolute = Path(os.path.abspath(folder))
    for ancestor in sorted({*absolute.parents, *absolute.resolve().parents}):
        try:
            above = os.lstat(ancestor)
        except OSError as error:
            return f"cannot inspect {ancestor} ({error.strerror})"
        if above.st_uid not in (uid, 0):
            return f"{ancestor} is owned by uid {above.st_uid}"
        if stat.S_ISLNK(above.st_mode):
            continue  # a link's own mode means nothing; its folder is checked too
        if above.st_mode & _SHARED_WRITE and not above.st_mode & stat.S_ISVTX:
            return f"{ancestor} is writable by other users"
    return None


def file_problem(path: Path) -> str | None:
    """Why the file at `path` (links followed) may not be trusted; None when it is private:
    owned by this user, writable by no one else, in a private folder."""
    if os.name == "nt":
        return None
    try:
        info = os.stat(path)
    except OSError as error:
        return f"cannot inspect it ({error.strerror})"
    if info.st_uid != os.geteuid():
        return f"it is owned by uid {info.st_uid}, not by you"
    if info.st_mode & _SHARED_WRITE:
        return f"it is writable by other users (mode {stat.S_IMODE(info.st_mode):o})"
    folder = path.resolve().parent
    why = problem(folder)
    return None if why is None else f"its folder {folder} is not private: {why}"


def make_private(folder: Path) -> None:
    """Create `folder` and its missing parents as 0700 (umask can only remove bits from that)."""
    missing = []
    for path in (folder, *folder.parents):
        if os.path.lexists(path):
            break
        missing.append(path)
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made by another process meanwhile
            os.mkdir(path, 0o700)


def protected_folders() -> dict[Path, str]:
    """Folders a `rw` mount must neither contain nor lie inside, each with what it holds."""
    folders = {
        cache_dir(): "agentbox's cache (compiled code it runs natively)",
        config_dir(): "agentbox's config folder (it can grant skills)",
        data_dir(): "agentbox's installed guest images",
        (config_dir() / CONFIG_FILE_NAME).resolve().parent: "agentbox's config file",
        Path(__file__).parent: "agentbox's own code",
        Path(sys.executable).parent: "the program running agentbox",
    }
    frozen_bundle = getattr(sys, "_MEIPASS", None)
    if frozen_bundle:
        folders[Path(frozen_bundle)] = "the program running agentbox"
    import sysconfig  # only here: `agentbox run` without a rw mount does not pay for it

    for name in ("stdlib", "platstdlib", "purelib", "platlib"):
        folders.setdefault(Path(sysconfig.get_path(name)), "Python code agentbox loads")
    return folders
