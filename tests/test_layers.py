"""The package imports only downwards, along the data path (docs/architecture.md).

Each package of `monitor` sits on a layer; a module may import from its own package and from
packages on lower layers, never from a higher one. `core` imports nothing else of `monitor`,
and the engine nothing that does I/O.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "monitor"

# lowest first; the top-level entry points (`cli`, `__main__`) may import anything
LAYERS = (
    "core",
    "puzzel",
    "engine",
    "rules",
    "schedules",
    "ingest",
    "pipeline",
    "alerts",
    "history",
    "http",
    "app",
    "simulator",
    "demo",
)
TOP = {"cli", "__main__", "__init__"}
IO_MODULES = {"aiohttp", "redis", "asyncio", "socket", "os", "pathlib", "yaml", "open"}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _package_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path: Path) -> list[str]:
    out: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.append(node.module)
        elif isinstance(node, ast.Import):
            out.extend(a.name for a in node.names)
    return out


def test_every_package_has_a_layer() -> None:
    """No module lives outside the layers but the entry points."""
    packages = {_package_of(p) for p in _modules()}
    assert packages - TOP <= set(LAYERS), sorted(packages - TOP - set(LAYERS))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_only_from_its_layer_or_below(path: Path) -> None:
    """A module imports from its own package or lower layers only."""
    own = _package_of(path)
    if own in TOP:
        return
    above = _above(path, own)
    assert not above, f"{path.relative_to(PACKAGE)} imports from a higher layer: {above}"


def _above(path: Path, own: str) -> list[str]:
    rank = LAYERS.index(own)
    return [
        m
        for m in _imports(path)
        if m.startswith("monitor.")
        and m.split(".")[1] in LAYERS
        and LAYERS.index(m.split(".")[1]) > rank
    ]


@pytest.mark.parametrize("path", sorted((PACKAGE / "engine").glob("*.py")), ids=lambda p: p.name)
def test_the_engine_does_no_io(path: Path) -> None:
    """The engine imports nothing that does I/O."""
    roots = {m.split(".")[0] for m in _imports(path)}
    assert not roots & IO_MODULES, (path.name, sorted(roots & IO_MODULES))


def test_layer_check_catches_an_upward_import(tmp_path: Path) -> None:
    """The check itself: an import from a higher layer is found."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from monitor.core.states import AgentState\nfrom monitor.app.config import Config\n",
        encoding="utf-8",
    )
    assert _above(bad, "ingest") == ["monitor.app.config"]
    assert _above(bad, "app") == []
