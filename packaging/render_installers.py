"""Render the Homebrew formula, winget manifests and scoop manifest for one release.

Every manifest is rendered from one in-memory source, ``{version, assets: {target: (url,
sha256)}, archives: {target: (url, sha256)}}``, built from the artifacts in ``--dist`` (which
also writes ``SHA256SUMS``) or from an existing ``--sums`` file, so the hashes in all manifests
are the ones in ``SHA256SUMS``. Two kinds of artifact per target: the single-file binary
(``agentbox-<target>[.exe]``, for direct downloads) and the onedir archive
(``agentbox-<target>.tar.gz``/``.zip``, which starts faster). Each package manager installs the
archives when the sums have any for its platforms, and falls back to the single-file binaries
when they have none. Targets without the chosen kind are left out; winget and scoop are
rendered only with a Windows artifact.
The output (default ``installers/rendered/``) is generated and never edited by hand.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))  # run as a script: `python packaging/render_installers.py`

from artifacts import (  # noqa: E402
    ARCHIVE_FOLDER,
    HOMEPAGE,
    TARGETS,
    archive_executable,
    archive_name,
    artifact_name,
    release_url,
    target_for_archive,
    target_for_artifact,
)

TEMPLATES = ROOT / "installers" / "templates"
DESCRIPTION = "Run untrusted, AI-written Python in a WebAssembly sandbox"
LICENSE = "Apache-2.0"
WINGET_ID = "AgentboxDev.Agentbox"
WINGET_MANIFEST_VERSION = "1.12.0"
WINGET_DIR = "winget/manifests/a/AgentboxDev/Agentbox"
# winget/scoop architecture names of the Windows targets we ship.
WINDOWS_ARCH = {"windows-x86_64": ("x64", "64bit")}
# Versions go unquoted into URLs and quoted into YAML/Ruby/JSON strings: keep them plain.
_VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+-]*$")
_SUMS_LINE = re.compile(r"^([0-9a-fA-F]{64}) [ *](.+)$")


Assets = dict[str, tuple[str, str]]  # target -> (url, lower-case sha256 hex)


@dataclass(frozen=True)
class Release:
    """The one source every manifest is rendered from."""

    version: str
    assets: Assets  # the single-file binaries
    archives: Assets = field(default_factory=dict)  # the onedir archives

    def brew_targets(self) -> tuple[Assets, bool]:
        """The macOS/Linux artifacts Homebrew installs, and whether they are archives."""
        return _pick(self, windows=False)

    def windows_targets(self) -> tuple[Assets, bool]:
        """The Windows artifacts winget and scoop install, and whether they are archives."""
        return _pick(self, windows=True)


def _pick(release: Release, windows: bool) -> tuple[Assets, bool]:
    """Archives for these platforms if the release has any, else their single-file binaries."""
    archives = {t: a for t, a in release.archives.items() if t.startswith("windows-") == windows}
    if archives:
        return archives, True
    return {t: a for t, a in release.assets.items() if t.startswith("windows-") == windows}, False


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks since the binaries are tens of MB."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def hash_dist(dist: Path) -> dict[str, str]:
    """Hash the artifacts present in `dist` (the binaries, then the archives) and write
    `dist/SHA256SUMS` (sha256sum format)."""
    names = [artifact_name(t) for t in TARGETS] + [archive_name(t) for t in TARGETS]
    sums = {name: sha256_file(dist / name) for name in names if (dist / name).is_file()}
    if not sums:
        raise ValueError(f"no agentbox binaries in {dist}/ (expected names like agentbox-<target>)")
    lines = "".join(f"{digest}  {name}\n" for name, digest in sums.items())
    (dist / "SHA256SUMS").write_text(lines, encoding="utf-8", newline="\n")
    return sums


def read_sums(path: Path) -> dict[str, str]:
    """Parse a SHA256SUMS file into name -> sha256 (every line; `make_release` keeps ours)."""
    sums: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        match = _SUMS_LINE.match(line)
        if not match:
            raise ValueError(f"{path}:{number}: not a sha256sum line: {line!r}")
        sums[match[2]] = match[1].lower()
    return sums


def read_version(path: Path = ROOT / "agentbox" / "_version.py") -> str:
    """`__version__` from agentbox/_version.py, loaded by path: agentbox may not be installed."""
    spec = importlib.util.spec_from_file_location("_agentbox_version", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.__version__)


def make_release(version: str, sums: dict[str, str]) -> Release:
    """Build the single source: each target with a binary or an archive gets its URL and hash
    (lines for other files are ignored)."""
    version = version.removeprefix("v")
    if not _VERSION_RE.match(version):
        raise ValueError(f"unsupported version string {version!r}")
    assets: dict[str, tuple[str, str]] = {}
    archives: dict[str, tuple[str, str]] = {}
    for name, digest in sums.items():
        if (target := target_for_artifact(name)) is not None:
            assets[target] = (release_url(version, name), digest)
        elif (target := target_for_archive(name)) is not None:
            archives[target] = (release_url(version, name), digest)
    return Release(
        version,
        {t: assets[t] for t in TARGETS if t in assets},
        {t: archives[t] for t in TARGETS if t in archives},
    )


def _template(name: str, **values: str) -> str:
    return Template((TEMPLATES / name).read_text(encoding="utf-8")).substitute(values)


def _brew_condition(target: str) -> str:
    os_name, arch = target.split("-", 1)
    cpu = "intel" if arch == "x86_64" else "arm"
    return f"OS.{'mac' if os_name == 'macos' else 'linux'}? && Hardware::CPU.{cpu}?"


def render_formula(release: Release) -> str:
    """Homebrew formula: url/sha256 per OS and CPU. An archive is unpacked into `libexec` (its
    one top-level folder is where Homebrew stages it) with `agentbox` symlinked into `bin`; a
    single-file binary is installed as `bin/agentbox`."""
    targets, archives = release.brew_targets()
    if not targets:
        raise ValueError("no macOS or Linux binary: cannot render a Homebrew formula")
    platforms = []
    for os_name, block in (("macos", "on_macos"), ("linux", "on_linux")):
        arches = []
        for target, (url, digest) in targets.items():
            if target.startswith(f"{os_name}-"):
                cpu = "on_intel" if target.endswith("x86_64") else "on_arm"
                arches.append(
                    f'    {cpu} do\n      url "{url}"\n      sha256 "{digest}"\n    end\n'
                )
        if arches:
            platforms.append(f"\n  {block} do\n" + "\n".join(arches) + "  end\n")
    if archives:
        # Homebrew stages a tarball with one top-level folder inside that folder, so "*" is
        # the executable and _internal/, which must stay side by side.
        install = [
            '    libexec.install Dir["*"]',
            f'    bin.install_symlink libexec/"{ARCHIVE_FOLDER}"',
        ]
    else:
        install = []
        for i, target in enumerate(targets):
            keyword = "if" if i == 0 else "elsif"
            install.append(f"    {keyword} {_brew_condition(target)}")
            install.append(f'      bin.install "{artifact_name(target)}" => "agentbox"')
        install += ["    else", '      odie "agentbox has no binary for this platform"', "    end"]
    return _template(
        "agentbox.rb.tmpl",
        description=DESCRIPTION,
        homepage=HOMEPAGE,
        version=release.version,
        license=LICENSE,
        platforms="".join(platforms),
        install="\n".join(install),
    )


def render_winget(release: Release) -> dict[str, str]:
    """winget version, installer and defaultLocale manifests: a zip holding a portable exe
    (the archive), or a portable exe (the single-file binary)."""
    targets, archives = release.windows_targets()
    url, digest = targets["windows-x86_64"]
    common = {
        "identifier": WINGET_ID,
        "version": release.version,
        "manifest_version": WINGET_MANIFEST_VERSION,
    }
    if archives:
        installer = _template(
            f"{WINGET_ID}.installer.zip.yaml.tmpl",
            url=url,
            sha256=digest.upper(),
            executable=f"{ARCHIVE_FOLDER}\\{archive_executable('windows-x86_64')}",
            **common,
        )
    else:
        installer = _template(
            f"{WINGET_ID}.installer.yaml.tmpl", url=url, sha256=digest.upper(), **common
        )
    return {
        f"{WINGET_ID}.yaml": _template(f"{WINGET_ID}.yaml.tmpl", **common),
        f"{WINGET_ID}.installer.yaml": installer,
        f"{WINGET_ID}.locale.en-US.yaml": _template(
            f"{WINGET_ID}.locale.en-US.yaml.tmpl",
            homepage=HOMEPAGE,
            license=LICENSE,
            description=DESCRIPTION,
            **common,
        ),
    }


def render_scoop(release: Release) -> str:
    """scoop manifest; built as a dict because JSON has no comments and wants exact quoting."""
    targets, archives = release.windows_targets()
    architecture: dict[str, object] = {}
    autoupdate: dict[str, object] = {}
    for target, (_, scoop_arch) in WINDOWS_ARCH.items():
        if target not in targets:
            continue
        url, digest = targets[target]
        asset = archive_name(target) if archives else artifact_name(target)
        if archives:
            architecture[scoop_arch] = {"url": url, "hash": digest}
        else:
            # Per-architecture `bin`: each Windows binary has its own file name.
            architecture[scoop_arch] = {"url": url, "hash": digest, "bin": [[asset, "agentbox"]]}
        autoupdate[scoop_arch] = {
            "url": release_url("$version", asset),
            "hash": {"url": "$baseurl/SHA256SUMS"},
        }
    manifest: dict[str, object] = {
        "version": release.version,
        "description": DESCRIPTION,
        "homepage": HOMEPAGE,
        "license": LICENSE,
        "architecture": architecture,
    }
    if archives:
        # The zip holds one folder, agentbox/, with agentbox.exe beside its _internal/.
        manifest["extract_dir"] = ARCHIVE_FOLDER
        manifest["bin"] = archive_executable("windows-x86_64")
    manifest["checkver"] = {"github": HOMEPAGE}
    manifest["autoupdate"] = {"architecture": autoupdate}
    return json.dumps(manifest, indent=4) + "\n"


def render_all(release: Release, out: Path) -> list[Path]:
    """Write every manifest that `release` has artifacts for; returns the files written."""
    files: dict[str, str] = {}
    if release.brew_targets()[0]:
        files["Formula/agentbox.rb"] = render_formula(release)
    if "windows-x86_64" in release.windows_targets()[0]:
        for name, text in render_winget(release).items():
            files[f"{WINGET_DIR}/{release.version}/{name}"] = text
        files["scoop/agentbox.json"] = render_scoop(release)
    written = []
    for relative, text in files.items():
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--dist", type=Path, help="directory with the built artifacts (default: dist/)"
    )
    source.add_argument("--sums", type=Path, help="an existing SHA256SUMS instead of binaries")
    parser.add_argument("--version", help="release version (default: agentbox/_version.py)")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "installers" / "rendered", help="output directory"
    )
    args = parser.parse_args(argv)

    try:
        if args.sums is not None:
            sums = read_sums(args.sums)
        else:
            sums = hash_dist(args.dist if args.dist is not None else ROOT / "dist")
        release = make_release(args.version or read_version(), sums)
        if not release.assets and not release.archives:
            raise ValueError(
                "no agentbox binaries found; expected some of: "
                + ", ".join(
                    [artifact_name(t) for t in TARGETS] + [archive_name(t) for t in TARGETS]
                )
            )
        written = render_all(release, args.out)
    except (OSError, ValueError) as exc:
        print(f"render_installers: error: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
