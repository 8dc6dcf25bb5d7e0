"""The demo's terminal view: what it shows, and that it fits the terminal."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from datetime import UTC, datetime, timedelta

from monitor.core.clock import VirtualClock
from monitor.core.states import AgentState, StateKind
from monitor.demo.scenario import _names
from monitor.demo.view import (
    STATE_COLUMNS,
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
    assert "running 2m00s" in plain[1]  # the short header: two lines for 80 columns
    row = next(ln for ln in plain if "long_wrap_up" in ln and "Ola Strand" in ln)
    assert row.split()[0] == "1m15s"
    assert any(ln.startswith("09:00:00 🔥 firing") for ln in plain)


def _busy_data(exceptions: int, alerts: int) -> ViewData:
    """Three teams with agents in every state, `exceptions` open ones, `alerts` recent lines."""
    names = {}
    evals = []
    people = iter(sorted(_names(600), key=len, reverse=True))  # the demo's longest names
    for i, kind in enumerate(STATE_COLUMNS):
        for team in ("Support", "Sales", "Billing"):
            aid = f"{1000 + i * 10 + len(team)}"
            names[aid] = next(people)
            state = AgentState(kind, "Break" if kind is StateKind.PAUSE else None)
            evals.append(_eval(aid, team, state, "phone"))
    rules = [RuleName.BREAK_OVERRUN, RuleName.QUEUE_NO_AGENTS_READY, RuleName.LATE_LOGIN]
    open_ = [
        _alert(rules[n % 3], "agent", evals[n].agent_id, T0 - timedelta(seconds=30 * (n + 1)))
        for n in range(exceptions)
    ]
    lines = [
        (T0, f"🔥 firing   break_overrun agent {n} (tenant 12345): Break overrun: someone")
        for n in range(alerts)
    ]
    return ViewData(
        now=T0,
        started=T0 - timedelta(minutes=5),
        tenant="12345",
        agents=len(evals),
        metrics_url="http://127.0.0.1:8912/metrics",
        scrape=scrape_config("127.0.0.1", 8912),
        rules_note="demo rules: 'after' set to break_overrun 20s, out_of_adherence 30s, ...",
        teams=team_counts(evals),
        exceptions=exception_rows(open_, evals, names, {}),
        recent=lines,
        timezone_name="Europe/Oslo",
    )


def test_the_view_is_readable_at_80_by_24() -> None:
    """At 80×24 every line fits, the frame leaves the cursor row free, every state column is
    there with its count, names are whole, and both exceptions and alerts get several lines."""
    data = _busy_data(exceptions=12, alerts=12)
    frame = render(data, width=80, height=24)
    plain = [ANSI.sub("", ln) for ln in frame]
    assert len(frame) <= 23
    assert all(_columns(ln) <= 80 for ln in frame)
    head = next(ln for ln in plain if ln.startswith("AGENTS"))
    assert len(head.split()) == 1 + len(STATE_COLUMNS)
    for team in ("Support", "Sales", "Billing"):
        row = next(ln for ln in plain if ln.startswith(team))
        assert row.split()[1:] == ["1"] * len(STATE_COLUMNS)  # one agent per state and team
    shown = [r for r in data.exceptions if any(f" {r.who} " in ln for ln in plain)]
    assert len(shown) >= 3  # whole "Name Surname (id)", not cut
    # the demo's longest "Name Surname (id)" is among them, and no row is cut short
    assert max(len(r.who) for r in data.exceptions) == max(len(n) for n in _names(600)) + 7
    assert not any("…" in ln for ln in plain if ln.startswith("  ") and "more" not in ln)
    assert any("… and" in ln and "more" in ln for ln in plain)
    alert_lines = [ln for ln in plain if "🔥 firing" in ln]
    assert len(alert_lines) >= 3
    assert all("(tenant 12345)" not in ln for ln in alert_lines)


def test_a_taller_wider_terminal_shows_more() -> None:
    """With more room the view shows the scrape snippet, full state names, every exception
    and more alert lines than at 80×24."""
    data = _busy_data(exceptions=12, alerts=12)
    small = render(data, width=80, height=24)
    big = render(data, width=140, height=50)
    plain = [ANSI.sub("", ln) for ln in big]
    assert len(big) <= 49
    assert all(_columns(ln) <= 140 for ln in big)
    assert '- targets: ["127.0.0.1:8912"]' in "\n".join(plain)
    assert "logged_off" in next(ln for ln in plain if ln.startswith("AGENTS"))
    assert all(any(f" {r.who} " in ln for ln in plain) for r in data.exceptions)

    def alerts(frame: list[str]) -> int:
        return sum("🔥 firing" in ln for ln in frame)

    assert alerts(big) > alerts(small)


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
