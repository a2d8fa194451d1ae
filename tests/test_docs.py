"""Docs that cannot drift: tables rendered from the modules that define them."""

import re
import tomllib
from pathlib import Path

from agentbox import exit_codes
from agentbox._version import DISTRIBUTION

ROOT = Path(__file__).resolve().parent.parent


def _between(text: str, marker: str) -> str:
    start = text.index(f"<!-- {marker}:start -->") + len(f"<!-- {marker}:start -->")
    return text[start : text.index(f"<!-- {marker}:end -->")].strip()


def test_readme_exit_code_table_matches_the_module() -> None:
    readme = (ROOT / "README.md").read_text()
    assert _between(readme, "exit-codes") == exit_codes.markdown_table()


# `pip install agentbox` (bare, or with extras) installs an unrelated project of that name.
WRONG_PACKAGE = re.compile(r"""pip install\s+(-\S+\s+)*['"]?agentbox(?![-\w])""")


def _user_facing_files() -> list[Path]:
    folders = ("agentbox", "docs", "examples", "installers", "packaging", "guest")
    files = [ROOT / "README.md", ROOT / "Makefile"]
    for folder in folders:
        files += [
            path
            for path in (ROOT / folder).rglob("*")
            if path.suffix in (".py", ".md", ".rb", ".yaml", ".json", ".toml", ".txt")
            and "wit_world" not in path.parts
        ]
    return files


def test_no_doc_or_message_says_pip_install_agentbox() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for path in _user_facing_files()
        for match in WRONG_PACKAGE.finditer(path.read_text(errors="replace"))
    ]
    assert offenders == []


def test_the_wrong_package_pattern_catches_each_spelling() -> None:
    for wrong in (
        "pip install agentbox",
        "pip install 'agentbox[mcp]'",
        'pip install -U "agentbox"',
    ):
        assert WRONG_PACKAGE.search(wrong), wrong
    for right in ("pip install agentbox-wasm", "pip install 'agentbox-wasm[mcp]'"):
        assert not WRONG_PACKAGE.search(right), right


def test_pyproject_names_the_distribution_the_messages_use() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == DISTRIBUTION == "agentbox-wasm"
    assert {"Homepage", "Source", "Issues"} <= set(project["urls"])
