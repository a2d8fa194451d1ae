"""Docs that cannot drift: tables rendered from the modules that define them."""

from pathlib import Path

from agentbox import exit_codes

ROOT = Path(__file__).resolve().parent.parent


def _between(text: str, marker: str) -> str:
    start = text.index(f"<!-- {marker}:start -->") + len(f"<!-- {marker}:start -->")
    return text[start : text.index(f"<!-- {marker}:end -->")].strip()


def test_readme_exit_code_table_matches_the_module() -> None:
    readme = (ROOT / "README.md").read_text()
    assert _between(readme, "exit-codes") == exit_codes.markdown_table()
