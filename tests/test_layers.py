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
    "mcp",
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


def _module_graph() -> dict[str, set[str]]:
    names = {
        ".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): p
        for p in _modules()
    }
    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    targets.add(full if full in names else node.module)
        graph[name] = {t for t in targets if t in names and t != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Modules that import each other, directly or through others (lazy imports included)."""
    found: list[list[str]] = []
    for start in sorted(graph):
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph[node]):
                if nxt == start:
                    found.append(path)
                elif nxt not in seen and nxt > start:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
    return found


def test_no_import_circles() -> None:
    """No module reaches itself through imports, not even through a lazy or type-only one."""
    assert _cycles(_module_graph()) == []


def test_the_circle_check_finds_a_circle() -> None:
    """The check itself: a two-module and a three-module circle are found."""
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c"]]


def test_layer_check_catches_an_upward_import(tmp_path: Path) -> None:
    """The check itself: an import from a higher layer is found."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from monitor.core.states import AgentState\nfrom monitor.app.config import Config\n",
        encoding="utf-8",
    )
    assert _above(bad, "ingest") == ["monitor.app.config"]
    assert _above(bad, "app") == []
