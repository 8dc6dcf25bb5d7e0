"""The demo's live terminal view: plain ANSI, redrawn about once a second.

`render(data, width, height)` is pure (a `ViewData` in, lines out); `LiveView` is the shell that
owns the terminal (alternate screen, hidden cursor) while the demo runs. `AlertFeed` is the text
stream the console sink writes to on a terminal, so delivered alerts appear in the view instead of
scrolling it away.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import shutil
import unicodedata
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TextIO

from monitor.core.clock import Clock
from monitor.core.states import StateKind
from monitor.demo.scenario import rules_note
from monitor.engine.model import AgentEvaluation, AlertTransition

if TYPE_CHECKING:
    from monitor.demo.demo import Demo

STATE_COLUMNS: tuple[StateKind, ...] = (
    StateKind.AVAILABLE,
    StateKind.CONNECTING,
    StateKind.CONNECTED,
    StateKind.BUSY,
    StateKind.WRAP_UP,
    StateKind.NO_ANSWER,
    StateKind.PAUSE,
    StateKind.LOGGED_OFF,
)
RECENT_ALERTS = 12

BOLD, DIM, RED, GREEN, YELLOW, RESET = (
    "\x1b[1m",
    "\x1b[2m",
    "\x1b[31m",
    "\x1b[32m",
    "\x1b[33m",
    "\x1b[0m",
)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def scrape_config(host: str, port: int) -> list[str]:
    """A Prometheus scrape_config for the demo's metrics, as YAML lines."""
    return [
        "scrape_configs:",
        "  - job_name: puzzel-monitor",
        "    scrape_interval: 15s",
        "    static_configs:",
        f'      - targets: ["{host}:{port}"]',
    ]


class AlertFeed(io.StringIO):
    """Collects the console sink's lines (with the time they arrived) for the view."""

    def __init__(self, clock: Clock, keep: int = 200) -> None:
        super().__init__()
        self._clock = clock
        self._partial = ""
        self.lines: deque[tuple[datetime, str]] = deque(maxlen=keep)

    def write(self, s: str) -> int:
        text = self._partial + s
        *complete, self._partial = text.split("\n")
        now = self._clock.now()
        for line in complete:
            if line.strip():
                self.lines.append((now, line))
        return len(s)


@dataclass(frozen=True)
class ExceptionRow:
    since: datetime
    who: str
    rule: str
    activity: str
    state: str


@dataclass(frozen=True)
class ViewData:
    now: datetime
    started: datetime
    tenant: str
    agents: int
    metrics_url: str
    scrape: list[str]
    rules_note: str
    teams: dict[str, Counter[StateKind]]
    exceptions: list[ExceptionRow]
    recent: list[tuple[datetime, str]]
    timezone_name: str


def exception_rows(
    alerts: Sequence[AlertTransition],
    evaluations: Sequence[AgentEvaluation],
    names: dict[str, str],
    queue_names: dict[str, str],
) -> list[ExceptionRow]:
    """Open exceptions, longest first, with what the agent is scheduled for and doing now."""
    by_agent = {e.agent_id: e for e in evaluations}
    rows = []
    for a in alerts:
        if a.subject == "agent":
            ev = by_agent.get(a.subject_id)
            name = names.get(a.subject_id) or a.details.get("name") or "agent"
            who = f"{name} ({a.subject_id})"
            activity = (ev.activity or "unscheduled") if ev else a.details.get("activity", "-")
            state = ev.state.label if ev else a.details.get("state", "-")
        elif a.subject == "queue":
            who = f"queue {queue_names.get(a.subject_id, a.subject_id)}"
            activity, state = "-", "-"
        else:
            who = f"{a.subject} {a.subject_id}"
            activity, state = "-", "-"
        rows.append(ExceptionRow(a.condition_since, who, a.rule.value, activity, state))
    rows.sort(key=lambda r: (r.since, r.who, r.rule))
    return rows


def team_counts(evaluations: Sequence[AgentEvaluation]) -> dict[str, Counter[StateKind]]:
    out: dict[str, Counter[StateKind]] = {}
    for e in evaluations:
        out.setdefault(e.team, Counter())[e.state.kind] += 1
    return out


def _duration(d: timedelta) -> str:
    s = max(0, int(d.total_seconds()))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def _cells(ch: str) -> int:
    """Terminal columns a character takes (emoji and CJK take two)."""
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def _fit(text: str, width: int) -> str:
    """Cut a line to `width` terminal columns (escape codes take none)."""
    if sum(_cells(c) for c in _ANSI.sub("", text)) <= width:
        return text
    out, n, i = [], 0, 0
    while i < len(text):
        m = _ANSI.match(text, i)
        if m:
            out.append(m.group())
            i = m.end()
            continue
        cells = _cells(text[i])
        if n + cells > width - 1:
            break
        out.append(text[i])
        n += cells
        i += 1
    return "".join(out) + "…" + RESET


def _alert_line(text: str) -> str:
    if "firing" in text:
        return f"{RED}{text}{RESET}"
    if "resolved" in text:
        return f"{GREEN}{text}{RESET}"
    return text


