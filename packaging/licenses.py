"""The third-party licenses of what agentbox ships, listed from what a build actually collected.

Two lists, one format (a section per component: title, `License:`, `Files:`, the texts):

- The binary's. `packaging/build_binary.py` calls `binary_licenses()` once PyInstaller's
  analysis has run, with the analysis' TOC (every Python module, extension module, shared
  library and data file it collected) and the payload's files; the text is bundled as
  `agentbox/THIRD_PARTY_LICENSES` in that binary, which `agentbox licenses` prints. Each
  collected file is traced to its owner: a distribution (through its RECORD: the license files in
  its `.dist-info`), CPython (the standard library, libpython: its LICENSE.txt), a Debian
  package (a system library, through `dpkg -S`: `/usr/share/doc/<package>/copyright`) or the
  guest (componentize-py's runtime, CPython for WASI). The build fails, naming the file, when a
  collected file has no owner with a license text, or when its owner is not a runtime dependency
  of agentbox (a package of the build environment leaked into the binary).
- The Python package's: `python packaging/licenses.py [--check]` writes THIRD_PARTY_LICENSES and
  its packaged copy agentbox/THIRD_PARTY_LICENSES, for what the wheel itself carries: the guest.
  pip installs the dependencies with their own license files. `--check` fails when a file is stale.
"""

from __future__ import annotations

import argparse
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import Distribution, PackageNotFoundError, distribution, distributions
from pathlib import Path

from packaging.requirements import Requirement

from agentbox._pyinstaller import guest_files
from agentbox._version import DISTRIBUTION

ROOT = Path(__file__).resolve().parent.parent
OUTPUTS = (ROOT / "THIRD_PARTY_LICENSES", ROOT / "agentbox" / "THIRD_PARTY_LICENSES")
#: Where the license list lives inside the package and the binary (`agentbox licenses` reads it).
PACKAGED_NAME = "agentbox/THIRD_PARTY_LICENSES"
#: The extras whose commands the binary has (`agentbox run --engine restricted`, `mcp`, `serve`).
EXTRAS = ("fallback", "mcp", "serve")
#: Distributions of the build tools whose code the binary carries besides the runtime
#: dependencies: PyInstaller's bootloader and loader, pyinstaller-hooks-contrib's runtime hooks.
BUILD_TOOLS = ("pyinstaller", "pyinstaller-hooks-contrib")
LICENSE_FILE = re.compile(r"(^|/)(LICEN[CS]E|COPYING|NOTICE)[^/]*$", re.IGNORECASE)
#: Libraries a Python installation may bundle (python.org's Windows and macOS builds) -> the
#: name its LICENSE.txt uses for them when it carries their license texts.
PYTHON_BUNDLED = {
    "libssl": "OpenSSL",
    "libcrypto": "OpenSSL",
    "libffi": "libffi",
    "sqlite3": "SQLite",
    "libsqlite3": "SQLite",
    "libbz2": "bzip2",
    "liblzma": "xz",
    "libz": "zlib",
    "zlib": "zlib",
    "libexpat": "expat",
    "libmpdec": "mpdecimal",
    "tcl": "Tcl",
    "tk": "Tk",
}
#: "3.14.0 (main, Sep 11 2026, 23:47:35)": CPython's sys.version inside the guest.
GUEST_VERSION = re.compile(rb"\b(3\.\d+\.\d+)[a-z0-9]* \(main, ")
RULE = "=" * 78

GUEST_NOTE = """\
The guest (agentbox/guest/sandbox.wasm, run inside wasmtime) is built by componentize-py {version}.
It embeds componentize-py's runtime (Apache-2.0 WITH LLVM-exception, text below), CPython {python}
for WASI (PSF-2.0, next section), wasi-libc (Apache-2.0 WITH LLVM-exception OR Apache-2.0 OR MIT)
and the C libraries CPython's WASI build links statically: zlib (Zlib), SQLite (public domain),
libexpat (MIT), mpdecimal (BSD-2-Clause) and HACL* (MIT)."""

GUEST_PYTHON_NOTE = """\
The Python inside the guest. CPython {python} is distributed under the PSF License Agreement;
the text below is that agreement as CPython {host}'s LICENSE.txt carries it (no CPython {python}
LICENSE file is installed on the building machine; the terms are the same)."""


