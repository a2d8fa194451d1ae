"""Docs that cannot drift: docs/cli.md and README.md's tables are rendered by
packaging/render_docs.py (`make docs`) from the code that defines them; these tests fail, naming
that command, when a file differs from what it renders now."""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

from agentbox import exit_codes
from agentbox._version import DISTRIBUTION
from agentbox.cli import COMMANDS

ROOT = Path(__file__).resolve().parent.parent


def _load_renderer() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "render_docs", ROOT / "packaging" / "render_docs.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render_docs = _load_renderer()


def test_readme_exit_code_table_matches_the_module() -> None:
    readme = (ROOT / "README.md").read_text()
    assert render_docs.between(readme, "exit-codes") == exit_codes.markdown_table(), (
        f"README.md's exit-code table differs from agentbox/exit_codes.py: run `{render_docs.COMMAND}`"
    )


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


def test_readme_make_targets_table_matches_the_makefile() -> None:
    readme = (ROOT / "README.md").read_text()
    assert render_docs.between(readme, "make-targets") == render_docs.make_targets_table(), (
        f"README.md's make table differs from the Makefile: run `{render_docs.COMMAND}`"
    )


def test_cli_reference_is_what_the_cli_prints_now() -> None:
    assert (ROOT / "docs" / "cli.md").read_text() == render_docs.render_cli(), (
        f"docs/cli.md differs from the commands' --help: run `{render_docs.COMMAND}`"
    )


def test_cli_reference_covers_every_command_and_subcommand() -> None:
    paths = set(render_docs.command_helps())
    assert {f"agentbox {name}" for name in COMMANDS} <= paths
    assert {"agentbox", "agentbox cache dir", "agentbox cache clear"} <= paths


@pytest.mark.parametrize("path", sorted(render_docs.command_helps()))
def test_cli_reference_text_is_the_real_help_output(path: str) -> None:
    """What the renderer writes is byte for byte what the installed command prints (the
    script, not `python -m agentbox`, whose usage line says `python -m agentbox`)."""
    script = shutil.which("agentbox", path=str(Path(sys.executable).parent))
    assert script, f"no agentbox script beside {sys.executable}: install the package (make setup)"
    completed = subprocess.run(
        [script, *path.split()[1:], "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "80"},
        check=True,
    )
    assert completed.stdout == render_docs.command_helps()[path] + "\n"


def test_readme_links_the_cli_reference() -> None:
    assert "(docs/cli.md)" in (ROOT / "README.md").read_text()


def test_render_check_mode_names_the_command_when_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`render_docs.py --check` writes nothing and exits 1 naming `make docs` for a stale file;
    without --check it rewrites the file, after which --check passes."""
    (tmp_path / "docs").mkdir()
    stale = tmp_path / "docs" / "cli.md"
    stale.write_text("# an old reference\n")
    readme = tmp_path / "README.md"
    readme.write_text((ROOT / "README.md").read_text())
    monkeypatch.setattr(render_docs, "ROOT", tmp_path)
    monkeypatch.setattr(render_docs, "CLI_DOC", stale)
    monkeypatch.setattr(render_docs, "README", readme)
    assert render_docs.main(["--check"]) == 1
    assert capsys.readouterr().out == "docs/cli.md: differs, run `make docs`\n"
    assert stale.read_text() == "# an old reference\n"
    assert render_docs.main([]) == 0
    assert stale.read_text() == render_docs.render_cli()
    assert render_docs.main(["--check"]) == 0


def _anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a file's headings."""
    headings = re.findall(r"^#+\s+(.+?)\s*$", re.sub(r"```.*?```", "", markdown, flags=re.S), re.M)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_relative_links_in_the_docs_resolve() -> None:
    """Every link from README.md and docs/*.md to a file of this repository (and to a heading
    of a Markdown file) points at something that exists."""
    broken = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text()):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto: ...
            path_part, _, anchor = target.partition("#")
            path = (doc.parent / path_part).resolve() if path_part else doc
            if not path.exists():
                broken.append(f"{doc.relative_to(ROOT)}: {target}")
            elif anchor and path.suffix == ".md" and anchor not in _anchors(path.read_text()):
                broken.append(f"{doc.relative_to(ROOT)}: {target} (no such heading)")
    assert broken == []
