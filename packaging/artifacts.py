"""Artifact names and release URLs for the agentbox binaries.

This is the single source for them: the binary build, the smoke test, the release
workflow and the installer manifests all import it, so a rename cannot drift apart.
"""

from __future__ import annotations

import platform

#: Every OS/arch we ship a binary for, in a stable order (manifests list them this way).
TARGETS: tuple[str, ...] = (
    "linux-x86_64",
    "linux-aarch64",
    "macos-arm64",
    "macos-x86_64",
    "windows-x86_64",
)

HOMEPAGE = "https://github.com/agentbox-dev/agentbox"
RELEASE_URL = "https://github.com/agentbox-dev/agentbox/releases/download/v{version}/{asset}"

_SYSTEMS = {"Linux": "linux", "Darwin": "macos", "Windows": "windows"}
# platform.machine() spells the same CPU differently per OS; map to our target names.
_MACHINES = {
    "x86_64": "x86_64",
    "amd64": "x86_64",
    "aarch64": "aarch64",
    "arm64": "arm64",
}


def artifact_name(target: str) -> str:
    """File name of the binary for `target`; Windows needs `.exe` to be runnable."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; expected one of {', '.join(TARGETS)}")
    return f"agentbox-{target}" + (".exe" if target.startswith("windows-") else "")


def target_for_artifact(name: str) -> str | None:
    """Inverse of `artifact_name`, so a SHA256SUMS line can be mapped back to its target."""
    return next((t for t in TARGETS if artifact_name(t) == name), None)


#: The one top-level folder inside every archive; it holds the executable and `_internal/`.
ARCHIVE_FOLDER = "agentbox"


def archive_name(target: str) -> str:
    """File name of the onedir archive for `target` (what package managers install): a zip
    on Windows, a tar.gz elsewhere."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; expected one of {', '.join(TARGETS)}")
    return f"agentbox-{target}" + (".zip" if target.startswith("windows-") else ".tar.gz")


def archive_executable(target: str) -> str:
    """Name of the executable inside the archive's `ARCHIVE_FOLDER`."""
    return "agentbox.exe" if target.startswith("windows-") else "agentbox"


def target_for_archive(name: str) -> str | None:
    """Inverse of `archive_name`, so a SHA256SUMS line can be mapped back to its target."""
    return next((t for t in TARGETS if archive_name(t) == name), None)


def current_target(system: str | None = None, machine: str | None = None) -> str:
    """The target of this machine, so local builds name their binary like CI does."""
    system = platform.system() if system is None else system
    machine = platform.machine() if machine is None else machine
    os_name = _SYSTEMS.get(system)
    arch = _MACHINES.get(machine.lower())
    if os_name and arch:
        # Linux says aarch64 and macOS says arm64 for the same CPU; each OS keeps its own word.
        if os_name == "linux" and arch == "arm64":
            arch = "aarch64"
        elif os_name == "macos" and arch == "aarch64":
            arch = "arm64"
        target = f"{os_name}-{arch}"
        if target in TARGETS:
            return target
    raise RuntimeError(
        f"agentbox has no binary for {system or '?'}/{machine or '?'}; "
        f"supported targets: {', '.join(TARGETS)}"
    )


def release_url(version: str, asset: str) -> str:
    """Download URL of `asset` in the GitHub release for `version` (without the leading v)."""
    return RELEASE_URL.format(version=version.removeprefix("v"), asset=asset)
