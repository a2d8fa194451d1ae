"""Render the Homebrew formula, winget manifests and scoop manifest for one release.

Every manifest is rendered from one in-memory source, ``{version, assets: {target: (url,
sha256)}}``, built from the binaries in ``--dist`` (which also writes ``SHA256SUMS``) or from
an existing ``--sums`` file, so the hashes in all manifests are the ones in ``SHA256SUMS``.
Targets without a binary are left out; winget and scoop are rendered only with a Windows one.
The output (default ``installers/rendered/``) is generated and never edited by hand.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from string import Template

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))  # run as a script: `python packaging/render_installers.py`

from artifacts import HOMEPAGE, TARGETS, artifact_name, release_url, target_for_artifact  # noqa: E402

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


@dataclass(frozen=True)
class Release:
    """The one source every manifest is rendered from."""

    version: str
    assets: dict[str, tuple[str, str]]  # target -> (url, lower-case sha256 hex)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks since the binaries are tens of MB."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def hash_dist(dist: Path) -> dict[str, str]:
    """Hash the artifacts present in `dist` and write `dist/SHA256SUMS` (sha256sum format)."""
    sums = {
        artifact_name(t): sha256_file(dist / artifact_name(t))
        for t in TARGETS
        if (dist / artifact_name(t)).is_file()
    }
    if not sums:
        raise ValueError(f"no agentbox binaries in {dist}/ (expected names like agentbox-<target>)")
    lines = "".join(f"{digest}  {name}\n" for name, digest in sums.items())
    (dist / "SHA256SUMS").write_text(lines, encoding="utf-8", newline="\n")
    return sums


def read_sums(path: Path) -> dict[str, str]:
    """Parse a SHA256SUMS file; lines for files that are not our binaries are ignored."""
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
    """Build the single source: each target that has a binary gets its URL and hash."""
    version = version.removeprefix("v")
    if not _VERSION_RE.match(version):
        raise ValueError(f"unsupported version string {version!r}")
    assets: dict[str, tuple[str, str]] = {}
    for name, digest in sums.items():
        target = target_for_artifact(name)
        if target is not None:
            assets[target] = (release_url(version, name), digest)
    return Release(version, {t: assets[t] for t in TARGETS if t in assets})


def _template(name: str, **values: str) -> str:
    return Template((TEMPLATES / name).read_text(encoding="utf-8")).substitute(values)


def _brew_condition(target: str) -> str:
    os_name, arch = target.split("-", 1)
    cpu = "intel" if arch == "x86_64" else "arm"
    return f"OS.{'mac' if os_name == 'macos' else 'linux'}? && Hardware::CPU.{cpu}?"


def render_formula(release: Release) -> str:
    """Homebrew formula: url/sha256 per OS and CPU, installing the binary as `agentbox`."""
    platforms = []
    for os_name, block in (("macos", "on_macos"), ("linux", "on_linux")):
        arches = []
        for target, (url, digest) in release.assets.items():
            if target.startswith(f"{os_name}-"):
                cpu = "on_intel" if target.endswith("x86_64") else "on_arm"
                arches.append(
                    f'    {cpu} do\n      url "{url}"\n      sha256 "{digest}"\n    end\n'
                )
        if arches:
            platforms.append(f"\n  {block} do\n" + "\n".join(arches) + "  end\n")
    brew_targets = [t for t in release.assets if not t.startswith("windows-")]
    if not brew_targets:
        raise ValueError("no macOS or Linux binary: cannot render a Homebrew formula")
    install = []
    for i, target in enumerate(brew_targets):
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
    """winget version, installer and defaultLocale manifests (a portable exe)."""
    url, digest = release.assets["windows-x86_64"]
    common = {
        "identifier": WINGET_ID,
        "version": release.version,
        "manifest_version": WINGET_MANIFEST_VERSION,
    }
    return {
        f"{WINGET_ID}.yaml": _template(f"{WINGET_ID}.yaml.tmpl", **common),
        f"{WINGET_ID}.installer.yaml": _template(
            f"{WINGET_ID}.installer.yaml.tmpl", url=url, sha256=digest.upper(), **common
        ),
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
    architecture: dict[str, object] = {}
    autoupdate: dict[str, object] = {}
    for target, (_, scoop_arch) in WINDOWS_ARCH.items():
        if target not in release.assets:
            continue
        url, digest = release.assets[target]
        exe = artifact_name(target)
        # Per-architecture `bin`: each Windows binary has its own file name.
        architecture[scoop_arch] = {"url": url, "hash": digest, "bin": [[exe, "agentbox"]]}
        autoupdate[scoop_arch] = {
            "url": release_url("$version", exe),
            "hash": {"url": "$baseurl/SHA256SUMS"},
        }
    manifest = {
        "version": release.version,
        "description": DESCRIPTION,
        "homepage": HOMEPAGE,
        "license": LICENSE,
        "architecture": architecture,
        "checkver": {"github": HOMEPAGE},
        "autoupdate": {"architecture": autoupdate},
    }
    return json.dumps(manifest, indent=4) + "\n"


def render_all(release: Release, out: Path) -> list[Path]:
    """Write every manifest that `release` has binaries for; returns the files written."""
    files: dict[str, str] = {}
    if any(not t.startswith("windows-") for t in release.assets):
        files["Formula/agentbox.rb"] = render_formula(release)
    if "windows-x86_64" in release.assets:
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
        "--dist", type=Path, help="directory with the built binaries (default: dist/)"
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
        if not release.assets:
            raise ValueError(
                "no agentbox binaries found; expected some of: "
                + ", ".join(artifact_name(t) for t in TARGETS)
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
