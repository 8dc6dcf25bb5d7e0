"""Static checks of the Grafana dashboards and their provisioning (what grafana/dashboard-linter
would check, plus PromQL validity and metric names against docs/metrics.md)."""

from __future__ import annotations

import re
from typing import Any

import promql_parser
import pytest
import yaml

from tests.deploy.dashboards import (
    DATASOURCE_FILE,
    PROVIDER_FILE,
    dashboard_queries,
    label_values_selector,
    load_dashboards,
    panels,
    variable_query,
    variable_values,
    variables,
)
from tests.deploy.promql import (
    METRICS_DOC,
    ROOT,
    base_name,
    documented_metrics,
    known_metric,
    metric_names,
    selector_name,
    selectors,
    substitute,
    unknown_matcher_labels,
)

DASHBOARDS = load_dashboards()
EXPECTED_UIDS = {"pzm-adherence", "pzm-queues", "pzm-health"}
DS_REF = {"type": "prometheus", "uid": "${datasource}"}
RANGE_FUNCTIONS = {"rate", "irate", "increase"}

QUERIES = dashboard_queries(tenant="acme", team="Support")


def _all_panels() -> list[tuple[str, dict[str, Any]]]:
    return [(d["uid"], p) for d in DASHBOARDS.values() for p in panels(d)]


PANEL_IDS = [f"{uid}/{p['title']}" for uid, p in _all_panels()]


def _datasource_uid() -> str:
    doc = yaml.safe_load(DATASOURCE_FILE.read_text(encoding="utf-8"))
    return str(doc["datasources"][0]["uid"])


def _variable_queries() -> list[tuple[str, str, str]]:
    out = []
    for d in DASHBOARDS.values():
        values = variable_values(d, "acme", "Support")
        for var in variables(d):
            if var["type"] == "query":
                out.append((d["uid"], var["name"], substitute(variable_query(var), values)))
    return out


def test_the_three_dashboards_exist_with_stable_uids() -> None:
    """The adherence, queues and health dashboards are present under their fixed uids."""
    assert {d["uid"] for d in DASHBOARDS.values()} == EXPECTED_UIDS


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_uses_the_classic_json_model(name: str) -> None:
    """Each dashboard has id null, an 8-40 character uid, a title and schemaVersion 39-41."""
    d = DASHBOARDS[name]
    assert d["id"] is None
    assert re.fullmatch(r"[a-zA-Z0-9_-]{8,40}", d["uid"])
    assert d["title"].strip()
    assert 39 <= d["schemaVersion"] <= 41
    assert "puzzel-monitor" in d["tags"]


def test_dashboard_uids_and_titles_are_unique() -> None:
    """No two dashboards share a uid or a title (Grafana would overwrite one with the other)."""
    uids = [d["uid"] for d in DASHBOARDS.values()]
    titles = [d["title"] for d in DASHBOARDS.values()]
    assert len(set(uids)) == len(uids)
    assert len(set(titles)) == len(titles)


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_panel_ids_are_unique_and_panels_fit_the_grid_without_overlap(name: str) -> None:
    """Panel ids are unique in a dashboard; panels stay inside 24 columns without overlapping."""
    ps = list(panels(DASHBOARDS[name]))
    ids = [p["id"] for p in ps]
    assert len(set(ids)) == len(ids)
    cells: dict[tuple[int, int], str] = {}
    for p in ps:
        g = p["gridPos"]
        assert min(g["x"], g["w"] - 1, g["h"] - 1) >= 0, p["title"]
        assert g["x"] + g["w"] <= 24, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = p["title"]


@pytest.mark.parametrize(("uid", "panel"), _all_panels(), ids=PANEL_IDS)
def test_every_panel_has_a_title_description_and_unit(uid: str, panel: dict[str, Any]) -> None:
    """Every panel has a title, a description and a unit in fieldConfig.defaults."""
    assert panel["title"].strip()
    assert panel.get("description", "").strip(), f"{uid}: {panel['title']} has no description"
    assert panel["fieldConfig"]["defaults"].get("unit"), f"{uid}: {panel['title']} has no unit"


