"""Render the installer manifests from fake artifacts and check them against upstream schemas.

Two cases: single-file binaries only (the manifests install those) and binaries plus onedir
archives (the manifests install the archives); also the archive packing of build_binary.py.

The winget and scoop JSON schemas are vendored in ``../shared/schemas`` (beside the repository);
the Homebrew formula is checked with ``ruby -c`` and evaluated under a tiny stub of the DSL.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from types import ModuleType

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT.parent / "shared" / "schemas"
WINGET_DIR = "winget/manifests/a/AgentboxDev/Agentbox"
ALL_TARGETS = ["linux-x86_64", "linux-aarch64", "macos-arm64", "macos-x86_64", "windows-x86_64"]


def _load(name: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "packaging" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


render = _load("render_installers")
artifacts = _load("artifacts")
VERSION = render.read_version()


def _schema(relative: str) -> dict:
    path = SCHEMAS / relative
    if not path.is_file():
        pytest.fail(
            f"installer schema {path} is missing: the vendored schemas are expected in "
            f"shared/schemas/ beside the repository ({ROOT.parent}); they cannot be skipped",
            pytrace=False,
        )
    return json.loads(path.read_text(encoding="utf-8"))


def _validate(document: object, schema_file: str) -> None:
    schema = _schema(schema_file)
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    validator = validator_cls(schema, format_checker=validator_cls.FORMAT_CHECKER)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]
    assert not errors, f"{schema_file}:\n" + "\n".join(errors)


def _fake_dist(
    tmp_path: Path, targets: list[str], archives: list[str] | None = None
) -> tuple[Path, dict[str, str]]:
    """Small files with known, distinct content named like the real binaries (`targets`) and
    archives (`archives`); returns the hashes by target, or by archive name for archives."""
    dist = tmp_path / "dist"
    dist.mkdir()
    hashes = {}
    for target in targets:
        content = f"fake agentbox binary for {target}\n".encode()
        (dist / artifacts.artifact_name(target)).write_bytes(content)
        hashes[target] = hashlib.sha256(content).hexdigest()
    for target in archives or []:
        name = artifacts.archive_name(target)
        content = f"fake agentbox archive for {target}\n".encode()
        (dist / name).write_bytes(content)
        hashes[name] = hashlib.sha256(content).hexdigest()
    (dist / "unrelated.txt").write_text("not an artifact\n")
    return dist, hashes


def _render(
    tmp_path: Path, targets: list[str], archives: list[str] | None = None
) -> tuple[Path, Path, dict[str, str]]:
    dist, hashes = _fake_dist(tmp_path, targets, archives)
    out = tmp_path / "out"
    assert render.main(["--dist", str(dist), "--out", str(out)]) == 0
    return dist, out, hashes


def _url(target: str, archive: bool = False) -> str:
    name = (artifacts.archive_name if archive else artifacts.artifact_name)(target)
    return f"https://github.com/agentbox-dev/agentbox/releases/download/v{VERSION}/{name}"


def _ruby() -> str:
    ruby = shutil.which("ruby")
    if ruby is None:
        pytest.fail(
            "ruby is needed to check the Homebrew formula: `apt-get install -y ruby`",
            pytrace=False,
        )
    return ruby


# A stub of the Homebrew formula DSL: evaluates the formula as Homebrew would on one OS/CPU
# (in the staged source folder, if given) and prints the url and sha256 that platform ends up
# with and what `install` put into bin/ and libexec/.
_BREW_STUB = r"""
OS_NAME = ARGV[1]
CPU_NAME = ARGV[2]
STAGED = ARGV[3]
module OS
  def self.mac?; OS_NAME == "macos"; end
  def self.linux?; OS_NAME == "linux"; end
end
module Hardware
  module CPU
    def self.arm?; CPU_NAME == "arm"; end
    def self.intel?; CPU_NAME == "intel"; end
  end
