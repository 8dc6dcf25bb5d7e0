"""The Prometheus side: rules/prometheus (recording + alerting rules and their promtool unit tests)
and deploy/prometheus.yml, checked with the real promtool where it is installed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from tests.deploy.compose import compose_services, mount_layout, scrape_targets
from tests.deploy.promql import (
    PROMETHEUS_RULES_DIR,
    ROOT,
    known_metric,
    metric_names,
    prometheus_rules,
    recorded_metrics,
    rule_files,
    unknown_matcher_labels,
)

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian pkg prometheus)"
)
PROMETHEUS_YML = ROOT / "deploy" / "prometheus.yml"
TEST_FILES = sorted((PROMETHEUS_RULES_DIR / "tests").glob("*.yaml"))
RULES = prometheus_rules()
ALERTS = [r for r in RULES if "alert" in r]


def _promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def _rule_id(rule: dict[str, Any]) -> str:
    return str(rule.get("record") or rule.get("alert"))


def test_there_are_recording_and_alerting_rules() -> None:
    """Both rule files exist and hold recording and alerting rules."""
    assert {p.name for p in rule_files()} == {"recording.yaml", "alerting.yaml"}
    assert recorded_metrics()
    assert ALERTS


@pytest.mark.parametrize("rule", RULES, ids=_rule_id)
def test_rule_expressions_are_valid_promql_on_known_metrics(rule: dict[str, Any]) -> None:
    """Each rule expression parses and reads only exported, recorded or built-in metrics."""
    promql_parser.parse(rule["expr"])
    unknown = {m for m in metric_names(rule["expr"]) if not known_metric(m)}
    assert not unknown, f"{_rule_id(rule)} reads unknown metrics {sorted(unknown)}"
    assert not unknown_matcher_labels(rule["expr"])


@pytest.mark.parametrize("rule", [r for r in RULES if "record" in r], ids=_rule_id)
def test_recording_rule_names_follow_level_metric_operations(rule: dict[str, Any]) -> None:
    """Recording rules are named level:metric:operations around a puzzelmon metric."""
    assert re.fullmatch(r"[a-z_]+:puzzelmon_[a-z0-9_]+:[a-z0-9_]+", rule["record"])


@pytest.mark.parametrize("rule", ALERTS, ids=_rule_id)
def test_alerts_carry_severity_scope_and_text(rule: dict[str, Any]) -> None:
    """Each alert is CamelCase with severity critical|warning, a scope, summary and description."""
    assert re.fullmatch(r"Puzzel[A-Z][A-Za-z]+", rule["alert"])
    assert rule["labels"]["severity"] in {"critical", "warning"}
    assert rule["labels"]["scope"] in {"monitor", "tenant", "queue", "team"}
    assert rule["annotations"]["summary"].strip()
    assert rule["annotations"]["description"].strip()


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    """For each alerting rule the promtool tests hold a case where it fires and one where not."""
    fires: set[str] = set()
    quiet: set[str] = set()
    for path in TEST_FILES:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert doc["rule_files"] == ["../recording.yaml", "../alerting.yaml"]
        for case in doc["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check["exp_alerts"] else quiet).add(check["alertname"])
    names = {r["alert"] for r in ALERTS}
    assert names - fires == set(), "alerts never shown firing"
    assert names - quiet == set(), "alerts never shown quiet"


def test_some_recording_rules_have_unit_tests() -> None:
    """The promtool tests evaluate the ratio recording rules (service level, adherence...)."""
    tested: set[str] = set()
    for path in TEST_FILES:
        for case in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            tested.update(c["expr"] for c in case.get("promql_expr_test", []))
    assert {
        "tenant_queue:puzzelmon_queue_service_level:ratio_increase1h",
        "tenant_team:puzzelmon_adherence:ratio_increase1h",
        "tenant_team:puzzelmon_conformance:ratio_increase1h",
    } <= tested


@needs_promtool
def test_promtool_check_rules_passes() -> None:
    """`promtool check rules` accepts both rule files."""
    result = _promtool("check", "rules", *map(str, rule_files()))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(rule_files())


@needs_promtool
def test_promtool_unit_tests_pass() -> None:
    """`promtool test rules` passes every unit test file."""
    assert TEST_FILES
    result = _promtool("test", "rules", *(p.name for p in TEST_FILES), cwd=TEST_FILES[0].parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(TEST_FILES)


@needs_promtool
def test_promtool_unit_tests_catch_a_broken_for_duration(tmp_path: Path) -> None:
    """The unit tests fail if PuzzelMonitorDown lost its 2-minute `for` (they check timing)."""
    shutil.copytree(PROMETHEUS_RULES_DIR, tmp_path / "prometheus")
    alerting = tmp_path / "prometheus" / "alerting.yaml"
    text = alerting.read_text(encoding="utf-8")
    broken = text.replace(
        'expr: up{job="puzzel-monitor"} == 0\n        for: 2m',
        'expr: up{job="puzzel-monitor"} == 0\n        for: 0m',
    )
    assert broken != text
    alerting.write_text(broken, encoding="utf-8")
    result = _promtool(
        "test", "rules", "monitor_alerts_test.yaml", cwd=tmp_path / "prometheus" / "tests"
    )
    assert result.returncode != 0
    assert "PuzzelMonitorDown" in result.stdout + result.stderr


def test_prometheus_scrapes_the_monitor_and_sends_to_alertmanager() -> None:
    """prometheus.yml scrapes job puzzel-monitor at monitor:8912 (each replica), alerts
    alertmanager:9093."""
    conf = yaml.safe_load(PROMETHEUS_YML.read_text(encoding="utf-8"))
    jobs = {j["job_name"]: j for j in conf["scrape_configs"]}
    # every replica, found through Docker's DNS (see test_compose_scale)
    assert scrape_targets(jobs["puzzel-monitor"]) == ["monitor:8912"]
    am = [
        t
        for a in conf["alerting"]["alertmanagers"]
        for sc in a["static_configs"]
        for t in sc["targets"]
    ]
    assert am == ["alertmanager:9093"]
    # the alerts and dashboards select the monitor by this job name
    assert any('up{job="puzzel-monitor"}' in r["expr"] for r in ALERTS)


@needs_promtool
def test_promtool_check_config_passes_in_the_compose_layout(tmp_path: Path) -> None:
    """With the files laid out as docker-compose mounts them, `promtool check config` accepts
    deploy/prometheus.yml and finds both rule files through its rule_files globs."""
    service = compose_services()["prometheus"]
    mount_layout(service, tmp_path)
    flag = next(a for a in service["command"] if a.startswith("--config.file="))
    config = tmp_path / flag.split("=", 1)[1].lstrip("/")
    assert config.read_text() == PROMETHEUS_YML.read_text()
    result = _promtool("check", "config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout + result.stderr
    assert f"SUCCESS: {len(rule_files())} rule files found" in out
    for path in rule_files():
        assert f"{path.name}\n  SUCCESS" in out