class LicenseError(Exception):
    """Something the build collected has no license text, or should not have been collected."""


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class Component:
    """One section of the list: a piece of third-party software and the files it contributed."""

    title: str
    license: str
    texts: list[tuple[str, str]]
    note: str = ""
    files: set[str] = field(default_factory=set)
    order: int = 1

    def render(self) -> str:
        parts = [RULE, self.title, f"License: {self.license}"]
        if self.files:
            listed = ", ".join(sorted(self.files, key=str.lower))
            parts += textwrap.wrap(
                f"Files: {listed}",
                78,
                subsequent_indent="  ",
                break_long_words=False,
                break_on_hyphens=False,
            )
        parts.append(RULE)
        if self.note:
            parts += [self.note, ""]
        for name, text in self.texts:
            parts += [f"--- {name} ---", text, ""]
        return "\n".join(parts)


# Distributions -----------------------------------------------------------------------------


def runtime_distributions() -> list[Distribution]:
    """agentbox's installed runtime dependencies, recursively (with the binary's extras)."""
    seen: dict[str, Distribution] = {}
    pending = [(req, extra) for extra in ("", *EXTRAS) for req in _requires(DISTRIBUTION, extra)]
    while pending:
        requirement, extra = pending.pop()
        name = _normalize(requirement.name)
        environment = {"extra": extra}
        if name in seen or (requirement.marker and not requirement.marker.evaluate(environment)):
            continue
        try:
            seen[name] = distribution(requirement.name)
        except PackageNotFoundError:
            continue  # an optional dependency that is not installed is not in the binary
        for child_extra in ("", *requirement.extras):
            pending += [(child, child_extra) for child in _requires(requirement.name, child_extra)]
    return sorted(seen.values(), key=lambda dist: _normalize(dist.metadata["Name"]))


def _requires(name: str, extra: str) -> list[Requirement]:
    requirements = [Requirement(text) for text in distribution(name).requires or []]
    if extra:
        return [r for r in requirements if r.marker and r.marker.evaluate({"extra": extra})]
    return [r for r in requirements if not r.marker or r.marker.evaluate({"extra": ""})]


def license_texts(dist: Distribution) -> list[tuple[str, str]]:
    """The license files in the distribution's `.dist-info` (PEP 639's `licenses/` folder and
    the older LICENSE/COPYING/NOTICE names)."""
    texts = []
    for path in sorted(dist.files or [], key=str):
        name = str(path)
        if ".dist-info/" not in name or not LICENSE_FILE.search(name):
            continue
        text = Path(str(path.locate())).read_text(encoding="utf-8", errors="replace").strip()
        if text:
            texts.append((name.split("/", 1)[-1], text))
    return texts


def license_name(dist: Distribution) -> str:
    metadata = dist.metadata
    expression = metadata.get("License-Expression")
    if expression:
        return expression
    classifiers = [
        value.split(" :: ")[-1]
        for value in metadata.get_all("Classifier") or []
        if value.startswith("License ::")
    ]
    short = (metadata.get("License") or "").strip()
    return ", ".join(classifiers) or (short if short and "\n" not in short else "see text")


def _distribution_component(dist: Distribution, note: str = "", order: int = 1) -> Component:
    texts = license_texts(dist)
    if not texts:
        raise LicenseError(f"{dist.metadata['Name']} {dist.version} has no license file")
    return Component(
        f"{dist.metadata['Name']} {dist.version}", license_name(dist), texts, note, order=order
    )


# CPython and the guest -------------------------------------------------------------------


def _cpython_license() -> tuple[str, str]:
    path = Path(sysconfig.get_paths()["stdlib"]) / "LICENSE.txt"
    if not path.is_file():
        raise LicenseError(f"CPython's LICENSE.txt is not at {path}")
    return "LICENSE.txt", path.read_text(encoding="utf-8").strip()


def guest_python_version(wasm: Path) -> str:
    """The CPython version inside the guest, as its sys.version reads."""
    found = set(GUEST_VERSION.findall(wasm.read_bytes()))
    if len(found) != 1:
        raise LicenseError(f"expected one CPython version in {wasm}, found {sorted(found)}")
    return found.pop().decode()


def guest_components(wasm: Path) -> list[Component]:
    """componentize-py's runtime and CPython for WASI: what the guest embeds."""
    try:
        dist = distribution("componentize-py")
    except PackageNotFoundError:
        raise LicenseError("componentize-py is not installed (pip install --group build)") from None
    python = guest_python_version(wasm)
    runtime = _distribution_component(
        dist, GUEST_NOTE.format(version=dist.version, python=python), order=3
    )
    runtime.title += " (the guest's runtime)"
    cpython = Component(
        f"CPython {python} for WASI (the guest's Python)",
        "PSF-2.0",
        [_cpython_license()],
        GUEST_PYTHON_NOTE.format(python=python, host=platform.python_version()),
        order=3,
    )
    return [runtime, cpython]


# System libraries --------------------------------------------------------------------------


