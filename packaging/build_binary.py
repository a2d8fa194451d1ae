"""Build the agentbox executable with PyInstaller: `python packaging/build_binary.py`.

The default is one self-contained onefile executable, `dist/<artifact name>` (for example
`dist/agentbox-linux-x86_64`). A onefile binary unpacks every collected file on every start, so
wasmtime's native library and the guest are not collected as files: they travel as one
compressed payload inside the PYZ (read in place, never unpacked by the bootloader) and are
unpacked once into the user cache (`agentbox/_pyinstaller/payload_runtime.py`). `--onedir`
builds a folder instead (`dist/<name>/`, with everything collected as plain files); it is what
`benchmarks/binary.py` compares against. `--archive` builds that folder (executable `agentbox`)
and packs it as `dist/<archive name>` (`agentbox-<target>.tar.gz`, a `.zip` on Windows) with one
top-level `agentbox/` folder: what the package managers install, since a onedir starts faster.

The PyInstaller hook (`agentbox/_pyinstaller/hook-agentbox.py`) is found through the
`pyinstaller40` entry point, so agentbox must be installed in the building environment.

The binary's `agentbox licenses` prints a list generated from what this build collected
(`packaging/licenses.py`): once PyInstaller's analysis has run, every collected file and every
file of the payload is traced to its owner's license text, and the build fails naming any file
without one (or from a package that is not a runtime dependency). The list is bundled gzipped as
`agentbox/THIRD_PARTY_LICENSES.gz` (the text stays in `build/licenses/<name>/`).
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import time
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib.machinery import EXTENSION_SUFFIXES
from importlib.util import find_spec
from pathlib import Path

import PyInstaller.__main__
from PyInstaller.building import build_main

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

from artifacts import ARCHIVE_FOLDER, archive_name, artifact_name, current_target  # noqa: E402
from licenses import PACKAGED_NAME, LicenseError, binary_licenses  # noqa: E402

ENTRY_SCRIPT = HERE / "entry.py"
HOOKS = ROOT / "agentbox" / "_pyinstaller"
PAYLOAD_MODULES = ("_agentbox_payload", "_agentbox_payload_index", "_agentbox_payload_blob")
# PyInstaller's --strip runs `strip` on collected binaries; it is not supported on Windows.
STRIP = not sys.platform.startswith("win")
# Archive entries get this mtime unless SOURCE_DATE_EPOCH is set: 1980-01-01, the earliest a
# zip can store. With sorted entries and fixed owners, rebuilding the same folder gives the
# same archive bytes.
ARCHIVE_EPOCH = 315532800


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


def write_payload(folder: Path, extensions: dict[str, Path]) -> tuple[str, dict[str, Path]]:
    """Write the payload modules into `folder`; return the payload key and its files (name in
    the payload -> the file it was made from, before stripping)."""
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "stripped").mkdir(parents=True)
    library = wasmtime_library()
    libraries = {
        name: linked_libraries(path)
        for name, path in extensions.items()
        if name in OPENSSL_EXTENSIONS
    }
    originals = {
        f"wasmtime/{library.parent.name}/{library.name}": library,
        **{f"guest/{path.name}": path for path in guest_files()},
        **{f"extensions/{path.name}": path for path in extensions.values()},
        **{f"extensions/{path.name}": path for paths in libraries.values() for path in paths},
    }
    sources = {
        name: path if name.startswith("guest/") else _stripped_copy(path, folder)
        for name, path in originals.items()
    }
    contents = {name: path.read_bytes() for name, path in sources.items()}
    modules = {name: f"extensions/{path.name}" for name, path in extensions.items()}
    preload = {
        name: [f"extensions/{path.name}" for path in paths] for name, paths in libraries.items()
    }
    return write_payload_modules(folder, contents, modules, preload), originals


def write_payload_modules(
    folder: Path,
    contents: dict[str, bytes],
    modules: dict[str, str],
    preload: dict[str, list[str]],
) -> str:
    """Write the index, the blob and the runtime of a payload holding `contents` (relative
    path: bytes) into `folder`; return the payload key."""
    compressed = zlib.compress(b"".join(contents.values()), 6)
    key = f"{__version__}-{hashlib.sha256(compressed).hexdigest()[:16]}"
    files = {name: len(data) for name, data in contents.items()}
    # What the binary checks a changed unpacked file against (payload_runtime._verified).
    hashes = {name: hashlib.sha256(data).hexdigest() for name, data in contents.items()}
    (folder / "_agentbox_payload_index.py").write_text(
        f'"""Generated by packaging/build_binary.py."""\n\n'
        f"KEY = {key!r}\nFILES = {files!r}\nSHA256 = {hashes!r}\nEXTENSIONS = {modules!r}\n"
        f"LIBRARIES = {preload!r}\n"
    )
    blob = base64.b64encode(compressed).decode("ascii")
    (folder / "_agentbox_payload_blob.py").write_text(
        f'"""Generated by packaging/build_binary.py: zlib, base64."""\n\nBLOB = "{blob}"\n'
    )
    shutil.copyfile(HOOKS / "payload_runtime.py", folder / "_agentbox_payload.py")
    return key


@contextmanager
def licenses_from_analysis(
    output: Path, payload: Mapping[str, Path], artifact: str, build: Path
) -> Iterator[None]:
    """While PyInstaller runs in this process, its Analysis writes the license list of what it
    collected (plus `payload`) to `output` and bundles it as agentbox/THIRD_PARTY_LICENSES.

    PyInstaller offers no step between the analysis and the executable other than a .spec
    file; rather than commit one (the build stays a plain script, as yt-dlp's), the spec
    PyInstaller generates runs with this subclass in place of `Analysis`. Its TOC lists are
    final once `Analysis.__init__` returns (built, or loaded from the work folder's cache).
    https://pyinstaller.org/en/stable/spec-files.html#using-spec-files
    """
    original = build_main.Analysis

    class LicensedAnalysis(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)
            collected = [*self.scripts, *self.pure, *self.binaries, *self.datas]
            try:
                text = binary_licenses(collected, payload, artifact, build)
            except LicenseError as error:
                raise SystemExit(f"build_binary: {error}") from None
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(text, encoding="utf-8")
            # Compressed: a onefile binary unpacks its data files on every start (53 KB, not
            # 260 KB). The hook collects the package's list (the guest's); this one replaces it.
            compressed = output.with_name(output.name + ".gz")
            compressed.write_bytes(gzip.compress(text.encode("utf-8"), 9, mtime=0))
            self.datas = [entry for entry in self.datas if entry[0] != PACKAGED_NAME]
            self.datas.append((f"{PACKAGED_NAME}.gz", str(compressed), "DATA"))

    build_main.Analysis = LicensedAnalysis
    try:
        yield
    finally:
        build_main.Analysis = original


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
    archive: bool = False,
) -> Path:
    """Build the executable; return its path (the folder's executable for --onedir). With
    `archive`, build the onedir `agentbox` under `build/archive/` and return the archive packed
    from it into `dist/`."""
    build = (build or ROOT / "build").resolve()
    dist = (dist or ROOT / "dist").resolve()
    if archive:
        if name is not None:
            raise ValueError("an archive always holds `agentbox`: no --name with --archive")
        onedir, name, archive_path, dist = True, ARCHIVE_FOLDER, dist, build / "archive"
    name = name or artifact_name(current_target())
    lazy = {} if onedir else lazy_extensions()
    payload: dict[str, Path] = {}
    if onedir:
        os.environ.pop(PAYLOAD_VARIABLE, None)
    else:
        key, payload = write_payload(build / "payload", lazy)
        print(f"build_binary: payload {key}", file=sys.stderr)
        os.environ[PAYLOAD_VARIABLE] = "1"
    licenses = build / "licenses" / name / "THIRD_PARTY_LICENSES"
    try:
        with licenses_from_analysis(licenses, payload, name, build):
            PyInstaller.__main__.run(pyinstaller_arguments(name, onedir, build, dist, list(lazy)))
    finally:
        os.environ.pop(PAYLOAD_VARIABLE, None)
    if archive:
        return pack_archive(dist / name, archive_path / archive_name(current_target()))
    return dist / name / name if onedir else dist / name


def _archive_epoch() -> int:
    value = os.environ.get("SOURCE_DATE_EPOCH", "")
    return max(int(value), ARCHIVE_EPOCH) if value.isdigit() else ARCHIVE_EPOCH


def _entries(
    folder: Path, follow_symlinks: bool, root: Path | None = None
) -> Iterator[tuple[Path, str]]:
    """(path, archive name) of everything below `folder`, sorted by name, parents first."""
    root = folder if root is None else root
    for path in sorted(folder.iterdir(), key=lambda p: p.name):
        yield path, f"{ARCHIVE_FOLDER}/{path.relative_to(root).as_posix()}"
        if path.is_dir() and (follow_symlinks or not path.is_symlink()):
            yield from _entries(path, follow_symlinks, root)


def _mode(path: Path) -> int:
    """Normalised permissions: 755 for folders and executables, 644 for other files."""
    if path.is_dir() or path.stat().st_mode & stat.S_IXUSR:
        return 0o755
    return 0o644


def pack_archive(folder: Path, archive: Path, mtime: int | None = None) -> Path:
    """Pack the onedir `folder` into `archive` (`.tar.gz` or `.zip`, by its name) under one
    top-level `agentbox/` folder, whatever `folder` is called. Entries are sorted and carry
    fixed owners and mtimes; tar keeps symlinks, zip stores their targets."""
    if not folder.is_dir():
        raise FileNotFoundError(f"no onedir folder at {folder}")
    if not archive.name.endswith((".zip", ".tar.gz")):
        raise ValueError(f"{archive.name}: expected a .tar.gz or .zip archive name")
    mtime = _archive_epoch() if mtime is None else mtime
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_name(archive.name + ".part")
    try:
        _write_archive(folder, partial, zip_format=archive.name.endswith(".zip"), mtime=mtime)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(archive)
    return archive


def _write_archive(folder: Path, partial: Path, zip_format: bool, mtime: int) -> None:
    if zip_format:
        date_time = time.gmtime(mtime)[:6]
        with zipfile.ZipFile(partial, "w") as zf:
            entries = [(folder, f"{ARCHIVE_FOLDER}/"), *_entries(folder, follow_symlinks=True)]
            for path, name in entries:
                if path.is_dir():
                    info = zipfile.ZipInfo(name.rstrip("/") + "/", date_time)
                    info.external_attr = (stat.S_IFDIR | 0o755) << 16 | 0x10
                    zf.writestr(info, b"")
                    continue
                info = zipfile.ZipInfo(name, date_time)
                info.external_attr = (stat.S_IFREG | _mode(path)) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                info.create_system = 3  # unix, so the permission bits above are read back
                with path.open("rb") as src, zf.open(info, "w") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
    else:
        with (
            partial.open("wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=mtime) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            for path, name in [(folder, ARCHIVE_FOLDER), *_entries(folder, follow_symlinks=False)]:
                info = tar.gettarinfo(str(path), arcname=name)
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.mtime = mtime
                if not info.issym():
                    info.mode = _mode(path)
                if info.isreg():
                    with path.open("rb") as src:
                        tar.addfile(info, src)
                else:
                    tar.addfile(info)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument("--onedir", action="store_true", help="build a folder, not one file")
    kind.add_argument(
        "--archive",
        action="store_true",
        help="build the onedir `agentbox` and pack it as dist/agentbox-<target>.tar.gz (.zip)",
    )
    parser.add_argument("--name", help="executable name (default: the artifact name)")
    parser.add_argument("--build", type=Path, help="work folder (default: build/)")
    parser.add_argument("--dist", type=Path, help="output folder (default: dist/)")
    options = parser.parse_args(argv)
    if options.archive and options.name:
        parser.error("--name cannot be used with --archive (the archive holds `agentbox`)")
    path = build(
        onedir=options.onedir,
        name=options.name,
        build=options.build,
        dist=options.dist,
        archive=options.archive,
    )
    print(path)


if __name__ == "__main__":
    main()