@pytest.mark.parametrize(("uid", "panel"), _all_panels(), ids=PANEL_IDS)
def test_every_query_uses_the_datasource_variable(uid: str, panel: dict[str, Any]) -> None:
    """Each panel and each of its queries names the data source through ${datasource}."""
    assert panel["targets"], f"{uid}: {panel['title']} has no queries"
    assert panel["datasource"] == DS_REF
    for target in panel["targets"]:
        assert target["datasource"] == DS_REF
        assert target["expr"].strip()
    ref_ids = [t["refId"] for t in panel["targets"]]
    assert len(set(ref_ids)) == len(ref_ids)


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_datasource_variable_defaults_to_the_provisioned_uid(name: str) -> None:
    """The `datasource` variable picks a Prometheus source and defaults to the provisioned uid."""
    ds = [v for v in variables(DASHBOARDS[name]) if v["name"] == "datasource"]
    assert len(ds) == 1
    assert ds[0]["type"] == "datasource"
    assert ds[0]["query"] == "prometheus"
    assert ds[0]["current"]["value"] == _datasource_uid()


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_query_variables_read_label_values_of_puzzelmon_metrics(name: str) -> None:
    """Every dashboard has a tenant variable; query variables are label_values on puzzelmon
    metrics, through the datasource variable, with a label the metric actually has."""
    d = DASHBOARDS[name]
    names = {v["name"] for v in variables(d)}
    assert "tenant" in names
    for var in (v for v in variables(d) if v["type"] == "query"):
        assert var["datasource"] == DS_REF
        selector, label = label_values_selector(variable_query(var))
        assert selector is not None
        (metric,) = metric_names(substitute(selector, variable_values(d)))
        assert metric.startswith("puzzelmon_")
        row = next(line for line in METRICS_DOC.read_text().splitlines() if f"`{metric}`" in line)
        assert re.search(rf"\b{label}\b", row.split("|")[3]), f"{metric} has no label {label}"


def test_adherence_dashboard_filters_by_tenant_and_team() -> None:
    """The adherence dashboard offers tenant and team, and every query filters on both."""
    d = next(d for d in DASHBOARDS.values() if d["uid"] == "pzm-adherence")
    assert {"tenant", "team"} <= {v["name"] for v in variables(d)}
    for panel in panels(d):
        for target in panel["targets"]:
            assert '$tenant"' in target["expr"], panel["title"]
            assert '$team"' in target["expr"], panel["title"]


@pytest.mark.parametrize(("name", "expr"), QUERIES, ids=[q[0] for q in QUERIES])
def test_every_dashboard_query_is_valid_promql(name: str, expr: str) -> None:
    """After variable substitution, each dashboard query parses as PromQL."""
    promql_parser.parse(expr)


@pytest.mark.parametrize(("name", "expr"), QUERIES, ids=[q[0] for q in QUERIES])
def test_every_dashboard_query_reads_known_metrics(name: str, expr: str) -> None:
    """Every metric a query reads is in docs/metrics.md, a recording rule, or Prometheus' `up`."""
    unknown = {m for m in metric_names(expr) if not known_metric(m)}
    assert not unknown, f"{name}: unknown metrics {sorted(unknown)}"


@pytest.mark.parametrize(("name", "expr"), QUERIES, ids=[q[0] for q in QUERIES])
def test_every_dashboard_query_filters_on_labels_the_metric_has(name: str, expr: str) -> None:
    """Label matchers only use labels docs/metrics.md lists for that metric."""
    assert not unknown_matcher_labels(expr), name


@pytest.mark.parametrize(("name", "expr"), QUERIES, ids=[q[0] for q in QUERIES])
def test_counters_and_buckets_are_only_read_through_rate_or_increase(name: str, expr: str) -> None:
    """A counter (or histogram bucket) is never graphed raw: it sits in rate()/increase()."""
    docs = documented_metrics()
    for sel, parents in selectors(promql_parser.parse(expr)):
        metric = selector_name(sel) or ""
        kind = docs.get(base_name(metric)) if metric.endswith("_bucket") else docs.get(metric)
        if kind in ("counter", "histogram"):
            calls = [p for p in parents if isinstance(p, promql_parser.Call)]
            assert calls, f"{name}: raw {metric}"
            assert calls[-1].func.name in RANGE_FUNCTIONS, f"{name}: raw {metric}"


@pytest.mark.parametrize(
    ("uid", "var", "query"),
    _variable_queries(),
    ids=[f"{q[0]}/{q[1]}" for q in _variable_queries()],
)
def test_variable_queries_read_known_metrics(uid: str, var: str, query: str) -> None:
    """The selector in each label_values() variable query is valid PromQL on a known metric."""
    selector, _ = label_values_selector(query)
    assert selector is not None
    assert all(known_metric(m) for m in metric_names(selector))


def test_no_query_is_left_with_an_undefined_variable() -> None:
    """Every `$variable` in a query is one the dashboard defines or a Grafana global."""
    for d in DASHBOARDS.values():
        values = variable_values(d)
        for panel in panels(d):
            for target in panel["targets"]:
                substitute(target["expr"], values)  # raises KeyError on an undefined one


