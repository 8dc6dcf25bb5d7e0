"""The demo's terminal view: what it shows, and that it fits the terminal."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from datetime import UTC, datetime, timedelta

from monitor.core.clock import VirtualClock
from monitor.core.states import AgentState, StateKind
from monitor.demo.view import (
    AlertFeed,
    ViewData,
    exception_rows,
    render,
    scrape_config,
    team_counts,
)
from monitor.engine.model import AgentEvaluation, AlertTransition, RuleName, Subject

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _eval(agent: str, team: str, state: AgentState, activity: str | None) -> AgentEvaluation:
    return AgentEvaluation(
        agent_id=agent,
        team=team,
        state=state,
        state_since=T0,
        activity=activity,
        adherent=None,
        adherent_since=None,
    )


def _alert(rule: RuleName, subject: Subject, sid: str, since: datetime) -> AlertTransition:
    return AlertTransition(
        rule=rule,
        status="firing",
        tenant="12345",
        subject=subject,
        subject_id=sid,
        team="Support",
        severity="warning",
        at=since,
        ideal_at=since,
        condition_since=since,
    )


def _columns(line: str) -> int:
    text = ANSI.sub("", line)
    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)


def test_exceptions_are_ranked_longest_first_with_schedule_and_state() -> None:
    """Each open exception shows who, the rule, the activity scheduled now and the current
    state; the one that has lasted longest comes first."""
    evals = [
        _eval("1001", "Support", AgentState(StateKind.PAUSE, "Break"), "phone"),
        _eval("1002", "Sales", AgentState(StateKind.LOGGED_OFF), "phone"),
    ]
    alerts = [
        _alert(RuleName.LATE_LOGIN, "agent", "1002", T0 - timedelta(seconds=30)),
        _alert(RuleName.BREAK_OVERRUN, "agent", "1001", T0 - timedelta(seconds=90)),
        _alert(RuleName.QUEUE_NO_AGENTS_READY, "queue", "4103", T0 - timedelta(seconds=60)),
    ]
    rows = exception_rows(alerts, evals, {"1001": "Ada Nilsen", "1002": "Kari Berg"}, {})
    assert [(r.who, r.rule, r.activity, r.state) for r in rows] == [
        ("Ada Nilsen (1001)", "break_overrun", "phone", "pause:Break"),
        ("queue 4103", "queue_no_agents_ready", "-", "-"),
        ("Kari Berg (1002)", "late_login", "phone", "logged_off"),
    ]


def test_render_shows_teams_exceptions_and_alerts_within_the_width() -> None:
    """The frame has the metrics URL and scrape snippet, a row per team with state counts, the
    exceptions with how long they have lasted, and the recent alert lines; no line is wider
    than the terminal, emoji counted as two columns."""
    evals = [
        _eval("1001", "Support", AgentState(StateKind.AVAILABLE), "phone"),
        _eval("1002", "Support", AgentState(StateKind.AVAILABLE), "phone"),
        _eval("1003", "Billing", AgentState(StateKind.WRAP_UP), "phone"),
    ]
    alerts = [_alert(RuleName.LONG_WRAP_UP, "agent", "1003", T0 - timedelta(seconds=75))]
    line = "🔥 firing   long_wrap_up agent 1003 (tenant 12345): " + "x" * 200
    data = ViewData(
        now=T0,
        started=T0 - timedelta(minutes=2),
        tenant="12345",
        agents=3,
        metrics_url="http://127.0.0.1:8912/metrics",
        scrape=scrape_config("127.0.0.1", 8912),
        rules_note="demo rules",
        teams=team_counts(evals),
        exceptions=exception_rows(alerts, evals, {"1003": "Ola Strand"}, {}),
        recent=[(T0, line)],
        timezone_name="UTC",
    )
    frame = render(data, width=80, height=40)
    plain = [ANSI.sub("", ln) for ln in frame]
    assert all(_columns(ln) <= 80 for ln in frame)
    text = "\n".join(plain)
    assert "http://127.0.0.1:8912/metrics" in text
    assert '- targets: ["127.0.0.1:8912"]' in text
    support = next(ln for ln in plain if ln.startswith("Support"))
    assert support.split()[1] == "2"  # available
    assert "running 2m00s" in plain[0]
    row = next(ln for ln in plain if "long_wrap_up" in ln and "Ola Strand" in ln)
    assert row.split()[0] == "1m15s"
    assert any(ln.startswith("09:00:00 🔥 firing") for ln in plain)


def test_alert_feed_keeps_whole_lines_with_their_arrival_time() -> None:
    """The console sink's writes become one entry per complete non-empty line."""
    clock = VirtualClock(T0)
    feed = AlertFeed(clock)
    feed.write("🔥 firing   a\n✅ resolved")
    clock.advance(5)
    feed.write(" b\n\n")
    assert list(feed.lines) == [(T0, "🔥 firing   a"), (T0 + timedelta(seconds=5), "✅ resolved b")]


def test_team_counts_group_states_by_team() -> None:
    """Agents are counted per team and state kind."""
    evals = [
        _eval("1", "A", AgentState(StateKind.PAUSE, "Lunch"), "lunch"),
        _eval("2", "A", AgentState(StateKind.PAUSE, "Break"), "break"),
        _eval("3", "B", AgentState(StateKind.CONNECTED), "phone"),
    ]
    assert team_counts(evals) == {
        "A": Counter({StateKind.PAUSE: 2}),
        "B": Counter({StateKind.CONNECTED: 1}),
    }
