"""The per-agent metric families written as exposition text directly, with cached lines.

At 10,000 agents these ten families are ~80,000 of the exporter's series, and building them as
client_python families (a `Sample` and a label dict per series, label names checked by regex and
values escaped per sample at every render) was most of a cycle's CPU. Here each agent's lines
are kept with the observation and evaluation objects they were written from (the tracker and
the engine's quiet path keep an unchanged agent's objects, so a kept object means kept lines),
whole with their names and joined per team (per tenant for the engine's two families), so that
a render costs an identity pass over the objects plus the lines of the few that are new;
the adherence counters, which grow every cycle while an agent is scheduled, are read from the
engine's memory and only their numbers formatted at each render; label strings are escaped once
per agent.

The output equals, family for family and line for line, what `SnapshotCollector` yields for
the same families through client_python (`tests/http/test_agent_exposition.py` compares them on
every render path), in both the text 0.0.4 and the OpenMetrics format: the HELP and TYPE lines
are client_python's own, rendered once from empty families; label names are in sorted order and
values go through client_python's float formatting, as in its exposition.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from operator import is_
from typing import Any, Protocol

from prometheus_client.core import Metric
from prometheus_client.exposition import generate_latest as text_generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as om_generate_latest
from prometheus_client.utils import floatToGoString

from monitor.core.snapshots import AgentObservation
from monitor.core.states import STATE_CODES
from monitor.engine.memory import EngineState
from monitor.engine.model import Accrual, AgentEvaluation

# client_python's number format (Go's), so that lines equal its own
go_float: Callable[[float], str] = floatToGoString


def fmt(value: float) -> str:
    """`floatToGoString(value)`, without its call for the common case: its result is `repr`
    unless the value is infinite or NaN (`inf`, `nan`) or positive with more than six digits
    before the point (Go's exponent form)."""
    r = repr(value)
    if "n" in r or (value > 0 and r.find(".") > 6):
        return go_float(value)
    return r


class Totals(Protocol):
    """What the counters show of one agent: the engine's memory of it, or an `Accrual`."""

    @property
    def team(self) -> str: ...
    @property
    def adherent_seconds(self) -> float: ...
    @property
    def scheduled_seconds(self) -> float: ...
    @property
    def productive_seconds(self) -> float: ...
    @property
    def productive_scheduled_seconds(self) -> float: ...


# (agent_id, team, '{agent_id="…",team="…",tenant="…"} ') per agent, in the collector's order
Rows = list[tuple[str, str, str]]


COUNTER_FIELDS = (
    "adherent_seconds",
    "scheduled_seconds",
    "productive_seconds",
    "productive_scheduled_seconds",
)


def esc(value: str) -> str:
    """A label value escaped as client_python escapes it (both formats)."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


@dataclass(frozen=True, slots=True)
class Family:
    """One family's name in samples and its HELP/TYPE header in both formats."""

    sample_name: str
    text_header: str
    om_header: str

    @classmethod
    def of(cls, family: Metric) -> Family:
        """Headers rendered by client_python itself from `family` (which must be empty)."""
        one = _One(family)
        text = text_generate_latest(one).decode()  # any object with .collect() will do
        om = om_generate_latest(one).decode()  # type: ignore[no-untyped-call]  # untyped upstream
        suffix = "_total" if family.type == "counter" else ""
        return cls(family.name + suffix, text, om.removesuffix("# EOF\n"))


class _One:
    def __init__(self, *families: Metric) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        yield from self.families


def render_families(families: Sequence[Metric], *, openmetrics: bool) -> bytes:
    """`families` as client_python renders them (OpenMetrics without its `# EOF`)."""
    one = _One(*families)
    if openmetrics:
        body: bytes = om_generate_latest(one)  # type: ignore[no-untyped-call]  # untyped upstream
        return body.removesuffix(b"# EOF\n")
    return text_generate_latest(one)  # any object with .collect() will do


class AgentLines:
    """The cached lines of one render of the per-agent families: `render(families)` joins the
    families' lines, in the order `SnapshotCollector` yields them, under their headers.

    `names` are the sample names of the gauge families (`code`, `since`, `entry`, `info`,
    `activity`, `adherent`): their lines are kept whole, name included, and joined per team
    (per tenant for the engine's two), so that a team whose agents are the same objects as at
    the last render costs one identity pass and no line at all."""

    def __init__(self, names: Mapping[str, str]) -> None:
        self._names = names
        # (tenant, team, agent_id) -> ('agent_id="…"', 'team="…",tenant="…"}')
        self._labels: dict[tuple[str, str, str], tuple[str, str]] = {}
        self._teams: dict[tuple[str, str], TeamLines] = {}
        self._standing: dict[str, Standing] = {}
        self._accrued: dict[tuple[str, ...], tuple[tuple[float, ...], tuple[str, ...]]] = {}
        self._rows: dict[str, Rows] = {}
        self._counts: dict[str, Counts] = {}

    def labels(self, tenant: str, team: str, agent_id: str) -> tuple[str, str]:
        key = (tenant, team, agent_id)
        got = self._labels.get(key)
        if got is None:
            got = self._labels[key] = (
                f'agent_id="{esc(agent_id)}"',
                f'team="{esc(team)}",tenant="{esc(tenant)}"}}',
            )
        return got

    def observed(
        self, tenant: str, team: str, snapshot_agents: Iterable[AgentObservation], out: Out
    ) -> None:
        """The state code, state since, entry and info lines of one team's snapshot. The tracker
        keeps an unchanged agent's observation (frozen), so the same object has the same lines:
        a team whose agents are all the objects of the last render keeps its joined text, and
        one with a few new objects in the same places writes only theirs."""
        key = (tenant, team)
        agents = tuple(snapshot_agents)
        old = self._teams.get(key)
        if old is None or len(old.agents) != len(agents):
            lines = self._team_built(key, agents, old)
        elif all(map(is_, agents, old.agents)):
            lines = old
        else:
            lines = self._team_patched(key, agents, old)
        out.teams[key] = lines
        out.agents += len(agents)
        out.code.append(lines.text[0])
        out.since.append(lines.text[1])
        out.entry.append(lines.text[2])
        out.info.append(lines.text[3])

    def _team_patched(
        self, key: tuple[str, str], agents: tuple[AgentObservation, ...], old: TeamLines
    ) -> TeamLines:
        """`old` with the lines of the places that hold a new object written again (the lines
        are in the snapshot's order, so whoever is now in a place gets that place)."""
        changed = [i for i, same in enumerate(map(is_, agents, old.agents)) if not same]
        columns = [list(c) for c in old.lines]
        for i in changed:
            for column, line in zip(columns, self._observed_lines(key, agents[i]), strict=True):
                column[i] = line
        return TeamLines.of(agents, columns)

    def _team_built(
        self, key: tuple[str, str], agents: tuple[AgentObservation, ...], old: TeamLines | None
    ) -> TeamLines:
        """The team's lines in its new order, reusing those of the objects seen last time."""
        kept = {id(a): i for i, a in enumerate(old.agents)} if old is not None else {}
        columns: list[list[str]] = [[], [], [], []]
        for a in agents:
            i = kept.get(id(a))  # the old object is held by `old`: its id is not reused
            if i is not None and old is not None and old.agents[i] is a:
                row: Sequence[str] = [c[i] for c in old.lines]
            else:
                row = self._observed_lines(key, a)
            for column, line in zip(columns, row, strict=True):
                column.append(line)
        return TeamLines.of(agents, columns)

    def _observed_lines(self, key: tuple[str, str], a: AgentObservation) -> tuple[str, ...]:
        n = self._names
        aid, tt = self.labels(key[0], key[1], a.agent_id)
        info = f'{n["info"]}{{{aid},name="{esc(a.name)}",{tt} 1.0\n'
        if not a.state.logged_on:
            return ("", "", "", info)
        code = go_float(float(STATE_CODES[a.state.kind]))
        since = go_float(a.since.timestamp())
        return (
            f"{n['code']}{{{aid},{tt} {code}\n",
            f'{n["since"]}{{{aid},state="{esc(a.state.kind.value)}",{tt} {since}\n',
            f'{n["entry"]}{{{aid},entry="{esc(a.entry)}",{tt} 1.0\n',
            info,
        )

    def evaluated(
        self,
        tenant: str,
        evaluations: Sequence[AgentEvaluation],
        index: dict[str, int],
        out: Out,
    ) -> None:
        """The scheduled activity and adherent lines of one tenant's evaluations, in agent id
        order. The engine's quiet path keeps an unchanged agent's evaluation (frozen) in the
        same place of its list: while the activities are the same, only the places holding a
        new object are looked at, and written again if what the lines show changed."""
        evs = list(evaluations)  # held: the identity test needs the objects of this render
        old = self._standing.get(tenant)
        if old is None or old.index != index or len(old.evaluations) != len(evs):
            standing = self._standing_built(tenant, evs, index)
        elif all(map(is_, evs, old.evaluations)):
            standing = old
        else:
            standing = self._standing_patched(tenant, evs, old) or self._standing_built(
                tenant, evs, index
            )
        out.standing[tenant] = standing
        out.activity.append(standing.text[0])
        out.adherent.append(standing.text[1])

    def _standing_built(
        self, tenant: str, evs: list[AgentEvaluation], index: dict[str, int]
    ) -> Standing:
        # a stable sort of the places by agent id: the order `sorted(evs, key=agent_id)` gives
        order = sorted(range(len(evs)), key=lambda i: evs[i].agent_id)
        rank = [0] * len(evs)
        activity: list[str] = []
        adherent: list[str] = []
        for r, i in enumerate(order):
            rank[i] = r
            lines = self._evaluated_lines(tenant, evs[i], index)
            activity.append(lines[0])
            adherent.append(lines[1])
        return Standing.of(index, evs, rank, activity, adherent)

    def _standing_patched(
        self, tenant: str, evs: list[AgentEvaluation], old: Standing
    ) -> Standing | None:
        """`old` with the lines of the new objects written again; None when an agent is not
        where it was (the order is then sorted again)."""
        before = old.evaluations
        changed = [i for i, same in enumerate(map(is_, evs, before)) if not same]
        activity, adherent = list(old.lines[0]), list(old.lines[1])
        for i in changed:
            ev, was = evs[i], before[i]
            if ev.agent_id != was.agent_id:
                return None
            if ev.team == was.team and ev.activity == was.activity and ev.adherent == was.adherent:
                continue  # the same lines: they show nothing else
            r = old.rank[i]
            activity[r], adherent[r] = self._evaluated_lines(tenant, ev, old.index)
        return Standing.of(old.index, evs, old.rank, activity, adherent)

    def _evaluated_lines(
        self, tenant: str, ev: AgentEvaluation, index: Mapping[str, int]
    ) -> tuple[str, str]:
        aid, tt = self.labels(tenant, ev.team, ev.agent_id)
        activity = adherent = ""
        if ev.activity is not None:
            value = go_float(float(index.get(ev.activity, -1)))
            activity = (
                f'{self._names["activity"]}{{activity="{esc(ev.activity)}",{aid},{tt} {value}\n'
            )
        if ev.adherent is not None:
            value = "1.0" if ev.adherent else "0.0"
            adherent = f"{self._names['adherent']}{{{aid},{tt} {value}\n"
        return activity, adherent

    def accrued(self, tenant: str, accruals: Sequence[Accrual], out: Out) -> None:
        """The four adherence counters of one tenant, per agent (summed like the collector:
        from 0.0, in float)."""
        sums: dict[tuple[str, str, str], tuple[float, float, float, float]] = {}
        for acc in accruals:
            key = (tenant, acc.team, acc.agent_id)
            v = sums.get(key, (0.0, 0.0, 0.0, 0.0))
            sums[key] = (
                v[0] + float(acc.adherent_seconds),
                v[1] + float(acc.scheduled_seconds),
                v[2] + float(acc.productive_seconds),
                v[3] + float(acc.productive_scheduled_seconds),
            )
        seen, old = out.accrued_keys, self._accrued
        adherent, scheduled, productive, productive_scheduled = out.counters
        for key, v in sorted(sums.items()):
            cached = old.get(key)
            if cached is None or cached[0] != v:
                aid, tt = self.labels(*key)
                p = f"{{{aid},{tt} "
                lines = (f"{p}{fmt(v[0])}\n", f"{p}{fmt(v[1])}\n", f"{p}{fmt(v[2])}\n",
                         f"{p}{fmt(v[3])}\n")  # fmt: skip
                cached = (v, lines)
            seen[key] = cached
            row = cached[1]
            adherent.append(row[0])
            scheduled.append(row[1])
            productive.append(row[2])
            productive_scheduled.append(row[3])

    def counted(self, tenant: str, agents: Mapping[str, Totals], out: Out) -> None:
        """The four adherence counters of one tenant straight from the engine's memory (agent
        id -> totals; one entry per agent, so nothing to sum). Their numbers change every cycle
        for every scheduled agent, so only the order and the label prefixes are kept (while the
        agents and their teams stay the same); the numbers are formatted at each render."""
        rows = self._rows.get(tenant)
        if rows is None or not _same_agents(rows, agents):
            rows = self._sorted_rows(tenant, agents)
        out.rows[tenant] = rows
        pairs = [(p, agents[aid]) for aid, _, p in rows]
        r, g = repr, go_float
        # `x + 0.0` is the collector's `0.0 + float(x)`; below 1e6 a non-negative float is
        # written as `repr` writes it (see `fmt`), anything else goes to client_python
        adherent, scheduled, productive, productive_scheduled = out.counters
        adherent += [
            f"{p}{r(v) if 0.0 <= (v := m.adherent_seconds + 0.0) < 1e6 else g(v)}\n"
            for p, m in pairs
        ]
        scheduled += [
            f"{p}{r(v) if 0.0 <= (v := m.scheduled_seconds + 0.0) < 1e6 else g(v)}\n"
            for p, m in pairs
        ]
        productive += [
            f"{p}{r(v) if 0.0 <= (v := m.productive_seconds + 0.0) < 1e6 else g(v)}\n"
            for p, m in pairs
        ]
        productive_scheduled += [
            f"{p}{r(v) if 0.0 <= (v := m.productive_scheduled_seconds + 0.0) < 1e6 else g(v)}\n"
            for p, m in pairs
        ]

    def counted_state(self, tenant: str, state: EngineState, out: Out) -> None:
        """The four adherence counters of one tenant from the engine's state itself, with the
        values `EngineState.current_totals` gives but without an object per lazy agent: each
        family's numbers as one column (memory + one duration per base, by the agent's flags),
        and a line whose number is the one it was written with at the last render kept (an
        unscheduled agent's, or a flag that is off: only the moving numbers are formatted)."""
        agents = state.agents
        kept = self._counts.get(tenant)
        if kept is None or not _same_agents(kept.rows, agents):
            kept = Counts.of(self._sorted_rows(tenant, agents))
        values = _current_columns(kept, state)
        before = kept.values or (None, None, None, None)
        lines = tuple(
            _count_lines(kept.prefixes, v, before[i], kept.lines[i], out.texts)
            for i, v in enumerate(values)
        )
        out.counts[tenant] = Counts(kept.rows, kept.pos, kept.prefixes, values, lines)
        for column, new in zip(out.counters, lines, strict=True):
            column.extend(new)

    def _sorted_rows(self, tenant: str, agents: Mapping[str, Totals]) -> Rows:
        rows = []
        for team, aid in sorted((m.team, aid) for aid, m in agents.items()):
            a, tt = self.labels(tenant, team, aid)
            rows.append((aid, team, f"{{{a},{tt} "))
        return rows

    def keep_only(self, out: Out) -> None:
        """Forget the lines of agents this render did not show (they left or changed)."""
        self._teams = out.teams
        self._standing = out.standing
        self._accrued = out.accrued_keys
        self._rows = out.rows
        self._counts = out.counts
        if len(self._labels) > 2 * (out.agents + len(out.counters[0]) + 16):
            self._labels = {}


@dataclass(frozen=True, slots=True)
class TeamLines:
    """One team's observed agents (held, so their ids stay theirs), the four lines of each
    (code, since, entry, info; "" where an agent has none) and each family's lines joined."""

    agents: tuple[AgentObservation, ...]
    lines: tuple[list[str], ...]
    text: tuple[str, ...]

    @classmethod
    def of(cls, agents: tuple[AgentObservation, ...], columns: list[list[str]]) -> TeamLines:
        return cls(agents, tuple(columns), tuple("".join(c) for c in columns))


@dataclass(frozen=True, slots=True)
class Standing:
    """One tenant's evaluations (held, in the engine's order), the activity index they were
    written with, each one's place in agent id order, and the activity and adherent lines in
    that order ("" where an agent has none), joined."""

    index: dict[str, int]
    evaluations: list[AgentEvaluation]
    rank: list[int]
    lines: tuple[list[str], list[str]]
    text: tuple[str, str]

    @classmethod
    def of(
        cls,
        index: dict[str, int],
        evaluations: list[AgentEvaluation],
        rank: list[int],
        activity: list[str],
        adherent: list[str],
    ) -> Standing:
        text = ("".join(activity), "".join(adherent))
        return cls(index, evaluations, rank, (activity, adherent), text)


@dataclass(frozen=True, slots=True)
class Counts:
    """One tenant's counter rows (agent id, team, label prefix) in the collector's order, each
    agent's place in them, and the numbers (adherent, scheduled, productive, productive
    scheduled, each a column in that order) and lines of the last render (none before one)."""

    rows: Rows
    pos: dict[str, int]
    prefixes: list[str]
    values: tuple[list[float], ...]
    lines: tuple[list[str], ...]

    @classmethod
    def of(cls, rows: Rows) -> Counts:
        pos = {aid: i for i, (aid, _, _) in enumerate(rows)}
        return cls(rows, pos, [p for _, _, p in rows], (), ([], [], [], []))


def _current_columns(counts: Counts, state: EngineState) -> tuple[list[float], ...]:
    """Each agent's four totals as `current_totals` has them, plus 0.0 as the collector adds
    them (so no -0.0 is left: equal numbers have equal lines), in the order of `counts.rows`."""
    agents = state.agents
    mems = [agents[aid] for aid, _, _ in counts.rows]
    adh = [m.adherent_seconds + 0.0 for m in mems]
    sch = [m.scheduled_seconds + 0.0 for m in mems]
    pro = [m.productive_seconds + 0.0 for m in mems]
    psc = [m.productive_scheduled_seconds + 0.0 for m in mems]
    pos = counts.pos
    for aid, m, q, dur in state.lazy_stretches():
        i = pos[aid]
        if q.adherent:
            adh[i] = m.adherent_seconds + dur + 0.0
        if q.scheduled:
            sch[i] = m.scheduled_seconds + dur + 0.0
        if q.productive:
            pro[i] = m.productive_seconds + dur + 0.0
        if q.productive_scheduled:
            psc[i] = m.productive_scheduled_seconds + dur + 0.0
    return adh, sch, pro, psc


def _count_lines(
    prefixes: list[str],
    values: list[float],
    before: list[float] | None,
    lines: list[str],
    texts: dict[float, str],
) -> list[str]:
    """One counter family's lines (without the name); a number equal to the one of the same
    place at the last render keeps its line (NaN never equals: it is written again). Numbers
    are written once per render (`texts`: agents that share a shift share their totals, and
    `repr` of a float costs more than the rest of a line), as `number` writes them."""
    text = texts.get
    if before is None:
        return [
            f"{p}{text(v) or number(texts, v)}\n" for p, v in zip(prefixes, values, strict=True)
        ]
    return [
        line if v == old else f"{p}{text(v) or number(texts, v)}\n"
        for p, v, old, line in zip(prefixes, values, before, lines, strict=True)
    ]


def number(texts: dict[float, str], value: float) -> str:
    """`value` (a float, never -0.0) as client_python writes it, kept in `texts`: equal floats
    other than 0.0 and -0.0 have the same text. Below 1e6 a non-negative float is written as
    `repr` writes it (see `fmt`)."""
    text = texts[value] = repr(value) if 0.0 <= value < 1e6 else go_float(value)
    return text


@dataclass
class Out:
    """The text of one render, per family (gauges: joined lines with their names, one chunk
    per team or tenant; counters: lines without the name), and the cache entries it used."""

    code: list[str]
    since: list[str]
    entry: list[str]
    info: list[str]
    activity: list[str]
    adherent: list[str]
    counters: tuple[list[str], list[str], list[str], list[str]]
    teams: dict[tuple[str, str], TeamLines]
    standing: dict[str, Standing]
    accrued_keys: dict[tuple[str, ...], Any]
    rows: dict[str, Rows]
    counts: dict[str, Counts]
    texts: dict[float, str]  # the counters' numbers written so far, see `number`
    agents: int = 0

    @classmethod
    def empty(cls) -> Out:
        return cls([], [], [], [], [], [], ([], [], [], []), {}, {}, {}, {}, {}, {})


def _same_agents(rows: Rows, agents: Mapping[str, Totals]) -> bool:
    """Whether `rows` still lists exactly `agents`, each in its team."""
    if len(rows) != len(agents):
        return False
    get = agents.get
    for aid, team, _ in rows:
        m = get(aid)
        if m is None or m.team != team:
            return False
    return True


def join(families: Sequence[tuple[Family, str]], *, openmetrics: bool) -> str:
    """Each family's header and its sample lines."""
    parts: list[str] = []
    for family, text in families:
        parts.append(family.om_header if openmetrics else family.text_header)
        parts.append(text)
    return "".join(parts)


def named(family: Family, lines: list[str]) -> str:
    """`lines` (each `{labels} value`, without the name) with the family's sample name."""
    if not lines:
        return ""
    name = family.sample_name
    return name + name.join(lines)
