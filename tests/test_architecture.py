"""The package layout is the architecture (docs/architecture.md): each layer imports only the
layers below it, nothing below the CLI imports Click, and no two modules import each other.

Imports are read from the source with `ast`, including lazy imports inside functions; imports
under `if TYPE_CHECKING:` are annotations only and are not counted.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "agentbox"

# Lowest first. A module may import its own layer and any layer listed before it.
LAYERS = ("foundation", "skills", "engines", "core", "batch", "server", "cli")

FOUNDATION = {
    "agentbox.native_folders",
    "agentbox._frozen",
    "agentbox._version",
    "agentbox.errors",
    "agentbox.exit_codes",
    "agentbox.input_files",
    "agentbox.limits",
    "agentbox.log",
    "agentbox.mounts",
    "agentbox.output",
    "agentbox.output_files",
    "agentbox.result",
}
CORE = {"agentbox", "agentbox.config", "agentbox.sandbox", "agentbox.session", "agentbox.streaming"}


def layer_of(module: str) -> str:
    if module in FOUNDATION:
        return "foundation"
    if module in CORE:
        return "core"
    if module == "agentbox.__main__" or module.startswith("agentbox._pyinstaller"):
        return "cli"  # `python -m agentbox`, and the frozen binary's packaging glue
    prefix = module.split(".")[1]
    layer = {
        "skills": "skills",
        "engines": "engines",
        "batch": "batch",
        "server": "server",
        "cli": "cli",
    }.get(prefix)
    if layer is None:
        raise AssertionError(f"{module} belongs to no layer: add it to tests/test_architecture.py")
    return layer


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING",)


def imports_of(path: Path) -> tuple[set[str], set[str]]:
    """(every module imported anywhere, those imported at module level), TYPE_CHECKING excluded."""
    tree = ast.parse(path.read_text(), filename=str(path))
    everywhere: set[str] = set()
    top_level: set[str] = set()

    def visit(node: ast.AST, at_top: bool) -> None:
        if _is_type_checking_block(node):
            return
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            assert not node.level, f"{path}: use absolute imports (the layer check reads them)"
            # `from agentbox.x import y` imports the submodule `agentbox.x.y` if there is one.
            submodules = [f"{base}.{alias.name}" for alias in node.names]
            names = [name for name in submodules if name in MODULES] or [base]
        for name in names:
            everywhere.add(name)
            if at_top:
                top_level.add(name)
        inner_top = at_top and not isinstance(
            node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
        )
        for child in ast.iter_child_nodes(node):
            visit(child, inner_top)

    visit(tree, True)
    return everywhere, top_level


def internal(names: set[str]) -> set[str]:
    """The agentbox modules among `names` (dropping `from m import function` spellings)."""
    return {name for name in names if name in MODULES}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_imports_only_its_own_and_lower_layers(module: str) -> None:
    everywhere, _ = imports_of(MODULES[module])
    rank = LAYERS.index(layer_of(module))
    upward = sorted(name for name in internal(everywhere) if LAYERS.index(layer_of(name)) > rank)
    assert upward == [], f"{module} ({layer_of(module)}) imports a higher layer: {upward}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if layer_of(m) != "cli"))
def test_nothing_below_the_cli_imports_click(module: str) -> None:
    everywhere, _ = imports_of(MODULES[module])
    assert not {name for name in everywhere if name.split(".")[0] == "click"}, module


def test_only_the_ray_pool_imports_ray() -> None:
    """Ray is an optional extra: one module imports it, and only `--ray` imports that module."""
    importers = sorted(
        module
        for module, path in MODULES.items()
        if any(name.split(".")[0] == "ray" for name in imports_of(path)[0])
    )
    assert importers == ["agentbox.batch.ray_pool"]
    _, top_level = imports_of(MODULES["agentbox.batch.api"])
    assert "agentbox.batch.ray_pool" not in top_level


def test_no_import_cycles_at_module_level() -> None:
    graph = {module: internal(imports_of(path)[1]) - {module} for module, path in MODULES.items()}
    # A package's __init__ is imported by its submodules' imports; that edge is not a cycle.
    for module, targets in graph.items():
        graph[module] = {t for t in targets if not module.startswith(f"{t}.")}
    visiting: list[str] = []
    done: set[str] = set()

    def walk(module: str) -> None:
        if module in done:
            return
        assert module not in visiting, f"import cycle: {' -> '.join([*visiting, module])}"
        visiting.append(module)
        for target in sorted(graph[module]):
            walk(target)
        visiting.pop()
        done.add(module)

    for module in sorted(graph):
        walk(module)


def test_the_checks_see_a_forbidden_import(tmp_path: Path) -> None:
    """Positive control: the parser finds an upward import inside a function and Click."""
    source = tmp_path / "probe.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from agentbox.cli import run\n"
        "def f():\n    from agentbox.server import sessions\n    import click\n"
    )
    everywhere, top_level = imports_of(source)
    assert "agentbox.server.sessions" in everywhere and "click" in everywhere
    assert "agentbox.cli.run" not in everywhere
    assert not {name for name in top_level if name.startswith("agentbox")}