def render(data: ViewData, width: int = 100, height: int = 40) -> list[str]:
    """The screen, as lines no wider than `width`."""
    local = data.now
    lines = [
        f"{BOLD}puzzel-monitor demo{RESET} · tenant {data.tenant} · {data.agents} agents · "
        f"{local.strftime('%H:%M:%S')} ({data.timezone_name}) · running "
        f"{_duration(data.now - data.started)} · Ctrl-C to stop",
        f"metrics {BOLD}{data.metrics_url}{RESET}   prometheus.yml:",
        *(f"{DIM}  {line}{RESET}" for line in data.scrape),
        f"{DIM}{data.rules_note}{RESET}",
        "",
    ]
    header = f"{'AGENTS BY STATE':16}" + "".join(f"{k.value:>11}" for k in STATE_COLUMNS)
    lines.append(f"{BOLD}{header}{RESET}")
    total: Counter[StateKind] = Counter()
    for team in sorted(data.teams):
        counts = data.teams[team]
        total.update(counts)
        lines.append(f"{team:16}" + "".join(f"{counts.get(k, 0):>11}" for k in STATE_COLUMNS))
    if not data.teams:
        lines.append(f"{DIM}waiting for the first poll…{RESET}")
    else:
        lines.append(f"{'all':16}" + "".join(f"{total.get(k, 0):>11}" for k in STATE_COLUMNS))
    lines.append("")

    recent = data.recent[-RECENT_ALERTS:]
    room = max(3, height - len(lines) - len(recent) - 5)
    lines.append(f"{BOLD}OPEN EXCEPTIONS ({len(data.exceptions)}), longest first{RESET}")
    lines.append(f"{DIM}{'lasting':>9}  {'who':28} {'rule':22} {'scheduled':11} state{RESET}")
    for row in data.exceptions[:room]:
        lines.append(
            f"{YELLOW}{_duration(data.now - row.since):>9}{RESET}  {row.who[:28]:28} "
            f"{row.rule:22} {row.activity[:11]:11} {row.state}"
        )
    if len(data.exceptions) > room:
        lines.append(f"{DIM}  … and {len(data.exceptions) - room} more{RESET}")
    if not data.exceptions:
        lines.append(f"{DIM}  none{RESET}")
    lines.append("")
    lines.append(f"{BOLD}LAST ALERTS{RESET} (console sink)")
    for at, text in recent:
        lines.append(f"{DIM}{at.strftime('%H:%M:%S')}{RESET} {_alert_line(text)}")
    if not recent:
        lines.append(f"{DIM}  none yet: the first incidents fire within two minutes{RESET}")
    return [_fit(line, width) for line in lines]


def view_data(demo: Demo, feed: AlertFeed) -> ViewData:
    """What the view shows now, read from the running demo."""
    from monitor.demo.demo import METRICS_HOST  # noqa: PLC0415 - demo imports this module

    tenant = demo.centre.scenario.customer_key
    tz = demo.centre.scenario.timezone
    evaluations: Sequence[AgentEvaluation] = ()
    alerts: Sequence[AlertTransition] = ()
    if demo.monitor is not None:
        pipeline = demo.monitor.pipelines.by_tenant[tenant]
        evaluations = pipeline.evaluations
        alerts = pipeline.open_alerts(tenant)
    now = demo.clock.now().astimezone(tz)
    return ViewData(
        now=now,
        started=demo.started_at,
        tenant=tenant,
        agents=len(demo.centre.scenario.agents),
        metrics_url=demo.metrics_url,
        scrape=scrape_config(METRICS_HOST, demo.port),
        rules_note=rules_note(),
        teams=team_counts(evaluations),
        exceptions=exception_rows(alerts, evaluations, demo.centre.names, demo.centre.queue_names),
        recent=[(t.astimezone(tz), s) for t, s in feed.lines],
        timezone_name=str(tz),
    )


class LiveView:
    """Redraws the screen once a second until stopped; leaves the terminal as it found it."""

    def __init__(self, demo: Demo, feed: AlertFeed, out: TextIO, interval: float = 1.0) -> None:
        self._demo = demo
        self._feed = feed
        self._out = out
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._out.write("\x1b[?1049h\x1b[?25l")  # alternate screen, cursor hidden
        self._out.flush()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="demo-view")

    def draw(self) -> None:
        size = shutil.get_terminal_size((100, 40))
        lines = render(view_data(self._demo, self._feed), size.columns, size.lines)
        frame = "\x1b[H" + "".join(f"{line}\x1b[K\n" for line in lines[: size.lines - 1])
        self._out.write(frame + "\x1b[J")
        self._out.flush()

    async def _run(self) -> None:
        while True:
            self.draw()
            await asyncio.sleep(self._interval)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._out.write("\x1b[?25h\x1b[?1049l")
        # what happened stays on the normal screen once the view is gone
        tz = self._demo.centre.scenario.timezone
        for at, text in self._feed.lines:
            self._out.write(f"{at.astimezone(tz).strftime('%H:%M:%S')} {text}\n")
        self._out.write("puzzel-monitor demo stopped\n")
        self._out.flush()
