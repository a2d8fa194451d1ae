"""Build the agentbox executable with PyInstaller: `python packaging/build_binary.py`.

The default is one self-contained onefile executable, `dist/<artifact name>` (for example
`dist/agentbox-linux-x86_64`). A onefile binary unpacks every collected file on every start, so
wasmtime's native library and the guest are not collected as files: they travel as one
compressed payload inside the PYZ (read in place, never unpacked by the bootloader) and are
unpacked once into the user cache (`agentbox/_pyinstaller/payload_runtime.py`). `--onedir`
builds a folder instead (`dist/<name>/`, with everything collected as plain files); it is what
`benchmarks/binary.py` compares against.

The PyInstaller hook (`agentbox/_pyinstaller/hook-agentbox.py`) is found through the
`pyinstaller40` entry point, so agentbox must be installed in the building environment.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import shutil
import subprocess
import sys
import zlib
from importlib.machinery import EXTENSION_SUFFIXES
from importlib.util import find_spec
from pathlib import Path

import PyInstaller.__main__

from agentbox import __version__
from agentbox._pyinstaller import (
    EXCLUDED_MODULES,
    LAZY_EXTENSIONS,
    OPENSSL_EXTENSIONS,
    OPENSSL_LIBRARIES,
    PAYLOAD_VARIABLE,
    guest_files,
    wasmtime_library,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# `packaging` is also a PyPI package (PyInstaller uses it): import our helpers as top-level modules.
sys.path.insert(0, str(HERE))

from artifacts import artifact_name, current_target  # noqa: E402

ENTRY_SCRIPT = HERE / "entry.py"
HOOKS = ROOT / "agentbox" / "_pyinstaller"
PAYLOAD_MODULES = ("_agentbox_payload", "_agentbox_payload_index", "_agentbox_payload_blob")
# PyInstaller's --strip runs `strip` on collected binaries; it is not supported on Windows.
STRIP = not sys.platform.startswith("win")


def _stripped_copy(library: Path, folder: Path) -> Path:
    """The library without its symbol table (Linux: 29.7 -> 24.0 MB), as --strip does for the
    files PyInstaller collects itself. macOS dylibs are signed, so they are left as they are."""
    strip = shutil.which("strip")
    if not sys.platform.startswith("linux") or strip is None:
        return library
    stripped = folder / "stripped" / library.name
    subprocess.run([strip, "-o", str(stripped), str(library)], check=True)
    return stripped


def lazy_extensions() -> dict[str, Path]:
    """The installed LAZY_EXTENSIONS and OPENSSL_EXTENSIONS: module name -> file."""
    found = {}
    for name in (*LAZY_EXTENSIONS, *OPENSSL_EXTENSIONS):
        try:
            spec = find_spec(name)
        except ImportError:  # its parent package is not installed
            continue
        if spec is not None and spec.origin and spec.origin.endswith(tuple(EXTENSION_SUFFIXES)):
            found[name] = Path(spec.origin)
    return found


def linked_libraries(extension: Path) -> list[Path]:
    """The OPENSSL_LIBRARIES that `extension` links (per `ldd`), in load order: excluded from
    the bundle with the extension, they must travel in the payload with it."""
    output = subprocess.run(["ldd", str(extension)], capture_output=True, text=True).stdout
    found: dict[str, Path] = {}
    for line in output.splitlines():  # "\tlibssl.so.3 => /lib/.../libssl.so.3 (0x...)"
        name, _, rest = line.strip().partition(" => ")
        if rest.startswith("/"):
            found[name] = Path(rest.rsplit(" (", 1)[0])
    return [
        path
        for prefix in OPENSSL_LIBRARIES
        for name, path in found.items()
        if name.startswith(prefix)
    ]


def write_payload(folder: Path, extensions: dict[str, Path]) -> str:
    """Write the payload modules into `folder`; return the payload key."""
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "stripped").mkdir(parents=True)
    library = wasmtime_library()
    libraries = {
        name: linked_libraries(path)
        for name, path in extensions.items()
        if name in OPENSSL_EXTENSIONS
    }
    sources = {
        f"wasmtime/{library.parent.name}/{library.name}": _stripped_copy(library, folder),
        **{f"guest/{path.name}": path for path in guest_files()},
        **{f"extensions/{path.name}": _stripped_copy(path, folder) for path in extensions.values()},
        **{
            f"extensions/{path.name}": _stripped_copy(path, folder)
            for paths in libraries.values()
            for path in paths
        },
    }
    contents = {name: path.read_bytes() for name, path in sources.items()}
    compressed = zlib.compress(b"".join(contents.values()), 6)
    key = f"{__version__}-{hashlib.sha256(compressed).hexdigest()[:16]}"
    files = {name: len(data) for name, data in contents.items()}
    modules = {name: f"extensions/{path.name}" for name, path in extensions.items()}
    preload = {
        name: [f"extensions/{path.name}" for path in paths] for name, paths in libraries.items()
    }
    (folder / "_agentbox_payload_index.py").write_text(
        f'"""Generated by packaging/build_binary.py."""\n\n'
        f"KEY = {key!r}\nFILES = {files!r}\nEXTENSIONS = {modules!r}\nLIBRARIES = {preload!r}\n"
    )
    blob = base64.b64encode(compressed).decode("ascii")
    (folder / "_agentbox_payload_blob.py").write_text(
        f'"""Generated by packaging/build_binary.py: zlib, base64."""\n\nBLOB = "{blob}"\n'
    )
    shutil.copyfile(HOOKS / "payload_runtime.py", folder / "_agentbox_payload.py")
    return key


def pyinstaller_arguments(
    name: str, onedir: bool, build: Path, dist: Path, lazy: list[str]
) -> list[str]:
    arguments = [
        str(ENTRY_SCRIPT),
        f"--name={name}",
        "--onedir" if onedir else "--onefile",
        "--noupx",
        "--noconfirm",
        "--log-level=WARN",
        f"--distpath={dist}",
        f"--workpath={build / 'pyinstaller'}",
        f"--specpath={build / 'pyinstaller'}",
        *(f"--exclude-module={module}" for module in EXCLUDED_MODULES),
    ]
    if STRIP:
        arguments.append("--strip")
    if not onedir:
        payload = build / "payload"
        arguments += [
            f"--paths={payload}",
            *(f"--hidden-import={module}" for module in PAYLOAD_MODULES),
            f"--runtime-hook={HOOKS / 'pyi_rth_agentbox.py'}",
            *(f"--exclude-module={module}" for module in lazy),
        ]
    return arguments


def build(
    *,
    onedir: bool = False,
    name: str | None = None,
    build: Path | None = None,
    dist: Path | None = None,
) -> Path:
    """Build the executable; return its path (the folder's executable for --onedir)."""
    name = name or artifact_name(current_target())
    build = (build or ROOT / "build").resolve()
    dist = (dist or ROOT / "dist").resolve()
    lazy = {} if onedir else lazy_extensions()
    if onedir:
        os.environ.pop(PAYLOAD_VARIABLE, None)
    else:
        key = write_payload(build / "payload", lazy)
        print(f"build_binary: payload {key}", file=sys.stderr)
        os.environ[PAYLOAD_VARIABLE] = "1"
    try:
        PyInstaller.__main__.run(pyinstaller_arguments(name, onedir, build, dist, list(lazy)))
    finally:
        os.environ.pop(PAYLOAD_VARIABLE, None)
    return dist / name / name if onedir else dist / name


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onedir", action="store_true", help="build a folder, not one file")
    parser.add_argument("--name", help="executable name (default: the artifact name)")
    parser.add_argument("--build", type=Path, help="work folder (default: build/)")
    parser.add_argument("--dist", type=Path, help="output folder (default: dist/)")
    options = parser.parse_args(argv)
    path = build(onedir=options.onedir, name=options.name, build=options.build, dist=options.dist)
    print(path)


if __name__ == "__main__":
    main()
