"""Render the installer manifests from fake binaries and check them against upstream schemas.

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


def _fake_dist(tmp_path: Path, targets: list[str]) -> tuple[Path, dict[str, str]]:
    """Small files with known, distinct content named like the real binaries."""
    dist = tmp_path / "dist"
    dist.mkdir()
    hashes = {}
    for target in targets:
        content = f"fake agentbox binary for {target}\n".encode()
        (dist / artifacts.artifact_name(target)).write_bytes(content)
        hashes[target] = hashlib.sha256(content).hexdigest()
    (dist / "unrelated.txt").write_text("not an artifact\n")
    return dist, hashes


def _render(tmp_path: Path, targets: list[str]) -> tuple[Path, Path, dict[str, str]]:
    dist, hashes = _fake_dist(tmp_path, targets)
    out = tmp_path / "out"
    assert render.main(["--dist", str(dist), "--out", str(out)]) == 0
    return dist, out, hashes


def _url(target: str) -> str:
    name = artifacts.artifact_name(target)
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
# and prints the url, sha256 and `bin.install` mapping that platform ends up with.
_BREW_STUB = r"""
OS_NAME = ARGV[1]
CPU_NAME = ARGV[2]
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
  class Bin
    attr_reader :installed
    def install(mapping); @installed = mapping; end
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
  def bin; @bin ||= Bin.new; end
  def odie(message); abort(message); end
end
load ARGV[0]
formula = Agentbox.new
formula.install if Agentbox.fields.key?(:url)
require "json"
puts JSON.generate(Agentbox.fields.merge(installed: formula.bin.installed))
"""


def _brew_eval(tmp_path: Path, formula: Path, os_name: str, cpu: str) -> dict:
    stub = tmp_path / "brew_stub.rb"
    stub.write_text(_BREW_STUB)
    result = subprocess.run(
        [_ruby(), str(stub), str(formula), os_name, cpu],
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
        assert fields["installed"] == {artifacts.artifact_name(target): "agentbox"}


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
