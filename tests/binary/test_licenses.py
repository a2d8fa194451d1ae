"""The license lists: what makes the binary build fail, and what the package's list says.

These run the real inventory of packaging/licenses.py (the one build_binary.py runs on
PyInstaller's analysis) on real files; they need no binary, so they run in `make test`. The
built binary's own list is checked by packaging/smoke.py (check_licenses,
check_runtime_dependencies_only) through tests/binary/test_binary.py.
"""

import json as stdlib_json
import platform
import sys
from importlib.metadata import version
from pathlib import Path

import click
import pytest
import yaml  # the test group installs PyYAML: exactly the kind of package that must not leak
from click.testing import CliRunner

PACKAGING = Path(__file__).resolve().parents[2] / "packaging"
sys.path.insert(0, str(PACKAGING))

import licenses  # noqa: E402

from agentbox._pyinstaller import EXCLUDED_MODULES, LAZY_EXTENSIONS, guest_files  # noqa: E402
from agentbox.cli import cli  # noqa: E402


def test_a_collected_file_without_a_license_text_fails_the_build_naming_it(
    tmp_path: Path,
) -> None:
    library = tmp_path / "vendor" / "libnowhere.so.1"
    library.parent.mkdir()
    library.write_bytes(b"\x7fELF not from any package")
    toc = [("libnowhere.so.1", str(library), "BINARY")]
    with pytest.raises(licenses.LicenseError) as raised:
        licenses.binary_licenses(toc, {}, "agentbox-test", tmp_path / "build")
    message = str(raised.value)
    assert f"libnowhere.so.1: {library} has no license text" in message, message


def test_a_dev_only_package_fails_the_build_naming_it(tmp_path: Path) -> None:
    """PyYAML (test group) is importable here but is no runtime dependency of agentbox."""
    toc = [("yaml", yaml.__file__, "PYMODULE")]
    with pytest.raises(licenses.LicenseError) as raised:
        licenses.binary_licenses(toc, {}, "agentbox-test", tmp_path)
    assert "yaml: PyYAML is not a runtime dependency of agentbox-wasm" in str(raised.value)


def test_the_imports_that_pulled_dev_packages_in_are_excluded() -> None:
    """uvicorn.config's optional yaml import and httpx2's command-line client (pygments, rich)
    brought PyYAML and Pygments from the dev environment into the binary."""
    assert {"yaml", "httpx2._main"} <= set(EXCLUDED_MODULES)
    assert not [name for name in LAZY_EXTENSIONS if name.startswith(("yaml", "pygments"))]


def test_collected_files_are_traced_to_their_owners(tmp_path: Path) -> None:
    """A distribution's module, a standard library module and the guest: each under its own
    section, the guest's CPython with the version the guest carries."""
    wasm = guest_files()[0]
    toc = [
        ("click", click.__file__, "PYMODULE"),
        ("json", stdlib_json.__file__, "PYMODULE"),
        ("agentbox/guest/sandbox.wasm", str(wasm), "DATA"),
    ]
    text = licenses.binary_licenses(toc, {}, "agentbox-test", tmp_path)
    guest = licenses.guest_python_version(wasm)
    titles = [line for line in text.splitlines() if line.startswith(("click ", "CPython "))]
    assert titles == [
        f"CPython {platform.python_version()} (the host interpreter: libpython, the standard "
        "library and its extension modules)",
        f"click {version('click')}",
        f"CPython {guest} for WASI (the guest's Python)",
    ]
    assert guest.startswith("3.14."), guest


def test_the_package_list_names_the_guests_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`agentbox licenses` from the Python package: the guest's runtime and CPython 3.14 (with
    no data image installed: its licenses would follow, see tests/data_image)."""
    monkeypatch.setenv("AGENTBOX_DATA_DIR", str(tmp_path / "no-images"))
    result = CliRunner().invoke(cli, ["licenses"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    guest = licenses.guest_python_version(guest_files()[0])
    assert f"\nCPython {guest} for WASI (the guest's Python)\nLicense: PSF-2.0\n" in result.output
    assert "\ncomponentize-py 0.25.1 (the guest's runtime)\n" in result.output
    assert result.output == licenses.package_licenses()
