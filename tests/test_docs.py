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


def _rules(makefile: str) -> dict[str, tuple[list[str], list[str]]]:
    """target -> (prerequisites, recipe lines) for every rule of the Makefile."""
    rules: dict[str, tuple[list[str], list[str]]] = {}
    current: list[str] = []
    for line in makefile.splitlines():
        if line.startswith("\t"):
            current.append(line.strip())
        elif ":" in line and not line.startswith((".", "#")) and "=" not in line:
            target, prerequisites = line.split(":", 1)
            current = []
            rules[target.strip()] = (prerequisites.replace("|", " ").split(), current)
    return rules


def make_targets_table() -> str:
    """The README's Development table, rendered from the Makefile's rules: a phony target
    that only names a file target shows that file's recipe."""
    makefile = (ROOT / "Makefile").read_text()
    rules = _rules(makefile)
    phony = makefile.split(".PHONY:", 1)[1].splitlines()[0].split()
    names = {target: target for target in phony}
    for target in phony:  # `setup: $(VENV)/.installed-run`: the file is made by `make setup`
        prerequisites, recipe = rules[target]
        if not recipe and len(prerequisites) == 1 and prerequisites[0] in rules:
            names[prerequisites[0]] = target
    words = {
        "$(VENV_PYTHON)": "python",
        "$(GUEST)": "agentbox/guest/sandbox.wasm",
        "$(VENV)": ".venv",
        "$(PYTHON)": "python3",
    }
    rows = ["| make target | runs |", "| --- | --- |"]
    for target in phony:
        prerequisites, recipe = rules[target]
        if not recipe and len(prerequisites) == 1 and prerequisites[0] in rules:
            prerequisites, recipe = rules[prerequisites[0]]
        cells = []
        after = [names[name] for name in prerequisites if name in names and names[name] != target]
        if after:
            cells.append("after " + ", ".join(f"`make {name}`" for name in after))
        for line in recipe:
            if line == "touch $@":  # the stamp that makes a setup run once
                continue
            for word, value in words.items():
                line = line.replace(word, value)
            cells.append(f"`{line}`")
        rows.append(f"| `make {target}` | {'; '.join(cells)} |")
    return "\n".join(rows)


def test_readme_make_targets_table_matches_the_makefile() -> None:
    readme = (ROOT / "README.md").read_text()
    assert _between(readme, "make-targets") == make_targets_table()