end
class Formula
  class Prefix
    attr_reader :installed, :symlinks
    def initialize(path); @path = path; end
    def /(other); "#{@path}/#{other}"; end
    def install(*paths); (@installed ||= []).concat(paths.flatten); end
    def install_symlink(*paths); (@symlinks ||= []).concat(paths.map(&:to_s)); end
  end
  class << self
    def fields; @fields ||= {}; end
    %i[desc homepage version license url sha256].each do |name|
      define_method(name) { |value| fields[name] = value }
    end
    def on_macos; yield if OS.mac?; end
    def on_linux; yield if OS.linux?; end
    def on_arm; yield if Hardware::CPU.arm?; end
    def on_intel; yield if Hardware::CPU.intel?; end
    def test(&block); fields[:test] = !block.nil?; end
  end
  def bin; @bin ||= Prefix.new("bin"); end
  def libexec; @libexec ||= Prefix.new("libexec"); end
  def odie(message); abort(message); end
end
load ARGV[0]
formula = Agentbox.new
if Agentbox.fields.key?(:url)
  Dir.chdir(STAGED) if STAGED
  formula.install
end
require "json"
puts JSON.generate(Agentbox.fields.merge(
  installed: formula.bin.installed,
  symlinks: formula.bin.symlinks,
  libexec: formula.libexec.installed,
))
"""


def _brew_eval(
    tmp_path: Path, formula: Path, os_name: str, cpu: str, staged: Path | None = None
) -> dict:
    stub = tmp_path / "brew_stub.rb"
    stub.write_text(_BREW_STUB)
    result = subprocess.run(
        [_ruby(), str(stub), str(formula), os_name, cpu, *([str(staged)] if staged else [])],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(result.stdout)


def _check_formula(tmp_path: Path, formula: Path, hashes: dict[str, str]) -> None:
    text = formula.read_text()
    subprocess.run([_ruby(), "-c", str(formula)], check=True, capture_output=True, timeout=60)
    assert "class Agentbox < Formula" in text
    assert 'license "Apache-2.0"' in text
    assert f'version "{VERSION}"' in text
    assert "test do" in text and "agentbox run -" in text and "assert_equal" in text
    for os_name in ("macos", "linux"):
        present = [t for t in hashes if t.startswith(f"{os_name}-")]
        assert (f"on_{os_name} do" in text) == bool(present)
    for target, digest in hashes.items():
        if target.startswith("windows-"):
            continue
        assert f'url "{_url(target)}"' in text
        assert f'sha256 "{digest}"' in text
        assert f'bin.install "{artifacts.artifact_name(target)}" => "agentbox"' in text
    # Each platform gets its own binary's url and hash, and installs that very file.
    for os_name, cpu, target in [
        ("macos", "arm", "macos-arm64"),
        ("macos", "intel", "macos-x86_64"),
        ("linux", "intel", "linux-x86_64"),
        ("linux", "arm", "linux-aarch64"),
    ]:
        fields = _brew_eval(tmp_path, formula, os_name, cpu)
        assert fields["test"] is True
        if target not in hashes:
            assert "url" not in fields and "sha256" not in fields
            continue
        assert fields["url"] == _url(target)
        assert fields["sha256"] == hashes[target]
        assert fields["installed"] == [{artifacts.artifact_name(target): "agentbox"}]
        assert fields["symlinks"] is None and fields["libexec"] is None


def test_artifact_names_and_targets() -> None:
    assert [artifacts.artifact_name(t) for t in ALL_TARGETS] == [
        "agentbox-linux-x86_64",
        "agentbox-linux-aarch64",
        "agentbox-macos-arm64",
        "agentbox-macos-x86_64",
        "agentbox-windows-x86_64.exe",
    ]
    assert list(artifacts.TARGETS) == ALL_TARGETS
    assert artifacts.release_url("0.1.0", "x") == (
        "https://github.com/agentbox-dev/agentbox/releases/download/v0.1.0/x"
    )
    cases = {
        ("Linux", "x86_64"): "linux-x86_64",
        ("Linux", "aarch64"): "linux-aarch64",
        ("Linux", "arm64"): "linux-aarch64",
        ("Darwin", "arm64"): "macos-arm64",
        ("Darwin", "x86_64"): "macos-x86_64",
        ("Windows", "AMD64"): "windows-x86_64",
    }
    for (system, machine), target in cases.items():
        assert artifacts.current_target(system, machine) == target
    for system, machine in [("Windows", "ARM64"), ("Linux", "riscv64"), ("FreeBSD", "amd64")]:
        with pytest.raises(RuntimeError, match="no binary for"):
            artifacts.current_target(system, machine)
    with pytest.raises(ValueError, match="unknown target"):
        artifacts.artifact_name("linux-riscv64")
    assert artifacts.current_target() in ALL_TARGETS  # the machine running the tests


def test_all_targets(tmp_path: Path) -> None:
    dist, out, hashes = _render(tmp_path, ALL_TARGETS)

    # SHA256SUMS: sha256sum format, one line per binary, hashes as hashlib computes them.
    expected = "".join(f"{hashes[t]}  {artifacts.artifact_name(t)}\n" for t in ALL_TARGETS)
    assert (dist / "SHA256SUMS").read_text() == expected

    _check_formula(tmp_path, out / "Formula" / "agentbox.rb", hashes)

    win_dir = out / WINGET_DIR / VERSION
    assert sorted(p.name for p in win_dir.iterdir()) == [
        "AgentboxDev.Agentbox.installer.yaml",
        "AgentboxDev.Agentbox.locale.en-US.yaml",
        "AgentboxDev.Agentbox.yaml",
    ]
    for name, schema in [
        ("AgentboxDev.Agentbox.yaml", "manifest.version.1.12.0.json"),
        ("AgentboxDev.Agentbox.installer.yaml", "manifest.installer.1.12.0.json"),
        ("AgentboxDev.Agentbox.locale.en-US.yaml", "manifest.defaultLocale.1.12.0.json"),
    ]:
        text = (win_dir / name).read_text()
        first = text.splitlines()[0]
        schema_id = _schema(f"winget/{schema}")["$id"]
        assert first.lower() == f"# yaml-language-server: $schema={schema_id}".lower()
        document = yaml.safe_load(text)
        _validate(document, f"winget/{schema}")
        assert document["ManifestVersion"] == "1.12.0"
        assert document["PackageIdentifier"] == "AgentboxDev.Agentbox"
        assert document["PackageVersion"] == VERSION

    installer = yaml.safe_load((win_dir / "AgentboxDev.Agentbox.installer.yaml").read_text())
    assert installer["ManifestType"] == "installer"
    assert installer["InstallerType"] == "portable"
    assert installer["Commands"] == ["agentbox"]
    assert installer["Installers"] == [
        {
            "Architecture": "x64",
            "InstallerUrl": _url("windows-x86_64"),
            "InstallerSha256": hashes["windows-x86_64"].upper(),
        }
    ]

    scoop = json.loads((out / "scoop" / "agentbox.json").read_text())
    _validate(scoop, "scoop/schema.json")
    assert scoop["version"] == VERSION
    assert scoop["license"] == "Apache-2.0"
    assert scoop["homepage"] == "https://github.com/agentbox-dev/agentbox"
    assert list(scoop["architecture"]) == ["64bit"]
    arch = scoop["architecture"]["64bit"]
    assert arch["url"] == _url("windows-x86_64")
    assert arch["hash"] == hashes["windows-x86_64"]
    assert arch["bin"] == [["agentbox-windows-x86_64.exe", "agentbox"]]
    assert scoop["checkver"] == {"github": "https://github.com/agentbox-dev/agentbox"}
    auto = scoop["autoupdate"]["architecture"]["64bit"]
    assert auto["url"] == _url("windows-x86_64").replace(f"v{VERSION}/", "v$version/")


def test_sums_file_renders_the_same_as_binaries(tmp_path: Path) -> None:
    """Binaries built elsewhere: rendering from their SHA256SUMS gives identical manifests."""
    dist, out, _ = _render(tmp_path, ALL_TARGETS)
    sums = tmp_path / "SHA256SUMS"
    sums.write_text((dist / "SHA256SUMS").read_text() + f"{'0' * 64}  notes.txt\n")
    out2 = tmp_path / "out2"
    assert render.main(["--sums", str(sums), "--out", str(out2)]) == 0
    first = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    second = {p.relative_to(out2): p.read_bytes() for p in out2.rglob("*") if p.is_file()}
    assert first == second and len(first) == 5


def test_linux_only(tmp_path: Path) -> None:
    _, out, hashes = _render(tmp_path, ["linux-x86_64", "linux-aarch64"])
    formula = out / "Formula" / "agentbox.rb"
    _check_formula(tmp_path, formula, hashes)
    assert "on_macos" not in formula.read_text()
    assert not (out / "winget").exists()
    assert not (out / "scoop").exists()


def test_partial_targets(tmp_path: Path) -> None:
    """One CPU missing per OS: the formula keeps only the binaries that exist."""
    _, out, hashes = _render(tmp_path, ["macos-arm64", "linux-x86_64", "windows-x86_64"])
    formula = out / "Formula" / "agentbox.rb"
    _check_formula(tmp_path, formula, hashes)
    assert "aarch64" not in formula.read_text() and "macos-x86_64" not in formula.read_text()
    assert (out / "scoop" / "agentbox.json").is_file()


def test_version_override(tmp_path: Path) -> None:
    dist, hashes = _fake_dist(tmp_path, ["windows-x86_64"])
    out = tmp_path / "out"
    assert render.main(["--dist", str(dist), "--out", str(out), "--version", "v2.3.4"]) == 0
    assert not (out / "Formula").exists()  # nothing for Homebrew without macOS/Linux binaries
    installer = out / WINGET_DIR / "2.3.4" / "AgentboxDev.Agentbox.installer.yaml"
    document = yaml.safe_load(installer.read_text())
    _validate(document, "winget/manifest.installer.1.12.0.json")
    assert document["PackageVersion"] == "2.3.4"
    assert document["Installers"][0]["InstallerUrl"].endswith("/v2.3.4/agentbox-windows-x86_64.exe")
    assert document["Installers"][0]["InstallerSha256"] == hashes["windows-x86_64"].upper()


def test_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert render.main(["--dist", str(empty), "--out", str(tmp_path / "out")]) == 1
    assert "no agentbox binaries" in capsys.readouterr().err
    assert not (empty / "SHA256SUMS").exists()
    assert not (tmp_path / "out").exists()

    bad = tmp_path / "SHA256SUMS"
    bad.write_text("not a checksum line\n")
    assert render.main(["--sums", str(bad), "--out", str(tmp_path / "out")]) == 1
    assert "not a sha256sum line" in capsys.readouterr().err

    dist, _ = _fake_dist(tmp_path, ["linux-x86_64"])
    args = ["--dist", str(dist), "--version", "1.0; rm -rf /", "--out", str(tmp_path / "o")]
    assert render.main(args) == 1
    assert "unsupported version" in capsys.readouterr().err


# --- onedir archives ---------------------------------------------------------------------------

build_binary = _load("build_binary")


def _fake_onedir(folder: Path, executable: str = "agentbox") -> Path:
    """A folder shaped like PyInstaller's onedir output: the executable beside _internal/."""
    (folder / "_internal" / "lib").mkdir(parents=True)
    (folder / executable).write_bytes(b"#!/bin/sh\necho fake agentbox\n")
    (folder / executable).chmod(0o755)
    (folder / "_internal" / "base_library.zip").write_bytes(b"PK fake")
    (folder / "_internal" / "lib" / "libfake.so").write_bytes(b"\x7fELF fake")
    return folder


