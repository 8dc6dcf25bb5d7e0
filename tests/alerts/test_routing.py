"""Routing and noise control: routes, quiet hours, repeats, escalation, snooze and ack."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis
from pydantic import ValidationError

from monitor.alerts.config import AlertingConfig
from monitor.alerts.outbox import Notification, Outbox
from monitor.alerts.routing import QuietWindow, Router, quiet_until
from monitor.alerts.snooze import SnoozeStore
from monitor.core.clock import VirtualClock
from monitor.engine.model import RuleName
from tests.alerts.helpers import T0, alert

OSLO = ZoneInfo("Europe/Oslo")


def config(**extra: object) -> AlertingConfig:
    base: dict[str, object] = {
        "sinks": {
            "console": {"type": "console"},
            "slack": {"type": "slack", "webhook_url": "https://hooks.slack.example/T/B/x"},
            "pager": {"type": "webhook", "url": "https://pager.example/hook"},
        },
        "routes": [
            {
                "name": "critical",
                "match": {"severity": ["critical"]},
                "sinks": ["pager"],
                "continue": True,
            },
            {
                "name": "sales",
                "match": {"team": ["Sales"]},
                "sinks": ["slack"],
                "repeat_interval": "30m",
            },
            {"name": "rest", "sinks": ["console"]},
        ],
        "repeat_interval": "1h",
    }
    base.update(extra)
    return AlertingConfig.model_validate(base)


def test_defaults_are_console_only() -> None:
    """With no configuration, every alert goes to the console sink and nowhere else."""
    cfg = AlertingConfig()
    router = Router.from_config(cfg)
    assert list(cfg.sinks) == ["console"]
    assert router.targets(alert("1"), T0) == {"console": None}


def test_routes_match_by_severity_team_and_continue() -> None:
    """First match wins unless `continue`; matchers on severity, team and rule work."""
    router = Router.from_config(config())
    assert router.targets(alert("1", team="Sales", severity="critical"), T0) == {
        "pager": None,
        "slack": None,
    }
    assert router.targets(alert("1", team="Sales"), T0) == {"slack": None}
    assert router.targets(alert("1", team="Support"), T0) == {"console": None}
    by_rule = config(
        routes=[{"name": "late", "match": {"rule": ["late_login"]}, "sinks": ["pager"]}]
    )
    r = Router.from_config(by_rule)
    assert r.targets(alert("1", rule=RuleName.LATE_LOGIN), T0) == {"pager": None}
    assert r.targets(alert("1"), T0) == {}


def test_unknown_sink_in_route_is_a_clear_error() -> None:
    """A route naming a sink that is not configured fails validation, naming both."""
    with pytest.raises(ValidationError, match=r"unknown sink.*nope"):
        config(routes=[{"name": "x", "sinks": ["nope"]}])


def test_quiet_hours_overnight_in_local_time() -> None:
    """A 22:00–07:00 Oslo window holds at 23:30 and 06:00 local until 07:00, not at 12:00."""
    w = QuietWindow(time(22), time(7), OSLO)
    at = datetime(2026, 3, 2, 23, 30, tzinfo=OSLO)
    assert w.active_until(at) == datetime(2026, 3, 3, 7, 0, tzinfo=OSLO).astimezone(UTC)
    early = datetime(2026, 3, 3, 6, 0, tzinfo=OSLO)
    assert w.active_until(early) == datetime(2026, 3, 3, 7, 0, tzinfo=OSLO).astimezone(UTC)
    assert w.active_until(datetime(2026, 3, 3, 12, 0, tzinfo=OSLO)) is None


def test_quiet_hours_respect_days_and_chain() -> None:
    """A weekend window applies only on its days; adjacent windows chain to the last end."""
    weekend = QuietWindow(time(0), time(23, 59), OSLO, frozenset({5, 6}))
    monday = datetime(2026, 3, 2, 10, 0, tzinfo=OSLO)
    saturday = datetime(2026, 3, 7, 10, 0, tzinfo=OSLO)
    assert weekend.active_until(monday) is None
    assert weekend.active_until(saturday) is not None
    night = QuietWindow(time(23, 59), time(8), OSLO)
    end = quiet_until([weekend, night], saturday)
    assert end == datetime(2026, 3, 9, 8, 0, tzinfo=OSLO).astimezone(UTC)


def test_route_quiet_hours_hold_the_notification() -> None:
    """A route in its quiet hours holds its sinks' notifications until the window ends."""
    cfg = config(quiet_hours=[{"start": "22:00", "end": "07:00", "timezone": "Europe/Oslo"}])
    router = Router.from_config(cfg)
    night = datetime(2026, 3, 2, 23, 0, tzinfo=OSLO)
    hold = router.targets(alert("1"), night)["console"]
    assert hold == datetime(2026, 3, 3, 7, 0, tzinfo=OSLO).astimezone(UTC)
    assert router.targets(alert("1"), datetime(2026, 3, 3, 9, 0, tzinfo=OSLO)) == {"console": None}


async def entries(redis: aioredis.Redis, outbox: Outbox) -> list[Notification]:
    rows = await redis.xrange(outbox.stream)
    return [Notification.from_json(f[b"n"]) for _, f in rows]