def test_agent_state_timeline_maps_every_state_code_in_the_metrics_doc() -> None:
    """The agent state timeline maps exactly the codes docs/metrics.md lists, with their names."""
    text = METRICS_DOC.read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if "`puzzelmon_agent_state_code`" in line)
    documented = dict(re.findall(r"(\d+) (\w+)", row))
    assert len(documented) == 9
    d = next(d for d in DASHBOARDS.values() if d["uid"] == "pzm-adherence")
    panel = next(p for p in panels(d) if "puzzelmon_agent_state_code" in p["targets"][0]["expr"])
    assert panel["type"] == "state-timeline"
    (mapping,) = panel["fieldConfig"]["defaults"]["mappings"]
    texts = {k: v["text"] for k, v in mapping["options"].items()}
    assert set(texts) == set(documented)
    for code, state in documented.items():
        assert texts[code].replace(" ", "_").replace("-", "_") == state
        assert mapping["options"][code]["color"]


def test_scheduled_activity_timeline_maps_the_shipped_activity_list_in_order() -> None:
    """The scheduled-activity mappings name rules/activities.yaml's activities by list index,
    which is what puzzelmon_agent_scheduled_activity_code exports."""
    loader = pytest.importorskip("monitor.rules.loader", reason="rules loader not written yet")
    shipped = list(loader.load_rules(ROOT / "rules").activities)
    d = next(d for d in DASHBOARDS.values() if d["uid"] == "pzm-adherence")
    panel = next(
        p for p in panels(d) if "puzzelmon_agent_scheduled_activity_code" in p["targets"][0]["expr"]
    )
    (mapping,) = panel["fieldConfig"]["defaults"]["mappings"]
    texts = {int(k): v["text"] for k, v in mapping["options"].items()}
    assert [texts[i] for i in range(len(texts))] == shipped


def test_exceptions_table_ranks_by_duration() -> None:
    """The current-exceptions table computes time() - started and sorts longest first."""
    d = next(d for d in DASHBOARDS.values() if d["uid"] == "pzm-adherence")
    panel = next(p for p in panels(d) if p["title"].startswith("Current exceptions"))
    expr = panel["targets"][0]["expr"]
    assert expr.startswith("sort_desc(")
    assert "(time() - max by (tenant, team, agent_id, rule) " in expr
    assert "puzzelmon_exception_started_timestamp_seconds" in expr
    assert panel["fieldConfig"]["defaults"]["unit"] == "s"
    assert panel["options"]["sortBy"] == [{"displayName": "Open for", "desc": True}]


def test_service_level_panels_draw_the_target_as_a_threshold_line() -> None:
    """Service-level time series show the target as a threshold line on a 0-1 ratio axis."""
    d = next(d for d in DASHBOARDS.values() if d["uid"] == "pzm-queues")
    sl = [p for p in panels(d) if "Service level" in p["title"] and p["type"] == "timeseries"]
    assert sl
    for panel in sl:
        defaults = panel["fieldConfig"]["defaults"]
        assert defaults["unit"] == "percentunit"
        assert "line" in defaults["custom"]["thresholdsStyle"]["mode"]
        assert [s["value"] for s in defaults["thresholds"]["steps"]][1:] == [0.8]


def test_datasource_provisioning_points_at_the_compose_prometheus() -> None:
    """The provisioned data source: proxied Prometheus at http://prometheus:9090, fixed uid."""
    doc = yaml.safe_load(DATASOURCE_FILE.read_text(encoding="utf-8"))
    assert doc["apiVersion"] == 1
    (ds,) = doc["datasources"]
    assert ds["type"] == "prometheus"
    assert ds["access"] == "proxy"
    assert ds["url"] == "http://prometheus:9090"
    assert ds["isDefault"] is True
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", ds["uid"])


def test_dashboard_provider_is_a_file_provider() -> None:
    """The dashboard provider loads files from one path into one folder."""
    doc = yaml.safe_load(PROVIDER_FILE.read_text(encoding="utf-8"))
    assert doc["apiVersion"] == 1
    (provider,) = doc["providers"]
    assert provider["type"] == "file"
    assert provider["folder"]
    assert provider["options"]["path"].startswith("/")
    assert provider["options"].get("foldersFromFilesStructure") is not True


# --- issue 15: names, queue exceptions, 200 agents, unsupported endpoints -----------------------

NAME_JOIN = re.compile(
    r"\* on \(tenant, agent_id\) group_left \(name\) "
    r"max by \(tenant, agent_id, name\) \(puzzelmon_agent_info\{tenant=~\"\$tenant\"\}\)"
)


