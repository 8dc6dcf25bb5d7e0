"""Alerts in Alertmanager's shape (labels, annotations, startsAt/endsAt, fingerprint) and the
JSON forms the sinks send: Alertmanager v2 `POST /api/v2/alerts` items and webhook v4 payloads.

Pure data and pure functions; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from monitor.core.durations import format_duration
from monitor.engine.model import AlertTransition

Status = Literal["firing", "resolved"]

# Labels that identify an alert; everything else about it is an annotation.
SUBJECT_LABEL = {"agent": "agent", "queue": "queue", "team": "team", "tenant": "tenant"}

_RULE_TITLES = {
    "out_of_adherence": "Out of adherence",
    "late_login": "Late login",
    "early_logoff": "Early log-off",
    "break_overrun": "Break overrun",
    "long_wrap_up": "Long wrap-up",
    "long_pause": "Long pause",
    "unscheduled_login": "Unscheduled login",
    "queue_sla_below": "Queue service level below target",
    "queue_wait_above": "Queue wait above limit",
    "queue_no_agents_ready": "No agents ready on queue",
    "team_adherence_below": "Team adherence below target",
    "stale_data": "Stale data",
    "unmapped_state": "Unmapped agent state",
    "unknown_agent": "Unknown agent",
}


def rule_title(rule: str) -> str:
    """A human title for a rule name (`break_overrun` -> `Break overrun`)."""
    return _RULE_TITLES.get(rule, rule.replace("_", " ").capitalize())


_FNV_OFFSET64 = 14695981039346656037
_FNV_PRIME64 = 1099511628211
_LABEL_SEPARATOR = 0xFF


def fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's fingerprint of a label set: FNV-1a 64 over the sorted names and values,
    each followed by a 0xff separator, as 16 hex digits. Equal to the `fingerprint` field that
    Alertmanager puts in its webhook payloads for the same labels."""
    h = _FNV_OFFSET64
    for name in sorted(labels):
        for part in (name.encode(), labels[name].encode()):
            for byte in part:
                h = ((h ^ byte) * _FNV_PRIME64) & 0xFFFFFFFFFFFFFFFF
            h = ((h ^ _LABEL_SEPARATOR) * _FNV_PRIME64) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def rfc3339(when: datetime) -> str:
    """UTC RFC 3339 with a `Z` suffix and millisecond precision, as Alertmanager writes it."""
    if when.tzinfo is None:
        raise ValueError("alert times must be timezone-aware")
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_rfc3339(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"expected a timezone-aware RFC 3339 time, got {text!r}")
    return value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert. `ends_at` is None while it fires and set once it resolved."""

    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: datetime
    ends_at: datetime | None = None
    generator_url: str = ""
    fingerprint: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if "alertname" not in self.labels:
            raise ValueError("an alert needs an `alertname` label")
        object.__setattr__(self, "labels", dict(self.labels))
        object.__setattr__(self, "annotations", dict(self.annotations))
        object.__setattr__(self, "fingerprint", fingerprint(self.labels))

    @property
    def status(self) -> Status:
        return "firing" if self.ends_at is None else "resolved"

    @property
    def team(self) -> str:
        return self.labels.get("team", "")

    @property
    def subject(self) -> str:
        """The agent, queue, team or tenant the alert is about (for one-line output)."""
        for name in ("agent", "queue"):
            if name in self.labels:
                return f"{name} {self.labels[name]}"
        if "team" in self.labels:
            return f"team {self.labels['team']}"
        return f"tenant {self.labels.get('tenant', '?')}"

    def resolved(self, ends_at: datetime) -> Alert:
        return Alert(self.labels, self.annotations, self.starts_at, ends_at, self.generator_url)

    # --- serialisation ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The internal (lossless) form, also the Alertmanager webhook v4 `alerts[]` item."""
        return {
            "status": self.status,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "startsAt": rfc3339(self.starts_at),
            # Alertmanager writes the zero time for alerts without an end
            "endsAt": rfc3339(self.ends_at) if self.ends_at else "0001-01-01T00:00:00Z",
            "generatorURL": self.generator_url,
            "fingerprint": self.fingerprint,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Alert:
        ends = data.get("endsAt")
        return cls(
            labels=dict(data["labels"]),
            annotations=dict(data.get("annotations", {})),
            starts_at=parse_rfc3339(data["startsAt"]),
            ends_at=None if not ends or ends.startswith("0001-") else parse_rfc3339(ends),
            generator_url=data.get("generatorURL", ""),
        )

    def to_am_v2(self) -> dict[str, Any]:
        """One item of Alertmanager's `POST /api/v2/alerts` body (postableAlert)."""
        item: dict[str, Any] = {
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "startsAt": rfc3339(self.starts_at),
        }
        if self.ends_at is not None:
            item["endsAt"] = rfc3339(self.ends_at)
        if self.generator_url:
            item["generatorURL"] = self.generator_url
        return item


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    common = dict(maps[0])
    for m in maps[1:]:
        common = {k: v for k, v in common.items() if m.get(k) == v}
    return common


def webhook_payload(
    alerts: Sequence[Alert],
    *,
    receiver: str,
    group_labels: Mapping[str, str] | None = None,
    external_url: str = "",
    truncated: int = 0,
) -> dict[str, Any]:
    """An Alertmanager webhook v4 payload for a group of alerts."""
    group = dict(group_labels or {})
    group_key = "{}:{" + ", ".join(f'{k}="{v}"' for k, v in sorted(group.items())) + "}"
    return {
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": truncated,
        "status": "firing" if any(a.status == "firing" for a in alerts) else "resolved",
        "receiver": receiver,
        "groupLabels": group,
        "commonLabels": _common([a.labels for a in alerts]),
        "commonAnnotations": _common([a.annotations for a in alerts]),
        "externalURL": external_url,
        "alerts": [a.to_dict() for a in alerts],
    }


# --- from engine transitions -------------------------------------------------------------------


def _who(t: AlertTransition) -> str:
    name = t.details.get("name") or t.details.get("queue_name")
    if t.subject == "agent":
        return f"{name} (agent {t.subject_id})" if name else f"Agent {t.subject_id}"
    if t.subject == "queue":
        return f"Queue {name} ({t.subject_id})" if name else f"Queue {t.subject_id}"
    if t.subject == "team":
        return f"Team {t.subject_id}"
    return f"Tenant {t.tenant}"


def _doing(t: AlertTransition) -> str:
    state = t.details.get("state")
    pause = t.details.get("pause_type")
    if state and pause and pause not in state:
        state = f"{state} ({pause})"
    return state or ""


def summary_for(t: AlertTransition) -> str:
    """One human sentence: who, what they are doing, what was scheduled, and for how long."""
    title = rule_title(t.rule.value)
    who = _who(t)
    held = t.details.get("held_for") or format_duration(t.at - t.condition_since)
    doing = _doing(t)
    activity = t.details.get("activity")
    parts = [who]
    if doing:
        parts.append(f"is {doing}")
    if activity:
        parts.append(f"while scheduled for {activity}")
    elif t.subject == "agent":
        parts.append("with nothing scheduled" if doing else "")
    sentence = " ".join(p for p in parts if p)
    if t.status == "firing":
        return f"{title}: {sentence} for {held}."
    lasted = format_duration(t.ideal_at - t.condition_since)
    return f"Resolved – {title}: {who}, after {lasted}."


def description_for(t: AlertTransition) -> str:
    extra = ", ".join(
        f"{k}={v}" for k, v in sorted(t.details.items()) if k not in {"name", "queue_name"}
    )
    since = rfc3339(t.condition_since)
    text = f"Rule {t.rule.value} ({t.severity}) for {t.subject} {t.subject_id}"
    text += f"; condition since {since}"
    return f"{text}; {extra}" if extra else text


def labels_for(t: AlertTransition) -> dict[str, str]:
    labels = {
        "alertname": t.rule.value,
        "rule": t.rule.value,
        "tenant": t.tenant,
        "severity": t.severity,
    }
    if t.team:
        labels["team"] = t.team
    if t.subject in ("agent", "queue", "team"):
        labels[SUBJECT_LABEL[t.subject]] = t.subject_id
    elif t.subject == "tenant" and t.subject_id != t.tenant:
        # a tenant-wide condition about one endpoint (stale_data): one alert per endpoint
        labels["endpoint"] = t.subject_id
    return labels


def alert_from_transition(t: AlertTransition, *, dashboard_url: str | None = None) -> Alert:
    """The alert for an engine transition.

    `startsAt` is when the condition began (so the firing and the resolving transition of one
    episode carry the same start, and a re-emitted transition maps to the same notification);
    `endsAt` is the ideal resolve time.
    """
    labels = labels_for(t)
    annotations = {"summary": summary_for(t), "description": description_for(t)}
    runbook = t.details.get("runbook_url")
    if runbook:
        annotations["runbook_url"] = runbook
    if dashboard_url:
        annotations["dashboard_url"] = dashboard_url
    return Alert(
        labels=labels,
        annotations=annotations,
        starts_at=t.condition_since,
        ends_at=t.ideal_at if t.status == "resolved" else None,
        generator_url=dashboard_url or "",
    )