async def test_repeat_interval_and_escalation(redis_client: aioredis.Redis) -> None:
    """A still-firing alert repeats per its route's interval and escalates once past `after`."""
    cfg = config(escalations=[{"name": "boss", "after": "45m", "sinks": ["pager"]}])
    clock = VirtualClock(T0 + timedelta(minutes=17))
    outbox = Outbox(
        redis_client, sinks=list(cfg.sinks), clock=clock, router=Router.from_config(cfg)
    )
    await outbox.publish([alert("1", team="Sales")])
    clock.advance(29 * 60)  # 46 min after the condition began: escalate, no repeat yet
    assert await outbox.tick() == 1
    clock.advance(60)  # 30 min after the first: repeat to the Sales route (slack)
    assert await outbox.tick() == 1
    assert await outbox.tick() == 0
    clock.advance(30 * 60)
    assert await outbox.tick() == 1
    tags = [(n.tag, sorted(n.targets)) for n in await entries(redis_client, outbox)]
    assert tags == [
        ("first", ["slack"]),
        ("escalation:boss", ["pager"]),
        ("repeat:1", ["slack"]),
        ("repeat:2", ["slack"]),
    ]
    # a resolve goes to the route's sinks and to the escalation's
    await outbox.publish([alert("1", team="Sales", status="resolved")])
    last = (await entries(redis_client, outbox))[-1]
    assert sorted(last.targets) == ["pager", "slack"]
    clock.advance(3600)
    assert await outbox.tick() == 0


async def test_snooze_and_ack_stop_repeats_until_they_end(redis_client: aioredis.Redis) -> None:
    """Snoozed or acknowledged alerts get no repeats; an agent snooze covers that agent."""
    clock = VirtualClock(T0)
    snoozes = SnoozeStore(redis_client, clock=clock)
    router = Router.to_all(["c"], repeat_interval=timedelta(minutes=10))
    outbox = Outbox(redis_client, sinks=["c"], clock=clock, router=router, snoozes=snoozes)
    a1, a2, a3 = alert("1"), alert("2"), alert("3")
    await outbox.publish([a1, a2, a3])
    await snoozes.snooze_alert(a1.fingerprint, T0 + timedelta(minutes=25))
    await snoozes.ack_alert(a2)
    await snoozes.snooze_agent("12345", "3", T0 + timedelta(minutes=15))
    clock.advance(11 * 60)
    assert await outbox.tick() == 0
    clock.advance(5 * 60)  # agent snooze over
    assert await outbox.tick() == 1
    clock.advance(10 * 60)  # alert snooze over; the ack holds for the episode
    assert await outbox.tick() == 2
    agents = [n.alert.labels["agent"] for n in (await entries(redis_client, outbox))[3:]]
    assert sorted(agents) == ["1", "3", "3"]
    assert [m.kind for m in await snoozes.mutes(a2)] == ["ack"]
    # a new episode of the acknowledged alert is not acknowledged
    assert await snoozes.mutes(alert("2", since=T0 + timedelta(hours=1))) == []
    assert await snoozes.unack_alert(a2.fingerprint)
    assert await snoozes.muted(a2) is None


async def test_snooze_in_the_past_is_refused(redis_client: aioredis.Redis) -> None:
    """A snooze must end in the future."""
    snoozes = SnoozeStore(redis_client, clock=VirtualClock(T0))
    with pytest.raises(ValueError, match="future"):
        await snoozes.snooze_alert("abc", T0 - timedelta(minutes=1))


async def test_a_dm_sink_gets_only_its_agent_rules_first_repeat_and_escalation(
    redis_client: aioredis.Redis,
) -> None:
    """Routes name the DM sink for everything; it still gets only break overruns about an
    agent: first notification, repeats, escalations and resolves alike."""
    cfg = AlertingConfig.model_validate(
        {
            "sinks": {
                "console": {"type": "console"},
                "dm": {"type": "slack_dm", "bot_token": "xoxb-1", "rules": ["break_overrun"]},
            },
            "routes": [{"name": "all", "sinks": ["console", "dm"]}],
            "escalations": [{"name": "late", "after": "30m", "sinks": ["dm"]}],
            "repeat_interval": "10m",
        }
    )
    clock = VirtualClock(T0 + timedelta(minutes=17))
    outbox = Outbox(
        redis_client, sinks=list(cfg.sinks), clock=clock, router=Router.from_config(cfg)
    )
    adherence = alert("2", rule=RuleName.OUT_OF_ADHERENCE)
    await outbox.publish([alert("1"), adherence])
    clock.advance(15 * 60)  # both repeat, both escalate
    await outbox.tick()
    await outbox.publish(
        [
            alert("1", status="resolved"),
            alert("2", rule=RuleName.OUT_OF_ADHERENCE, status="resolved"),
        ]
    )
    sent = [
        (n.alert.labels["alertname"], n.tag, sorted(n.targets))
        for n in await entries(redis_client, outbox)
    ]
    first, ticked, resolved = sent[:2], sorted(sent[2:5]), sent[5:]
    assert first == [
        ("break_overrun", "first", ["console", "dm"]),
        ("out_of_adherence", "first", ["console"]),
    ]
    assert ticked == [  # out_of_adherence's escalation reaches no sink: nothing written
        ("break_overrun", "escalation:late", ["dm"]),
        ("break_overrun", "repeat:1", ["console", "dm"]),
        ("out_of_adherence", "repeat:1", ["console"]),
    ]
    assert resolved == first
