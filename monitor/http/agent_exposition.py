"""The per-agent metric families written as exposition text directly, with cached lines.

At 10,000 agents these ten families are ~80,000 of the exporter's series, and building them as
client_python families (a `Sample` and a label dict per series, label names checked by regex and
values escaped per sample at every render) was most of a cycle's CPU. Here each agent's lines
are kept with the observation and evaluation objects they were written from (the tracker and
the engine's quiet path keep an unchanged agent's objects, so a kept object means kept lines);
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
from operator import attrgetter
from typing import Any, Protocol

from prometheus_client.core import Metric
from prometheus_client.exposition import generate_latest as text_generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as om_generate_latest
from prometheus_client.utils import floatToGoString

from monitor.core.snapshots import AgentObservation
from monitor.core.states import STATE_CODES
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
    families' lines, in the order `SnapshotCollector` yields them, under their headers."""

    def __init__(self) -> None:
        # (tenant, team, agent_id) -> ('agent_id="…"', 'team="…",tenant="…"}')
        self._labels: dict[tuple[str, str, str], tuple[str, str]] = {}
        # (tenant, team) -> id(observation) -> (observation, its lines)
        self._observed: dict[tuple[str, str], dict[int, Any]] = {}
        # tenant -> (activity index, id(evaluation) -> (evaluation, its two lines))
        self._evaluated: dict[str, tuple[dict[str, int], dict[int, Any]]] = {}
        self._accrued: dict[tuple[str, ...], tuple[tuple[float, ...], tuple[str, ...]]] = {}
        self._rows: dict[str, Rows] = {}

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
        """The state code, state since, entry and info lines of one team's snapshot, kept per
        observation object: the tracker keeps an unchanged agent's observation (frozen), so the
        same object has the same lines, and a new one is written afresh."""
        old = self._observed.get((tenant, team), {})
        seen: dict[int, tuple[AgentObservation, tuple[str, ...]]] = {}
        out.observed_keys[(tenant, team)] = seen
        code, since, entry, info = out.code, out.since, out.entry, out.info
        for a in snapshot_agents:
            cached = old.get(id(a))  # the object is held by the cache: its id is not reused
            if cached is None or cached[0] is not a:
                cached = (a, self._observed_lines((tenant, team, a.agent_id), a))
            seen[id(a)] = cached
            lines = cached[1]
            if lines[0]:  # logged on
                code.append(lines[0])
                since.append(lines[1])
                entry.append(lines[2])
            info.append(lines[3])

    def _observed_lines(self, key: tuple[str, str, str], a: AgentObservation) -> tuple[str, ...]:
        aid, tt = self.labels(*key)
        info = f'{{{aid},name="{esc(a.name)}",{tt} 1.0\n'
        if not a.state.logged_on:
            return ("", "", "", info)
        code = go_float(float(STATE_CODES[a.state.kind]))
        since = go_float(a.since.timestamp())
        return (
            f"{{{aid},{tt} {code}\n",
            f'{{{aid},state="{esc(a.state.kind.value)}",{tt} {since}\n',
            f'{{{aid},entry="{esc(a.entry)}",{tt} 1.0\n',
            info,
        )

    def evaluated(
        self,
        tenant: str,
        evaluations: Sequence[AgentEvaluation],
        index: dict[str, int],
        out: Out,
    ) -> None:
        """The scheduled activity and adherent lines of one tenant's evaluations, kept per
        evaluation object while the activities are the same (the engine's quiet path keeps an
        unchanged agent's evaluation, frozen)."""
        then_index, old = self._evaluated.get(tenant, (index, {}))
        if then_index != index:
            old = {}
        seen: dict[int, tuple[AgentEvaluation, str, str]] = {}
        out.evaluated_keys[tenant] = (index, seen)
        activity, adherent = out.activity, out.adherent
        for ev in sorted(evaluations, key=_agent_id):
            cached = old.get(id(ev))  # the object is held by the cache: its id is not reused
            if cached is None or cached[0] is not ev:
                cached = (ev, *self._evaluated_lines(tenant, ev, index.get(ev.activity or "", -1)))
            seen[id(ev)] = cached
            if cached[1]:
                activity.append(cached[1])
            if cached[2]:
                adherent.append(cached[2])

    def _evaluated_lines(self, tenant: str, ev: AgentEvaluation, index: int) -> tuple[str, str]:
        aid, tt = self.labels(tenant, ev.team, ev.agent_id)
        activity = adherent = ""
        if ev.activity is not None:
            value = go_float(float(index))
            activity = f'{{activity="{esc(ev.activity)}",{aid},{tt} {value}\n'
        if ev.adherent is not None:
            adherent = f"{{{aid},{tt} {'1.0' if ev.adherent else '0.0'}\n"
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

    def _sorted_rows(self, tenant: str, agents: Mapping[str, Totals]) -> Rows:
        rows = []
        for team, aid in sorted((m.team, aid) for aid, m in agents.items()):
            a, tt = self.labels(tenant, team, aid)
            rows.append((aid, team, f"{{{a},{tt} "))
        return rows

    def keep_only(self, out: Out) -> None:
        """Forget the lines of agents this render did not show (they left or changed)."""
        self._observed = out.observed_keys
        self._evaluated = out.evaluated_keys
        self._accrued = out.accrued_keys
        self._rows = out.rows
        if len(self._labels) > 2 * (len(out.info) + len(out.counters[0]) + 16):
            self._labels = {}


@dataclass
class Out:
    """The lines of one render, per family, and the cache entries it used."""

    code: list[str]
    since: list[str]
    entry: list[str]
    info: list[str]
    activity: list[str]
    adherent: list[str]
    counters: tuple[list[str], list[str], list[str], list[str]]
    observed_keys: dict[tuple[str, str], dict[int, Any]]
    evaluated_keys: dict[str, tuple[dict[str, int], dict[int, Any]]]
    accrued_keys: dict[tuple[str, ...], Any]
    rows: dict[str, Rows]

    @classmethod
    def empty(cls) -> Out:
        return cls([], [], [], [], [], [], ([], [], [], []), {}, {}, {}, {})


_agent_id = attrgetter("agent_id")


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


def join(families: Sequence[tuple[Family, list[str]]], *, openmetrics: bool) -> str:
    """Each family's header and its lines (every line is `{labels} value`, without the name)."""
    parts: list[str] = []
    for family, lines in families:
        parts.append(family.om_header if openmetrics else family.text_header)
        if lines:
            name = family.sample_name
            parts.append(name)
            parts.append(name.join(lines))
    return "".join(parts)