def _debian_package(library: Path) -> str | None:
    """The Debian package that installed `library` (`dpkg -S`), or None."""
    if shutil.which("dpkg") is None:
        return None
    candidates = {str(library), str(library.resolve())}
    for path in list(candidates):  # merged /usr: dpkg knows the path the package shipped
        if path.startswith("/usr/lib/"):
            candidates.add(path[len("/usr") :])
        elif path.startswith("/lib/"):
            candidates.add("/usr" + path)
    result = subprocess.run(
        ["dpkg", "-S", *sorted(candidates)], capture_output=True, text=True, check=False
    )
    for line in result.stdout.splitlines():  # "libssl3:amd64: /usr/lib/x86_64-linux-gnu/..."
        package, _, path = line.partition(": ")
        if path in candidates and "," not in package:
            return package.split(":")[0]
    return None


def _debian_component(package: str) -> Component:
    copyright_file = Path("/usr/share/doc") / package / "copyright"
    if not copyright_file.is_file():
        raise LicenseError(f"the Debian package {package} has no {copyright_file}")
    query = ["dpkg-query", "-W", "-f=${source:Package} ${Version}", package]
    source, _, version = subprocess.run(
        query, capture_output=True, text=True, check=True
    ).stdout.partition(" ")
    return Component(
        f"{source} {version} (Debian package {package})",
        "see the Debian copyright file",
        [(str(copyright_file), copyright_file.read_text(encoding="utf-8", errors="replace"))],
        order=2,
    )


# The inventory ----------------------------------------------------------------------------


class Inventory:
    """Traces collected files to the components that own them."""

    def __init__(self, own: Iterable[Path] = ()) -> None:
        #: Folders of agentbox's own files (the package, packaging/, the build's work folder).
        self.own = [ROOT / "agentbox", ROOT / "packaging", *(Path(f).resolve() for f in own)]
        self.components: dict[str, Component] = {}
        #: Why a collected file has no license text -> the files (their names in the bundle).
        self.errors: dict[str, list[str]] = {}
        self.allowed = {_normalize(d.metadata["Name"]) for d in runtime_distributions()}
        self.allowed |= set(BUILD_TOOLS)
        self.stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
        self.platstdlib = Path(sysconfig.get_paths()["platstdlib"]).resolve()
        self.prefix = Path(sys.base_prefix).resolve()
        self.guest = {path.resolve() for path in guest_files()}
        self.records: dict[Path, Distribution] = {}
        for dist in distributions():
            for file in dist.files or []:
                self.records.setdefault(Path(str(dist.locate_file(file))).resolve(), dist)

    def add(self, name: str, source: str | Path | None, *, listed: bool = False) -> None:
        """Record that the build collected `source` (as `name`); `listed`: name it under its
        component's `Files:` (shared libraries and extension modules)."""
        if source is None or str(source) in ("", "-"):  # a namespace package: no file
            return
        path = Path(source).resolve()
        try:
            component = self._owner(name, path)
        except LicenseError as error:
            self.errors.setdefault(str(error), []).append(name)
            return
        if component is not None and listed:
            component.files.add(Path(name).name)

    def add_distribution(self, name: str, note: str) -> None:
        """Record a distribution the binary carries without a collected file to show for it."""
        dist = distribution(name)
        key = f"dist:{_normalize(dist.metadata['Name'])}"
        self._component(key, lambda: _distribution_component(dist, order=4)).note = note

    def _component(self, key: str, make: Callable[[], Component]) -> Component:
        if key not in self.components:
            self.components[key] = make()
        return self.components[key]

    def _owner(self, name: str, path: Path) -> Component | None:
        if path in self.guest:
            if path.suffix != ".wasm":
                return None  # sandbox.json: agentbox's own metadata
            if "guest:runtime" not in self.components:
                runtime, python = guest_components(path)
                self.components.update({"guest:runtime": runtime, "guest:python": python})
            return self.components["guest:runtime"]
        dist = self.records.get(path)
        if dist is not None:
            normalized = _normalize(dist.metadata["Name"])
            if normalized == _normalize(DISTRIBUTION):
                return None
            if normalized not in self.allowed:
                raise LicenseError(
                    f"{dist.metadata['Name']} is not a runtime dependency "
                    f"of {DISTRIBUTION}[{','.join(EXTRAS)}]: exclude the import that pulls it "
                    "in (agentbox/_pyinstaller/__init__.py, EXCLUDED_MODULES)"
                )
            order = 4 if normalized in BUILD_TOOLS else 1
            return self._component(
                f"dist:{normalized}", lambda: _distribution_component(dist, order=order)
            )
        if self._is_cpython(name, path):
            return self._component("cpython", self._cpython_component)
        if any(path.is_relative_to(folder) for folder in self.own):
            return None  # agentbox itself, the entry script, the build's generated modules
        if _is_shared_library(path):
            package = _debian_package(path)
            if package is not None:
                return self._component(f"debian:{package}", lambda: _debian_component(package))
        raise LicenseError(
            f"{path} has no license text: it is in no installed distribution's RECORD, not "
            "part of CPython, not installed by a Debian package"
        )

    def _is_cpython(self, name: str, path: Path) -> bool:
        if name == "base_library.zip":  # the standard library modules needed at bootstrap
            return True
        if path.is_relative_to(self.prefix) and _is_shared_library(path):
            if path.name.lower().startswith(("libpython", "python3")):
                return True
            # A library the Python build bundles: covered if CPython's LICENSE.txt has its text.
            stem = re.split(r"[-.]", path.name.lower(), maxsplit=1)[0]
            project = PYTHON_BUNDLED.get(stem)
            if project and project.lower() in _cpython_license()[1].lower():
                return True
        for folder in (self.stdlib, self.platstdlib):
            if (
                path.is_relative_to(folder)
                and "site-packages" not in path.relative_to(folder).parts
            ):
                return True
        return False

    def _cpython_component(self) -> Component:
        return Component(
            f"CPython {platform.python_version()} (the host interpreter: libpython, the standard "
            "library and its extension modules)",
            "PSF-2.0",
            [_cpython_license()],
            order=0,
        )

    def render(self, header: str) -> str:
        if self.errors:
            lines = []
            for message, names in sorted(self.errors.items()):
                shown = ", ".join(sorted(names)[:4])
                more = f" and {len(names) - 4} more" if len(names) > 4 else ""
                lines.append(f"{shown}{more}: {message}")
            raise LicenseError(
                "the build collected files without a license text or from outside agentbox's "
                "runtime dependencies:\n  " + "\n  ".join(lines)
            )
        components = sorted(self.components.values(), key=lambda c: (c.order, c.title.lower()))
        return "\n\n".join([header, *(c.render() for c in components)]) + "\n"