def _staged(tmp_path: Path, archive: Path) -> Path:
    """Unpack `archive` as Homebrew does: into a fresh folder, then into its only folder."""
    stage = tmp_path / "stage"
    with tarfile.open(archive) as tar:
        tar.extractall(stage, filter="data")
    (only,) = stage.iterdir()
    assert only.is_dir()
    return only


def _check_archive_formula(
    tmp_path: Path, formula: Path, hashes: dict[str, str], staged: Path
) -> None:
    text = formula.read_text()
    subprocess.run([_ruby(), "-c", str(formula)], check=True, capture_output=True, timeout=60)
    assert "class Agentbox < Formula" in text and f'version "{VERSION}"' in text
    assert "test do" in text and "agentbox run -" in text and "assert_equal" in text
    assert 'libexec.install Dir["*"]' in text
    assert 'bin.install_symlink libexec/"agentbox"' in text
    assert "odie" not in text and "bin.install " not in text
    for os_name, cpu, target in [
        ("macos", "arm", "macos-arm64"),
        ("macos", "intel", "macos-x86_64"),
        ("linux", "intel", "linux-x86_64"),
        ("linux", "arm", "linux-aarch64"),
    ]:
        name = artifacts.archive_name(target)
        fields = _brew_eval(tmp_path, formula, os_name, cpu, staged)
        assert fields["test"] is True
        if name not in hashes:
            assert "url" not in fields and "sha256" not in fields
            continue
        assert fields["url"] == _url(target, archive=True)
        assert fields["sha256"] == hashes[name]
        # The executable and _internal/ go side by side into libexec; bin/ only links to it.
        assert sorted(fields["libexec"]) == ["_internal", "agentbox"]
        assert fields["symlinks"] == ["libexec/agentbox"]
        assert fields["installed"] is None