def _adherence_panel(metric: str) -> dict[str, Any]:
    d = next(d for d in DASHBOARDS.values() if d["uid"] == "pzm-adherence")
    return next(p for p in panels(d) if metric in p["targets"][0]["expr"])


@pytest.mark.parametrize(
    "metric",
    [
        "puzzelmon_agent_state_code",
        "puzzelmon_agent_scheduled_activity_code",
        "puzzelmon_agent_adherent",
    ],
)
def test_timelines_name_agents_and_show_the_top_n(metric: str) -> None:
    """Each per-agent timeline joins puzzelmon_agent_info for names (legend `name (id)`) and
    keeps the `$top` agents with the most time out of adherence over the whole range."""
    panel = _adherence_panel(metric)
    (target,) = panel["targets"]
    expr = target["expr"]
    assert NAME_JOIN.search(expr), expr
    assert target["legendFormat"] == "{{name}} ({{agent_id}})"
    assert "and on (tenant, agent_id) topk($top, " in expr
    # fixed at the range's end, so the same agents are kept across the whole timeline
    assert expr.count("[$__range] @ end())") == 2
    promql_parser.parse(substitute(expr, {"tenant": "a", "team": "b", "top": "20"}))


def test_the_top_variable_keeps_200_agents_readable() -> None:
    """`top` is a custom variable defaulting to a readable number of rows, with a choice large
    enough for every agent of a 200-agent centre."""
    d = next(d for d in DASHBOARDS.values() if d["uid"] == "pzm-adherence")
    (top,) = (v for v in variables(d) if v["name"] == "top")
    assert top["type"] == "custom"
    choices = [int(x) for x in top["query"].split(",")]
    assert int(top["current"]["value"]) <= 25
    assert max(choices) >= 200
    assert [o["value"] for o in top["options"]] == [str(c) for c in choices]


def test_per_agent_table_shows_names() -> None:
    """Both queries of the per-agent adherence table carry the name label, shown as Agent."""
    d = next(d for d in DASHBOARDS.values() if d["uid"] == "pzm-adherence")
    panel = next(p for p in panels(d) if p["title"].startswith("Adherence and conformance per"))
    for target in panel["targets"]:
        assert NAME_JOIN.search(target["expr"]), target["expr"]
    organize = next(t for t in panel["transformations"] if t["id"] == "organize")["options"]
    assert organize["renameByName"]["name"] == "Agent"
    assert organize["indexByName"]["name"] == 0


def test_current_exceptions_include_queues_and_names() -> None:
    """The current-exceptions table lists agent exceptions by name (by id when the name is
    unknown) and queue exceptions by queue name, in one `Who` column."""
    panel = _adherence_panel("puzzelmon_exception_started_timestamp_seconds")
    expr = panel["targets"][0]["expr"]
    assert NAME_JOIN.search(expr)
    assert "or on (tenant, agent_id) label_replace(" in expr  # no name: still listed
    assert "puzzelmon_queue_exception_started_timestamp_seconds" in expr
    # the queue's name only: its requests-waiting value must not scale the duration
    assert (
        "+ on (tenant, queue) group_left (queue_name) 0 * max by (tenant, queue, queue_name)"
        in (expr)
    )
    assert '"who", "queue $1", "queue_name"' in expr
    organize = panel["transformations"][0]["options"]
    assert organize["renameByName"]["who"] == "Who"
    assert organize["indexByName"]["who"] == 0
    assert "queue" in panel["description"]


def test_unsupported_endpoints_panel() -> None:
    """The health dashboard lists, per tenant, the endpoints whose
    puzzelmon_endpoint_supported is 0, as an instant table that says so when there are none."""
    d = next(d for d in DASHBOARDS.values() if d["uid"] == "pzm-health")
    panel = next(p for p in panels(d) if p["title"] == "Endpoints this tenant does not support")
    (target,) = panel["targets"]
    tree = promql_parser.parse(substitute(target["expr"], {"tenant": "acme"}))
    assert isinstance(tree, promql_parser.BinaryExpr)  # `... == 0`: a filter, not a bool
    assert target["expr"].rstrip().endswith("== 0")
    assert metric_names(substitute(target["expr"], {"tenant": "acme"})) == {
        "puzzelmon_endpoint_supported"
    }
    assert 'tenant=~"$tenant"' in target["expr"]
    assert "by (tenant, endpoint)" in target["expr"]
    assert (panel["type"], target["format"], target["instant"]) == ("table", "table", True)
    assert panel["fieldConfig"]["defaults"]["noValue"]
