"""The Grafana dashboards as data, for tests: every panel, every query with its variables filled in.

`dashboard_queries(tenant=..., team=...)` is meant for a test that runs the stack and evaluates
each dashboard query against a real Prometheus.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.deploy.promql import ROOT, substitute

DASHBOARD_DIR = ROOT / "grafana" / "dashboards"
PROVISIONING_DIR = ROOT / "grafana" / "provisioning"
DATASOURCE_FILE = PROVISIONING_DIR / "datasources" / "prometheus.yaml"
PROVIDER_FILE = PROVISIONING_DIR / "dashboards" / "puzzel-monitor.yaml"

_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(?P<selector>.+),\s*)?(?P<label>\w+)\s*\)\s*$")


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARD_DIR.glob("*.json"))


def load_dashboards() -> dict[str, dict[str, Any]]:
    """File name -> parsed dashboard JSON."""
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in dashboard_files()}


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def variables(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = dashboard.get("templating", {}).get("list", [])
    return result


def variable_query(variable: dict[str, Any]) -> str:
    """The query string of a query variable (Grafana stores a string or an object)."""
    query = variable.get("query")
    if isinstance(query, dict):
        return str(query.get("query", ""))
    return str(query or "")


def label_values_selector(query: str) -> tuple[str | None, str]:
    """`label_values(selector, label)` -> (selector or None, label). Raises ValueError otherwise."""
    m = _LABEL_VALUES.match(query)
    if m is None:
        raise ValueError(f"expected label_values([selector, ]label), got {query!r}")
    return m.group("selector"), m.group("label")


def variable_values(
    dashboard: dict[str, Any], tenant: str = ".*", team: str = ".*", **others: str
) -> dict[str, str]:
    """A value for each of the dashboard's variables: `tenant`, `team` and `others` as given
    (regexes, as the queries use `=~`), a custom variable its default, any other query variable
    `.*`, the data source its uid."""
    values: dict[str, str] = {}
    for var in variables(dashboard):
        name = var["name"]
        if var["type"] == "datasource":
            values[name] = str(var.get("current", {}).get("value", ""))
        elif name == "tenant":
            values[name] = tenant
        elif name == "team":
            values[name] = team
        elif var["type"] == "custom" and name not in others:
            values[name] = str(var.get("current", {}).get("value", ""))  # e.g. a top-N count
        else:
            values[name] = others.get(name, ".*")
    return values


def dashboard_queries(tenant: str = ".*", team: str = ".*", **others: str) -> list[tuple[str, str]]:
    """(`"<dashboard uid>/<panel title>[/<refId>]"`, PromQL with every variable substituted) for
    every query of every panel of every dashboard. `tenant`/`team`/`others` are regexes.

    Grafana's own variables get fixed stand-ins ($__range = 1h, $__rate_interval = 1m, ...).
    """
    out: list[tuple[str, str]] = []
    for dashboard in load_dashboards().values():
        values = variable_values(dashboard, tenant, team, **others)
        for panel in panels(dashboard):
            targets = [t for t in panel.get("targets", []) if t.get("expr")]
            for target in targets:
                name = f"{dashboard['uid']}/{panel['title']}"
                if len(targets) > 1:
                    name += f"/{target['refId']}"
                out.append((name, substitute(target["expr"], values)))
    return out