def test_archive_names() -> None:
    assert [artifacts.archive_name(t) for t in ALL_TARGETS] == [
        "agentbox-linux-x86_64.tar.gz",
        "agentbox-linux-aarch64.tar.gz",
        "agentbox-macos-arm64.tar.gz",
        "agentbox-macos-x86_64.tar.gz",
        "agentbox-windows-x86_64.zip",
    ]
    for target in ALL_TARGETS:
        assert artifacts.target_for_archive(artifacts.archive_name(target)) == target
        assert artifacts.target_for_archive(artifacts.artifact_name(target)) is None
        assert artifacts.target_for_artifact(artifacts.archive_name(target)) is None
    assert artifacts.archive_executable("windows-x86_64") == "agentbox.exe"
    assert artifacts.archive_executable("linux-x86_64") == "agentbox"
    with pytest.raises(ValueError, match="unknown target"):
        artifacts.archive_name("linux-riscv64")


def test_archives_all_targets(tmp_path: Path) -> None:
    dist, out, hashes = _render(tmp_path, ALL_TARGETS, ALL_TARGETS)

    # SHA256SUMS lists both kinds: the binaries, then the archives.
    names = [artifacts.artifact_name(t) for t in ALL_TARGETS]
    names += [artifacts.archive_name(t) for t in ALL_TARGETS]
    by_name = {artifacts.artifact_name(t): hashes[t] for t in ALL_TARGETS} | hashes
    expected = "".join(f"{by_name[name]}  {name}\n" for name in names)
    assert (dist / "SHA256SUMS").read_text() == expected

    onedir = _fake_onedir(tmp_path / "onedir")
    archive = build_binary.pack_archive(onedir, tmp_path / "agentbox-macos-arm64.tar.gz")
    _check_archive_formula(
        tmp_path, out / "Formula" / "agentbox.rb", hashes, _staged(tmp_path, archive)
    )

    win_dir = out / WINGET_DIR / VERSION
    for name, schema in [
        ("AgentboxDev.Agentbox.yaml", "manifest.version.1.12.0.json"),
        ("AgentboxDev.Agentbox.installer.yaml", "manifest.installer.1.12.0.json"),
        ("AgentboxDev.Agentbox.locale.en-US.yaml", "manifest.defaultLocale.1.12.0.json"),
    ]:
        text = (win_dir / name).read_text()
        schema_id = _schema(f"winget/{schema}")["$id"]
        assert (
            text.splitlines()[0].lower() == f"# yaml-language-server: $schema={schema_id}".lower()
        )
        document = yaml.safe_load(text)
        _validate(document, f"winget/{schema}")
        assert document["PackageVersion"] == VERSION
    installer = yaml.safe_load((win_dir / "AgentboxDev.Agentbox.installer.yaml").read_text())
    assert installer["InstallerType"] == "zip"
    assert installer["NestedInstallerType"] == "portable"
    assert installer["NestedInstallerFiles"] == [
        {"RelativeFilePath": "agentbox\\agentbox.exe", "PortableCommandAlias": "agentbox"}
    ]
    assert installer["Commands"] == ["agentbox"]
    assert installer["Installers"] == [
        {
            "Architecture": "x64",
            "InstallerUrl": _url("windows-x86_64", archive=True),
            "InstallerSha256": hashes["agentbox-windows-x86_64.zip"].upper(),
        }
    ]

    scoop = json.loads((out / "scoop" / "agentbox.json").read_text())
    _validate(scoop, "scoop/schema.json")
    assert scoop["version"] == VERSION
    assert scoop["architecture"] == {
        "64bit": {
            "url": _url("windows-x86_64", archive=True),
            "hash": hashes["agentbox-windows-x86_64.zip"],
        }
    }
    assert scoop["extract_dir"] == "agentbox"
    assert scoop["bin"] == "agentbox.exe"
    assert scoop["checkver"] == {"github": "https://github.com/agentbox-dev/agentbox"}
    auto = scoop["autoupdate"]["architecture"]["64bit"]
    assert auto["url"] == _url("windows-x86_64", archive=True).replace(f"v{VERSION}/", "v$version/")
    assert auto["url"].endswith("/agentbox-windows-x86_64.zip")
    assert auto["hash"] == {"url": "$baseurl/SHA256SUMS"}

    # The same manifests from the SHA256SUMS alone, and from the archive lines alone.
    out2 = tmp_path / "out2"
    assert render.main(["--sums", str(dist / "SHA256SUMS"), "--out", str(out2)]) == 0
    only_archives = tmp_path / "ARCHIVE_SUMS"
    only_archives.write_text(
        "".join(
            line + "\n" for line in expected.splitlines() if ".tar.gz" in line or ".zip" in line
        )
    )
    out3 = tmp_path / "out3"
    assert render.main(["--sums", str(only_archives), "--out", str(out3)]) == 0
    first = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    for other in (out2, out3):
        assert {p.relative_to(other): p.read_bytes() for p in other.rglob("*") if p.is_file()} == (
            first
        )
    assert len(first) == 5


