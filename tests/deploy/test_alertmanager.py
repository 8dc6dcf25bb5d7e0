"""deploy/alertmanager.yml: amtool accepts it, routes go by severity, and the inhibition rules mute
the monitor's agent alerts while its poller is down (checked on a real Alertmanager)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.promql import ROOT, prometheus_rules

ALERTMANAGER_YML = ROOT / "deploy" / "alertmanager.yml"
AMTOOL = shutil.which("amtool")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
needs_amtool = pytest.mark.skipif(
    AMTOOL is None, reason="amtool not installed (Debian pkg prometheus-alertmanager)"
)


def _config() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(ALERTMANAGER_YML.read_text(encoding="utf-8"))
    return doc


def _route(*labels: str) -> str:
    assert AMTOOL is not None
    result = subprocess.run(
        [AMTOOL, "config", "routes", "test", f"--config.file={ALERTMANAGER_YML}", *labels],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result.stdout.strip()


@needs_amtool
def test_amtool_check_config_passes() -> None:
    """`amtool check-config` accepts deploy/alertmanager.yml."""
    assert AMTOOL is not None
    result = subprocess.run(
        [AMTOOL, "check-config", str(ALERTMANAGER_YML)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@needs_amtool
@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (("alertname=PuzzelPollerDown", "severity=critical"), "critical"),
        (("alertname=out_of_adherence", "severity=warning", "tenant=acme"), "warning"),
        (("alertname=Other",), "default"),
    ],
)
def test_alerts_are_routed_by_severity(labels: tuple[str, ...], receiver: str) -> None:
    """Critical and warning alerts go to their own receivers, anything else to the default."""
    assert _route(*labels) == receiver


def test_alerts_are_grouped_by_name_tenant_and_team() -> None:
    """The root route groups by alertname, tenant and team."""
    assert _config()["route"]["group_by"] == ["alertname", "tenant", "team"]


def test_inhibition_sources_are_alerts_prometheus_defines() -> None:
    """Every alert name an inhibition rule keys on is an alert in rules/prometheus."""
    alerts = {r["alert"] for r in prometheus_rules() if "alert" in r}
    for rule in _config()["inhibit_rules"]:
        for matcher in rule["source_matchers"]:
            if matcher.startswith("alertname"):
                names = matcher.split("=", 1)[1].lstrip("~").strip('"').split("|")
                assert set(names) <= alerts, matcher


# --- a real Alertmanager ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _http(method: str, url: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    """A real Alertmanager on loopback with deploy/alertmanager.yml; yields its base URL."""
    if ALERTMANAGER is None:
        pytest.skip("prometheus-alertmanager not installed")
    port = _free_port()
    proc = subprocess.Popen(
        [
            ALERTMANAGER,
            f"--config.file={ALERTMANAGER_YML}",
            f"--storage.path={tmp_path}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("alertmanager did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _alert(**labels: str) -> dict[str, Any]:
    return {"labels": labels, "annotations": {"summary": "test"}}


def _states(url: str) -> dict[str, dict[str, Any]]:
    alerts = _http("GET", f"{url}/api/v2/alerts")
    return {
        f"{a['labels']['alertname']}/{a['labels'].get('tenant', '')}": a["status"] for a in alerts
    }


@pytest.mark.e2e
def test_poller_down_mutes_the_tenants_agent_alerts_only(alertmanager: str) -> None:
    """While PuzzelPollerDown fires for tenant acme, acme's agent alerts from the monitor are
    suppressed; another tenant's agent alerts and the poller alert itself stay active."""
    _http(
        "POST",
        f"{alertmanager}/api/v2/alerts",
        [
            _alert(
                alertname="PuzzelPollerDown",
                severity="critical",
                scope="tenant",
                tenant="acme",
                endpoint="user_states",
            ),
            _alert(
                alertname="out_of_adherence",
                rule="out_of_adherence",
                severity="warning",
                tenant="acme",
                team="Support",
                agent="1001",
            ),
            _alert(
                alertname="late_login",
                rule="late_login",
                severity="warning",
                tenant="globex",
                team="Sales",
                agent="2001",
            ),
        ],
    )
    deadline = time.monotonic() + 10
    while True:
        states = _states(alertmanager)
        if len(states) == 3 and states["out_of_adherence/acme"]["state"] == "suppressed":
            break
        assert time.monotonic() < deadline, states
        time.sleep(0.1)
    assert states["out_of_adherence/acme"]["inhibitedBy"]
    assert states["late_login/globex"]["state"] == "active"
    assert states["PuzzelPollerDown/acme"]["state"] == "active"


@pytest.mark.e2e
def test_monitor_down_mutes_every_tenants_monitor_alerts(alertmanager: str) -> None:
    """While PuzzelMonitorDown fires, the monitor's agent alerts of every tenant are suppressed."""
    _http(
        "POST",
        f"{alertmanager}/api/v2/alerts",
        [
            _alert(
                alertname="PuzzelMonitorDown",
                severity="critical",
                scope="monitor",
                job="puzzel-monitor",
                instance="monitor:8912",
            ),
            _alert(
                alertname="late_login",
                rule="late_login",
                severity="warning",
                tenant="globex",
                team="Sales",
                agent="2001",
            ),
        ],
    )
    deadline = time.monotonic() + 10
    while True:
        states = _states(alertmanager)
        if states.get("late_login/globex", {}).get("state") == "suppressed":
            break
        assert time.monotonic() < deadline, states
        time.sleep(0.1)
    assert states["PuzzelMonitorDown/"]["state"] == "active"
