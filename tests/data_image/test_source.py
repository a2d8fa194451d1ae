"""The wheel's contents are read with suspicion: manifest parsing and matplotlib's data archive
(a zip inside the stdlib zip), whose members must not leave their folder."""

import io
import zipfile
from pathlib import Path

import pytest

from agentbox.engines.wasm.data_image import source
from agentbox.errors import ImageError


def _stdlib_zip(path: Path, members: dict[str, bytes]) -> Path:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with zipfile.ZipFile(path, "w") as outer:
        outer.writestr(source.MPL_DATA_MEMBER, inner.getvalue())
    return path


def test_matplotlibs_data_is_extracted(tmp_path: Path) -> None:
    """Positive control for the refusals below."""
    stdlib = _stdlib_zip(
        tmp_path / "python315.zip", {"matplotlibrc": b"backend: Agg\n", "fonts/ttf/a.ttf": b"x"}
    )
    source._extract_mpl_data(stdlib, tmp_path / "mpl-data")
    assert (tmp_path / "mpl-data" / "matplotlibrc").read_bytes() == b"backend: Agg\n"
    assert (tmp_path / "mpl-data" / "fonts" / "ttf" / "a.ttf").read_bytes() == b"x"


@pytest.mark.parametrize("member", ["../evil", "fonts/../../evil", "/abs/evil", "c:evil"])
def test_a_member_leaving_the_data_folder_is_refused(tmp_path: Path, member: str) -> None:
    """Attack: a crafted archive cannot write outside matplotlib's data folder, and nothing of
    it is left behind."""
    stdlib = _stdlib_zip(tmp_path / "python315.zip", {"ok": b"1", member: b"pwned"})
    with pytest.raises(ImageError, match="matplotlib's data holds the member"):
        source._extract_mpl_data(stdlib, tmp_path / "mpl-data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["python315.zip"]
    assert not (tmp_path.parent / "evil").exists()


def test_manifest_versions() -> None:
    text = "python 3.15.0\npackage numpy 2.5.2\npackage pandas 3.0.6\npin abc numpy.tar.gz\n"
    assert source.parse_manifest(text) == {
        "python": "3.15.0",
        "numpy": "2.5.2",
        "pandas": "3.0.6",
    }
    with pytest.raises(ImageError, match="names no Python version"):
        source.parse_manifest("package numpy 2.5.2\n")


def test_a_missing_wheel_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="no such wheel"):
        source.verify_wheel(tmp_path / source.WHEEL_NAME)
