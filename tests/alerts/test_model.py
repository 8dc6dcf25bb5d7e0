"""The alert model: labels, fingerprint, human summary, Alertmanager JSON shapes."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from monitor.alerts.model import Alert, alert_from_transition, fingerprint, webhook_payload
from monitor.engine.model import RuleName
from tests.alerts.helpers import T0, transition


def test_labels_follow_alertmanager_conventions() -> None:
    """An agent transition becomes labels alertname=rule, rule, tenant, team, agent, severity."""
    a = alert_from_transition(transition("1001", severity="critical"))
    assert a.labels == {
        "alertname": "break_overrun",
        "rule": "break_overrun",
        "tenant": "12345",
        "team": "Support",
        "agent": "1001",
        "severity": "critical",
    }
    assert a.status == "firing"
    assert a.ends_at is None


def test_fingerprint_is_stable_and_order_independent() -> None:
    """The fingerprint is a hex hash of the sorted labels, independent of insertion order."""
    fp1 = fingerprint({"a": "1", "b": "2"})
    fp2 = fingerprint({"b": "2", "a": "1"})
    assert fp1 == fp2
    assert int(fp1, 16) >= 0
    assert len(fp1) == 16
    assert fp1 != fingerprint({"a": "1", "b": "3"})


def test_firing_and_resolved_share_fingerprint_and_start() -> None:
    """The resolve of an episode has the firing's fingerprint and startsAt, plus an endsAt."""
    firing = alert_from_transition(transition())
    end = T0 + timedelta(minutes=25)
    resolved = alert_from_transition(transition(status="resolved", at=end))
    assert resolved.fingerprint == firing.fingerprint
    assert resolved.starts_at == firing.starts_at
    assert resolved.ends_at == end
    assert resolved.status == "resolved"


def test_summary_says_who_what_scheduled_doing_and_how_long() -> None:
    """The summary names the agent, what they do, what was scheduled and for how long."""
    a = alert_from_transition(
        transition(details={"name": "Kari Nordmann", "activity": "phone", "state": "pause"})
    )
    summary = a.annotations["summary"]
    assert "Kari Nordmann" in summary
    assert "pause" in summary
    assert "phone" in summary
    assert "17m" in summary


def test_dashboard_url_is_an_annotation_and_generator_url() -> None:
    """A configured dashboard URL is carried as annotation and generatorURL."""
    a = alert_from_transition(transition(), dashboard_url="http://grafana/d/pzm")
    assert a.annotations["dashboard_url"] == "http://grafana/d/pzm"
    assert a.generator_url == "http://grafana/d/pzm"


def test_queue_alert_carries_queue_label() -> None:
    """A queue transition is labelled `queue`, not `agent`."""
    t = transition(rule=RuleName.QUEUE_SLA_BELOW)
    t = type(t)(
        **{**{f: getattr(t, f) for f in t.__slots__}, "subject": "queue", "subject_id": "q1"}
    )
    a = alert_from_transition(t)
    assert a.labels["queue"] == "q1"
    assert "agent" not in a.labels


def test_dict_round_trip_and_am_v2_item() -> None:
    """to_dict/from_dict round-trips; the v2 item has endsAt only once resolved."""
    a = alert_from_transition(transition())
    assert Alert.from_dict(a.to_dict()) == a
    assert "endsAt" not in a.to_am_v2()
    r = a.resolved(T0 + timedelta(hours=1))
    assert r.to_am_v2()["endsAt"] == "2026-03-02T10:00:00.000Z"


def test_webhook_payload_has_the_v4_fields() -> None:
    """The webhook payload carries every Alertmanager v4 top-level and per-alert field."""
    alerts = [alert_from_transition(transition(a)) for a in ("1", "2")]
    p = webhook_payload(alerts, receiver="ops", group_labels={"team": "Support"})
    assert p["version"] == "4"
    assert p["status"] == "firing"
    assert p["receiver"] == "ops"
    assert p["groupKey"] == '{}:{team="Support"}'
    assert p["commonLabels"]["team"] == "Support"
    assert "agent" not in p["commonLabels"]
    assert p["truncatedAlerts"] == 0
    assert set(p) >= {"groupLabels", "commonAnnotations", "externalURL", "alerts"}
    item = p["alerts"][0]
    assert set(item) == {
        "status",
        "labels",
        "annotations",
        "startsAt",
        "endsAt",
        "generatorURL",
        "fingerprint",
    }


def test_stale_data_is_one_alert_per_endpoint() -> None:
    """stale_data of two endpoints of one tenant: an `endpoint` label each, two fingerprints, so
    a receiver sees one outage end only when that endpoint recovers."""
    base = transition("queues", rule=RuleName.STALE_DATA, team="")
    queues = replace(base, subject="tenant", team=None)
    states = replace(queues, subject_id="user_states")
    a, b = alert_from_transition(queues), alert_from_transition(states)
    assert a.labels["endpoint"] == "queues"
    assert b.labels["endpoint"] == "user_states"
    assert "team" not in a.labels
    assert a.fingerprint != b.fingerprint
