"""Engine lookup, the `auto` fallback, and the guarantees table in docs/engines.md."""

import builtins
import warnings
from pathlib import Path
from typing import Any

import pytest

from agentbox.engines import registry
from agentbox.engines.asteval_engine import AstevalEngine
from agentbox.engines.restricted import RestrictedEngine
from agentbox.errors import UsageError

DOCS = Path(__file__).resolve().parents[2] / "docs" / "engines.md"


def _between(text: str, marker: str) -> str:
    start = text.index(f"<!-- {marker}:start -->") + len(f"<!-- {marker}:start -->")
    return text[start : text.index(f"<!-- {marker}:end -->")].strip()


def test_docs_table_matches_the_module() -> None:
    text = DOCS.read_text()
    assert _between(text, "engine-guarantees") == registry.markdown_table()


def test_table_covers_every_guarantee_for_every_engine() -> None:
    names = [row[0] for row in registry.GUARANTEES]
    for guarantee in ("network", "files", "env", "processes", "timeout", "memory", "fuel"):
        assert guarantee in names
    assert "output cap" in names and "skills" in names
    assert all(len(row) == 4 and all(row) for row in registry.GUARANTEES)


@pytest.mark.parametrize(
    ("name", "engine_type"),
    [("restricted", RestrictedEngine), ("asteval", AstevalEngine)],
    ids=["restricted", "asteval"],
)
def test_fallbacks_by_name(name: str, engine_type: type) -> None:
    engine = registry.get_engine(name)
    assert isinstance(engine, engine_type) and engine.name == name


def test_wasm_and_auto_pick_wasm_when_wasmtime_loads() -> None:
    from agentbox.engines.wasm.engine import WasmEngine

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert isinstance(registry.get_engine("wasm"), WasmEngine)
        assert isinstance(registry.get_engine("auto"), WasmEngine)


def test_auto_falls_back_with_exactly_one_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_wasm(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "agentbox.engines.wasm.engine" or name.startswith("wasmtime"):
            raise ImportError("no wasmtime here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_wasm)
    engine, line = registry.resolve_engine("auto")
    assert isinstance(engine, RestrictedEngine)
    assert line == registry.FALLBACK_WARNING and "\n" not in line
    with pytest.warns(registry.FallbackWarning) as caught:
        registry.get_engine("auto")
    assert len(caught) == 1


def test_unknown_engine_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown engine"):
        registry.get_engine("docker")
    assert registry.ENGINES == ("wasm", "restricted", "asteval", "auto")