def test_archives_fall_back_per_manager(tmp_path: Path) -> None:
    """Archives only for Linux, the single-file binary only for Windows: Homebrew installs
    the archives (leaving out the macOS binary) and winget/scoop the portable exe."""
    _, out, hashes = _render(
        tmp_path, ["macos-arm64", "windows-x86_64"], ["linux-x86_64", "linux-aarch64"]
    )
    text = (out / "Formula" / "agentbox.rb").read_text()
    assert "on_macos" not in text and ".tar.gz" in text
    onedir = _fake_onedir(tmp_path / "onedir")
    archive = build_binary.pack_archive(onedir, tmp_path / "a.tar.gz")
    _check_archive_formula(
        tmp_path, out / "Formula" / "agentbox.rb", hashes, _staged(tmp_path, archive)
    )
    installer = yaml.safe_load(
        (out / WINGET_DIR / VERSION / "AgentboxDev.Agentbox.installer.yaml").read_text()
    )
    _validate(installer, "winget/manifest.installer.1.12.0.json")
    assert installer["InstallerType"] == "portable" and "NestedInstallerFiles" not in installer
    assert installer["Installers"][0]["InstallerUrl"] == _url("windows-x86_64")
    scoop = json.loads((out / "scoop" / "agentbox.json").read_text())
    _validate(scoop, "scoop/schema.json")
    assert "extract_dir" not in scoop and "bin" not in scoop
    assert scoop["architecture"]["64bit"]["bin"] == [["agentbox-windows-x86_64.exe", "agentbox"]]