def _is_shared_library(path: Path) -> bool:
    name = path.name
    return name.endswith((".so", ".dylib", ".dll", ".pyd")) or ".so." in name


def binary_licenses(
    analysis_toc: Iterable[tuple[str, str | None, str]],
    payload: Mapping[str, Path],
    artifact: str,
    build: Path,
) -> str:
    """The license list of a binary: `analysis_toc` is what PyInstaller's Analysis collected
    (scripts, pure modules, binaries, datas: (name, source, typecode)); `payload` what travels
    in the onefile payload (its name -> the file it was made from); `build` the work folder
    (its generated modules are agentbox's own). Raises LicenseError naming
    every collected file without a license text."""
    inventory = Inventory(own=[build])
    inventory.add_distribution(
        "pyinstaller",
        "The binary's bootloader and loader (GPL-2.0 with the bootloader exception).",
    )
    for name, source, typecode in analysis_toc:
        inventory.add(name, source, listed=typecode in ("BINARY", "EXTENSION"))
    for name, source in payload.items():
        inventory.add(name, source, listed=_is_shared_library(source))
    header = (
        f"Third-party software in the agentbox binary {artifact}: everything the build collected\n"
        "(PyInstaller's analysis and the payload unpacked into the cache), traced to its owner.\n"
        "Generated by packaging/build_binary.py (packaging/licenses.py); do not edit.\n"
    )
    return inventory.render(header)


def package_licenses() -> str:
    """The license list of the agentbox-wasm package: what the wheel carries besides agentbox."""
    wasm = guest_files()[0]
    header = (
        f"Third-party software in the {DISTRIBUTION} Python package: the guest it carries.\n"
        "pip installs agentbox's dependencies with their own license files. The single-file\n"
        "binary carries its own list of everything it bundles (`agentbox licenses` in it).\n"
        "Generated by packaging/licenses.py; do not edit.\n"
    )
    components = guest_components(wasm)
    return "\n\n".join([header, *(c.render() for c in components)]) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description="Write the package's THIRD_PARTY_LICENSES.")
    parser.add_argument("--check", action="store_true", help="fail if a file is out of date")
    options = parser.parse_args()
    try:
        text = package_licenses()
    except LicenseError as error:
        print(f"licenses: {error}", file=sys.stderr)
        return 1
    stale = [path for path in OUTPUTS if not path.is_file() or path.read_text() != text]
    if options.check:
        for path in stale:
            print(f"licenses: {path.relative_to(ROOT)} is out of date", file=sys.stderr)
        return 1 if stale else 0
    for path in OUTPUTS:
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)} ({len(text) // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
