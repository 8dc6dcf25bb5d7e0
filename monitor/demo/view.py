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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import TextIO

from monitor.core.clock import Clock
from monitor.core.states import StateKind
from monitor.engine.model import AgentEvaluation, AlertTransition

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


# short column heads for terminals too narrow for the state names in full
STATE_SHORT: dict[StateKind, str] = {
    StateKind.AVAILABLE: "avail",
    StateKind.CONNECTING: "ringing",
    StateKind.CONNECTED: "on_call",
    StateKind.BUSY: "busy",
    StateKind.WRAP_UP: "wrap_up",
    StateKind.NO_ANSWER: "no_ans",
    StateKind.PAUSE: "pause",
    StateKind.LOGGED_OFF: "off",
}
ROOMY_HEIGHT = 36  # from here on the scrape snippet and the rules note fit above the tables
MIN_ALERT_LINES = 3


def render(data: ViewData, width: int = 100, height: int = 40) -> list[str]:
    """The screen, as at most `height - 1` lines (the last row keeps the cursor) no wider than
    `width`. Narrow or short terminals get short column heads and a two-line header; the rows
    left go to the exceptions first, but never fewer than three to the latest alerts."""
    head = _header(data, width, roomy=height >= ROOMY_HEIGHT)
    table = _state_table(data.teams, width)
    room = max(height - 1, 16) - len(head) - len(table) - 4  # 2 exception heads, blank, title
    recent = data.recent
    alert_rows = min(max(1, len(recent)), max(MIN_ALERT_LINES, room - max(1, len(data.exceptions))))
    lines = [*head, *table, *_exceptions(data, width, max(2, room - alert_rows)), ""]
    lines.append(f"{BOLD}LAST ALERTS{RESET} (console sink)")
    tenant_note = f" (tenant {data.tenant})"  # the header names the tenant once
    for at, text in recent[-alert_rows:]:
        shown = _alert_line(text.replace(tenant_note, ""))
        lines.append(f"{DIM}{at.strftime('%H:%M:%S')}{RESET} {shown}")
    if not recent:
        lines.append(f"{DIM}  none yet: the first incidents fire within two minutes{RESET}")
    return [_fit(line, width) for line in lines]


def _header(data: ViewData, width: int, *, roomy: bool) -> list[str]:
    clock = f"{data.now.strftime('%H:%M:%S')} ({data.timezone_name})"
    running = _duration(data.now - data.started)
    title = f"{BOLD}puzzel-monitor demo{RESET} · tenant {data.tenant} · {data.agents} agents · "
    metrics = f"metrics {BOLD}{data.metrics_url}{RESET}"
    if width >= 110:
        lines = [f"{title}{clock} · running {running} · Ctrl-C to stop"]
    else:  # two lines of under 80 columns
        lines = [f"{title}{clock}"]
        metrics += f" · running {running} · Ctrl-C to stop"
    if not roomy:
        return [*lines, metrics, ""]
    return [
        *lines,
        f"{metrics}   prometheus.yml:",
        *(f"{DIM}  {line}{RESET}" for line in data.scrape),
        f"{DIM}{data.rules_note}{RESET}",
        "",
    ]


def _state_table(teams: dict[str, Counter[StateKind]], width: int) -> list[str]:
    name_w = min(16, max((len(t) for t in teams), default=4) + 2)
    col = max(7, min(11, (width - name_w) // len(STATE_COLUMNS)))
    heads = [k.value if col > len(k.value) else STATE_SHORT[k] for k in STATE_COLUMNS]

    def row(label: str, counts: Counter[StateKind]) -> str:
        return f"{label[: name_w - 1]:{name_w}}" + "".join(
            f"{counts.get(k, 0):>{col}}" for k in STATE_COLUMNS
        )

    lines = [f"{BOLD}{'AGENTS':{name_w}}" + "".join(f"{h:>{col}}" for h in heads) + RESET]
    total: Counter[StateKind] = Counter()
    for team in sorted(teams):
        total.update(teams[team])
        lines.append(row(team, teams[team]))
    if teams:
        lines.append(row("all", total))
    else:
        lines.append(f"{DIM}waiting for the first poll…{RESET}")
    return [*lines, ""]


def _exceptions(data: ViewData, width: int, room: int) -> list[str]:
    rows = data.exceptions
    rule_w = max((len(r.rule) for r in rows), default=4)
    # who gets what the fixed columns leave (lasting 6, scheduled 11, state about 11)
    who_w = max(12, min(max((len(r.who) for r in rows), default=3), width - rule_w - 33))
    lines = [
        f"{BOLD}OPEN EXCEPTIONS ({len(rows)}), longest first{RESET}",
        f"{DIM}{'lasting':>7} {'who':{who_w}} {'rule':{rule_w}} {'scheduled':11} state{RESET}",
    ]
    shown = rows if len(rows) <= room else rows[: room - 1]
    for r in shown:
        who = r.who if len(r.who) <= who_w else r.who[: who_w - 1] + "…"
        lines.append(
            f"{YELLOW}{_duration(data.now - r.since):>7}{RESET} {who:{who_w}} "
            f"{r.rule:{rule_w}} {r.activity[:11]:11} {r.state}"
        )
    if len(shown) < len(rows):
        lines.append(f"{DIM}  … and {len(rows) - len(shown)} more{RESET}")
    if not rows:
        lines.append(f"{DIM}  none{RESET}")
    return lines


class LiveView:
    """Redraws the screen once a second until stopped; leaves the terminal as it found it."""

    def __init__(
        self,
        data: Callable[[], ViewData],
        feed: AlertFeed,
        out: TextIO,
        *,
        tz: tzinfo,
        interval: float = 1.0,
    ) -> None:
        self._data = data  # what to show now (the demo reads its monitor and metrics URL)
        self._feed = feed
        self._tz = tz
        self._out = out
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._out.write("\x1b[?1049h\x1b[?25l")  # alternate screen, cursor hidden
        self._out.flush()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="demo-view")

    def draw(self) -> None:
        size = shutil.get_terminal_size((100, 40))
        lines = render(self._data(), size.columns, size.lines)
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
        for at, text in self._feed.lines:
            self._out.write(f"{at.astimezone(self._tz).strftime('%H:%M:%S')} {text}\n")
        self._out.write("puzzel-monitor demo stopped\n")
        self._out.flush()