def test_pack_archive_layout(tmp_path: Path) -> None:
    """`build_binary.pack_archive` on a fake onedir (PyInstaller is not run): one top-level
    `agentbox/` folder, whatever the onedir is called; sorted entries, fixed owner and mtime,
    executable bits kept; packing twice gives the same bytes."""
    onedir = _fake_onedir(tmp_path / "some-onedir-name")
    (onedir / "_internal" / "link.so").symlink_to("lib/libfake.so")
    expected = [
        "agentbox",
        "agentbox/_internal",
        "agentbox/_internal/base_library.zip",
        "agentbox/_internal/lib",
        "agentbox/_internal/lib/libfake.so",
        "agentbox/_internal/link.so",
        "agentbox/agentbox",
    ]

    tgz = build_binary.pack_archive(onedir, tmp_path / "out" / "agentbox-linux-x86_64.tar.gz")
    assert tgz == tmp_path / "out" / "agentbox-linux-x86_64.tar.gz"
    assert not list((tmp_path / "out").glob("*.part"))
    with tarfile.open(tgz) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == expected
        info = {m.name: m for m in members}
        assert all(
            m.uid == 0 and m.gid == 0 and m.mtime == build_binary.ARCHIVE_EPOCH for m in members
        )
        assert info["agentbox"].isdir() and info["agentbox/_internal/lib"].isdir()
        assert info["agentbox/agentbox"].mode == 0o755
        assert info["agentbox/_internal/base_library.zip"].mode == 0o644
        assert info["agentbox/_internal/link.so"].issym()
        assert info["agentbox/_internal/link.so"].linkname == "lib/libfake.so"
        assert tar.extractfile("agentbox/agentbox").read() == (onedir / "agentbox").read_bytes()
    first = tgz.read_bytes()
    assert build_binary.pack_archive(onedir, tgz).read_bytes() == first

    zipped = build_binary.pack_archive(onedir, tmp_path / "out" / "agentbox-windows-x86_64.zip")
    with zipfile.ZipFile(zipped) as zf:
        assert zf.testzip() is None
        names = zf.namelist()
        folders = {"agentbox", "agentbox/_internal", "agentbox/_internal/lib"}
        assert names == [n + "/" if n in folders else n for n in expected]
        assert zf.read("agentbox/_internal/link.so") == b"\x7fELF fake"  # zip stores the target
        assert zf.read("agentbox/agentbox") == (onedir / "agentbox").read_bytes()
        assert (zf.getinfo("agentbox/agentbox").external_attr >> 16) & 0o777 == 0o755
        assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in zf.infolist())
    assert build_binary.pack_archive(onedir, zipped).read_bytes() == zipped.read_bytes()

    with pytest.raises(ValueError, match=r"expected a \.tar\.gz or \.zip"):
        build_binary.pack_archive(onedir, tmp_path / "agentbox.7z")
    with pytest.raises(FileNotFoundError):
        build_binary.pack_archive(tmp_path / "missing", tmp_path / "x.tar.gz")
