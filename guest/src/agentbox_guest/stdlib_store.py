"""The standard library, compiled and compressed into the snapshot.

At build time the stdlib is readable under `/python`; at run time no host path exists. So the
pre-init reads every stdlib module, keeps `zlib(marshal(code))` in memory and installs a meta-path
finder that imports from it. Modules imported at build time cost nothing at run time; the rest
pay only unmarshal + execution, never a file read.
"""

import importlib.abc
import importlib.machinery
import marshal
import os
import sys
import zlib

STDLIB_ROOT = "/python"

# Folders of the stdlib that are never useful in the sandbox (tests, GUIs, installers) or whose
# import has side effects on the build.
SKIPPED_DIRS = frozenset(
    {"site-packages", "test", "idlelib", "tkinter", "turtledemo", "ensurepip", "venv", "__phello__"}
)
SKIPPED_MODULES = frozenset({"turtle", "__hello__"})


class _Entry:
    __slots__ = ("blob", "is_package")

    def __init__(self, blob: bytes, is_package: bool) -> None:
        self.blob = blob
        self.is_package = is_package


class StdlibFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds and loads modules from the in-memory store; frozen-style filenames in tracebacks."""

    def __init__(self, entries: dict[str, _Entry]) -> None:
        self._entries = entries

    def names(self) -> list[str]:
        return sorted(self._entries)

    def find_spec(self, fullname, path=None, target=None):
        entry = self._entries.get(fullname)
        if entry is None:
            return None
        spec = importlib.machinery.ModuleSpec(
            fullname, self, origin=f"<frozen {fullname}>", is_package=entry.is_package
        )
        if entry.is_package:
            spec.submodule_search_locations = []
        return spec

    def create_module(self, spec):
        return None

    def exec_module(self, module) -> None:
        entry = self._entries[module.__name__]
        exec(marshal.loads(zlib.decompress(entry.blob)), module.__dict__)

    def get_source(self, fullname):
        return None


def _module_name(relative_path: str) -> tuple[str, bool] | None:
    parts = relative_path[: -len(".py")].split("/")
    if parts[-1] == "__init__":
        parts.pop()
        is_package = True
    else:
        is_package = False
    if not parts or parts[0] in SKIPPED_DIRS or parts[0] in SKIPPED_MODULES:
        return None
    if any(not part.isidentifier() for part in parts):
        return None
    return ".".join(parts), is_package


def collect(root: str = STDLIB_ROOT) -> dict[str, _Entry]:
    """Compile every stdlib module under `root` (build time only)."""
    entries: dict[str, _Entry] = {}
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if d not in SKIPPED_DIRS)
        for file_name in sorted(files):
            if not file_name.endswith(".py"):
                continue
            path = os.path.join(directory, file_name)
            named = _module_name(os.path.relpath(path, root))
            if named is None:
                continue
            name, is_package = named
            with open(path, "rb") as source_file:
                source = source_file.read()
            code = compile(source, f"<frozen {name}>", "exec", dont_inherit=True)
            entries[name] = _Entry(zlib.compress(marshal.dumps(code), 9), is_package)
    return entries


def install(root: str = STDLIB_ROOT) -> StdlibFinder:
    """Install the finder ahead of the path-based one and forget the build-time paths."""
    finder = StdlibFinder(collect(root))
    sys.meta_path.insert(0, finder)
    return finder


def forget_build_paths() -> None:
    """At run time the build-time folders do not exist: drop them so misses fail fast."""
    sys.path[:] = []
    sys.path_importer_cache.clear()


def assert_no_site_packages() -> None:
    """Fail the build if anything from a site-packages folder got into the snapshot."""
    leaked = sorted(
        name
        for name, module in list(sys.modules.items())
        if "site-packages" in (getattr(module, "__file__", None) or "")
    )
    if leaked:
        raise RuntimeError(f"site-packages modules would be snapshotted: {leaked}")
