"""PromQL helpers for the deployment tests: Grafana variable stand-ins, metric names referenced by
an expression, and the metric names the project defines (docs/metrics.md, recording rules)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import promql_parser
import yaml

ROOT = Path(__file__).resolve().parents[2]
METRICS_DOC = ROOT / "docs" / "metrics.md"
PROMETHEUS_RULES_DIR = ROOT / "rules" / "prometheus"

# Prometheus' own series that the project's queries may use
BUILTIN_METRICS = frozenset({"up"})
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

# Grafana's global variables, with stand-ins that keep the query valid PromQL
GRAFANA_GLOBALS: Mapping[str, str] = {
    "__range_ms": "3600000",
    "__range_s": "3600",
    "__range": "1h",
    "__rate_interval": "1m",
    "__interval_ms": "15000",
    "__interval": "15s",
}
# a variable name starts with a letter or `_`: `$1` is label_replace's capture group, which
# Grafana leaves alone (it names no variable) and Prometheus expands
_VARIABLE = re.compile(r"\$\{([A-Za-z_]\w*)(?::\w+)?\}|\$([A-Za-z_]\w*)|\[\[([A-Za-z_]\w*)\]\]")


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """Replace Grafana variables (`$x`, `${x}`, `${x:fmt}`, `[[x]]`) by `values`, globals included.

    Raises KeyError naming a variable that has no value, so an undefined one cannot slip through.
    """
    merged = {**GRAFANA_GLOBALS, **values}

    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        if name not in merged:
            raise KeyError(f"no value for Grafana variable ${name} in {expr!r}")
        return merged[name]

    return _VARIABLE.sub(repl, expr)


def selectors(node: Any) -> Iterator[tuple[Any, tuple[Any, ...]]]:
    """Every vector selector in a parsed expression, with its ancestors (outermost first)."""
    yield from _selectors(node, ())


def _selectors(node: Any, parents: tuple[Any, ...]) -> Iterator[tuple[Any, tuple[Any, ...]]]:
    if isinstance(node, promql_parser.VectorSelector):
        yield node, parents
        return
    here = (*parents, node)
    if isinstance(node, promql_parser.MatrixSelector):
        yield from _selectors(node.vector_selector, here)
    elif isinstance(node, promql_parser.Call):
        for arg in node.args:
            yield from _selectors(arg, here)
    elif isinstance(node, promql_parser.BinaryExpr):
        yield from _selectors(node.lhs, here)
        yield from _selectors(node.rhs, here)
    elif isinstance(
        node,
        promql_parser.AggregateExpr
        | promql_parser.ParenExpr
        | promql_parser.UnaryExpr
        | promql_parser.SubqueryExpr,
    ):
        yield from _selectors(node.expr, here)
        param = getattr(node, "param", None)
        if param is not None:
            yield from _selectors(param, here)


def selector_name(selector: Any) -> str | None:
    """The metric name of a selector: `foo{...}` or `{__name__="foo"}` (None when it has none)."""
    if selector.name:
        return str(selector.name)
    for m in selector.matchers.matchers:
        if m.name == "__name__" and str(m.op) == "MatchOp.Equal":
            return str(m.value)
    return None


def metric_names(expr: str) -> set[str]:
    """The metric names an expression reads (raises ValueError if it is not valid PromQL)."""
    names: set[str] = set()
    for sel, _ in selectors(promql_parser.parse(expr)):
        name = selector_name(sel)
        if name is None:
            raise ValueError(f"selector without a metric name in {expr!r}")
        names.add(name)
    return names


def base_name(name: str) -> str:
    """A histogram's series name without `_bucket`/`_sum`/`_count`."""
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def documented_metrics() -> dict[str, str]:
    """Metric name -> type, from the table in docs/metrics.md."""
    out: dict[str, str] = {}
    for line in METRICS_DOC.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\|\s*`(puzzelmon_\w+)`\s*\|\s*(\w+)\s*\|", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def documented_labels() -> dict[str, set[str]]:
    """Metric name -> its label names, from the table in docs/metrics.md (`agent_id*` counts)."""
    out: dict[str, set[str]] = {}
    for line in METRICS_DOC.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\|\s*`(puzzelmon_\w+)`\s*\|[^|]*\|([^|]*)\|", line)
        if m:
            out[m.group(1)] = set(re.findall(r"[a-z_]+", m.group(2)))
    return out


def unknown_matcher_labels(expr: str) -> set[str]:
    """`metric{label}` pairs whose label the exported metric does not have (per docs/metrics.md)."""
    labels = documented_labels()
    bad: set[str] = set()
    for sel, _ in selectors(promql_parser.parse(expr)):
        name = selector_name(sel) or ""
        known = labels.get(name) or labels.get(base_name(name))
        if known is None:
            continue  # recording rules and Prometheus' own series
        if name.endswith("_bucket"):
            known = {*known, "le"}
        bad.update(
            f"{name}{{{m.name}}}"
            for m in sel.matchers.matchers
            if m.name != "__name__" and m.name not in known
        )
    return bad


def rule_files() -> list[Path]:
    """The Prometheus rule files (not the promtool test files)."""
    return sorted(PROMETHEUS_RULES_DIR.glob("*.yaml"))


def prometheus_rules() -> list[dict[str, Any]]:
    """Every rule (recording and alerting) in rules/prometheus/*.yaml."""
    rules: list[dict[str, Any]] = []
    for path in rule_files():
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            rules.extend(group["rules"])
    return rules


def recorded_metrics() -> set[str]:
    return {r["record"] for r in prometheus_rules() if "record" in r}


def known_metric(name: str) -> bool:
    """True if `name` is exported by the monitor, recorded by a rule, or Prometheus' own."""
    if name in BUILTIN_METRICS or name in recorded_metrics():
        return True
    docs = documented_metrics()
    return name in docs or (base_name(name) in docs and docs[base_name(name)] == "histogram")


PROMTOOL = shutil.which("promtool")


def promtool_eval(
    tmp_path: Path, series: Iterable[tuple[str, str]], tests: list[dict[str, Any]]
) -> subprocess.CompletedProcess[str]:
    """`promtool test rules` of PromQL expression tests over `series` (name{labels}, values),
    sampled every minute."""
    doc = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in series],
                "promql_expr_test": tests,
            }
        ],
    }
    path = tmp_path / "promql_test.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert PROMTOOL is not None
    command = [PROMTOOL, "test", "rules", str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
