"""The Prometheus exporter: a custom collector over the latest snapshots, and its HTTP app.

`SnapshotCollector.collect()` builds fresh metric families from `LatestSnapshots`, the pollers'
health, each tenant's client counters and (optionally) the engine's `EngineView` at every scrape.
Nothing is kept in labelled client_python metrics, so an agent who logs off or leaves the snapshot
and a queue removed from Puzzel simply disappear from the next scrape. Metric names and labels are
exactly those of docs/metrics.md.

`build_http_app(...)` serves `/metrics` (content negotiation between OpenMetrics and text 0.0.4 by
client_python's aiohttp handler: exactly one Content-Type), `/` (a landing page), `/healthz` (200
while the process runs) and `/readyz` (200 once every tenant's first agent-state poll succeeded
and no readiness check reports a problem, such as Redis down or schedules lost; else 503 saying
why), plus any extra routes and middlewares (the `/api/v1` routes with
`monitor.http.auth.bearer_middleware`).
"""

from __future__ import annotations

import html
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any, Protocol

from aiohttp import hdrs, web
from prometheus_client import CollectorRegistry, disable_created_metrics
from prometheus_client.aiohttp import make_aiohttp_handler
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder

from monitor import __version__
from monitor.core.states import STATE_CODES, StateKind
from monitor.engine.model import Accrual, AgentEvaluation, AlertTransition
from monitor.http.agent_exposition import (
    COUNTER_FIELDS,
    AgentLines,
    Family,
    Out,
    Totals,
    join,
    named,
    render_families,
)
from monitor.ingest.pollers import DURATION_BUCKETS, LatestSnapshots, PollHealth
from monitor.puzzel.stats import ClientStats

DEFAULT_PORT = 8912
UNKNOWN_PAUSE_TYPE = "unknown"
UNKNOWN_TEAM = "unknown"


class EngineView(Protocol):
    """What the exporter reads from the engine (the lead's pipeline implements it)."""

    def agent_evaluations(self, tenant: str) -> Sequence[AgentEvaluation]:
        """Where each agent stands now."""
        ...

    def accrued(self, tenant: str) -> Sequence[Accrual]:
        """Cumulative seconds per agent since the monitor started (counters: never decrease)."""
        ...

    def open_alerts(self, tenant: str) -> Sequence[AlertTransition]:
        """The firing transition of every alert open now."""
        ...

    def activities(self, tenant: str) -> Sequence[str]:
        """The activity names, in order: `scheduled_activity_code` is an index in this list."""
        ...


class TenantSource(Protocol):
    """One tenant's pollers as the exporter sees them (`monitor.ingest.pollers.TenantPollers`)."""

    @property
    def tenant(self) -> str: ...

    @property
    def health(self) -> Mapping[str, PollHealth]: ...

    @property
    def ready(self) -> bool: ...

    def overruns(self) -> Mapping[str, int]: ...

    def supported(self) -> Mapping[str, bool]: ...


class _HasStats(Protocol):
    @property
    def stats(self) -> ClientStats: ...


class SnapshotCollector:
    """Builds every puzzelmon_ family from current data at each `collect()`."""

    def __init__(
        self,
        store: LatestSnapshots,
        *,
        tenants: Callable[[], Sequence[TenantSource]] = list,
        clients: Callable[[], Mapping[str, _HasStats]] = dict,
        engine: EngineView | None = None,
        per_agent_series: bool = True,
        version: str = __version__,
    ) -> None:
        self.store = store
        self.tenants = tenants
        self.clients = clients
        self.engine = engine
        self.per_agent = per_agent_series
        self.version = version
        # set while `Exporter.render` writes the per-agent families itself (`AgentLines`) and
        # the queue families from its cache
        self.skip_agent_families = False
        self.skip_queue_families = False
        # set while `Exporter.render` (per-agent series off) puts the cached queue text where
        # the queue families belong: the collector yields this family there instead
        self.queue_slot: Metric | None = None

    def describe(self) -> list[Metric]:
        # no up-front description: registering must not run a collection
        return []

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily("puzzelmon_build_info", "Always 1.", labels=["version"])
        info.add_metric([self.version], 1.0)
        yield info
        yield from self._health()
        yield from self._client_counters()
        yield from self._agents()
        if self.engine is not None:
            yield from self._engine(self.engine)
        if self.queue_slot is not None:
            yield self.queue_slot
        elif not self.skip_queue_families:
            yield from self._queues()
        yield from self._tickers()

    # --- poll health and client counters ----------------------------------------------------

    def _health(self) -> Iterator[Metric]:
        labels = ["tenant", "endpoint"]
        up = GaugeMetricFamily(
            "puzzelmon_up", "1 if the last poll of this endpoint kind succeeded.", labels=labels
        )
        last = GaugeMetricFamily(
            "puzzelmon_last_success_timestamp_seconds",
            "Time of the last successful poll.",
            labels=labels,
        )
        duration = HistogramMetricFamily(
            "puzzelmon_poll_duration_seconds", "Duration of polls.", labels=labels
        )
        polls = CounterMetricFamily("puzzelmon_polls_total", "Polls started.", labels=labels)
        failures = CounterMetricFamily(
            "puzzelmon_poll_failures_total", "Polls that failed.", labels=labels
        )
        overruns = CounterMetricFamily(
            "puzzelmon_poll_overruns_total",
            "Runs skipped because the previous one was still running.",
            labels=labels,
        )
        supported = GaugeMetricFamily(
            "puzzelmon_endpoint_supported",
            "1 if the tenant answers this endpoint, 0 if it answered 404/405 (polling it stops "
            "and it is asked again hourly). Absent: not called yet, or turned off.",
            labels=labels,
        )
        for source in self.tenants():
            skipped = source.overruns()
            for endpoint, ok in sorted(source.supported().items()):
                supported.add_metric([source.tenant, endpoint], 1.0 if ok else 0.0)
            for kind, h in sorted(source.health.items()):
                key = [source.tenant, kind]
                if h.supported is not False:  # an endpoint the tenant lacks is not "down"
                    up.add_metric(key, 1.0 if h.up else 0.0)
                if h.last_success is not None:
                    last.add_metric(key, h.last_success.timestamp())
                buckets = [
                    (_le(b), float(c))
                    for b, c in zip(DURATION_BUCKETS, h.duration_buckets, strict=True)
                ]
                buckets.append(("+Inf", float(h.duration_count)))
                duration.add_metric(key, buckets, h.duration_sum)
                polls.add_metric(key, float(h.polls))
                failures.add_metric(key, float(h.failures))
                overruns.add_metric(key, float(skipped.get(kind, h.overruns)))
        yield from (up, supported, last, duration, polls, failures, overruns)

    def _client_counters(self) -> Iterator[Metric]:
        labels = ["tenant", "endpoint"]
        requests = CounterMetricFamily(
            "puzzelmon_api_requests_total",
            "HTTP requests to Puzzel (endpoint = the client's endpoint table name).",
            labels=labels,
        )
        failures = CounterMetricFamily(
            "puzzelmon_api_request_failures_total",
            "Requests to Puzzel that ended in an error.",
            labels=labels,
        )
        retries = CounterMetricFamily(
            "puzzelmon_api_retries_total", "Retried requests to Puzzel.", labels=labels
        )
        rejected = CounterMetricFamily(
            "puzzelmon_rows_rejected",
            "Rows of Puzzel's answers dropped because a field failed validation "
            "(field = the first failing field, as Puzzel spells it).",
            labels=[*labels, "field"],
        )
        for tenant, client in sorted(self.clients().items()):
            for endpoint, s in sorted(client.stats.snapshot().items()):
                requests.add_metric([tenant, endpoint], float(s.requests))
                failures.add_metric([tenant, endpoint], float(s.failures))
                retries.add_metric([tenant, endpoint], float(s.retries))
                for field_name, count in sorted(s.rejected.items()):
                    rejected.add_metric([tenant, endpoint, field_name], float(count))
        yield from (requests, failures, retries, rejected)

    # --- agents -----------------------------------------------------------------------------

    def _agents(self) -> Iterator[Metric]:
        agents = GaugeMetricFamily(
            "puzzelmon_agents",
            "Agents by state, from the latest agent-state poll of each team.",
            labels=["tenant", "team", "state"],
        )
        paused = GaugeMetricFamily(
            "puzzelmon_agents_paused",
            "Paused agents by pause type, from the latest agent-state poll.",
            labels=["tenant", "team", "pause_type"],
        )
        code, since, entry, info = (agent_family(n) for n in ("code", "since", "entry", "info"))
        per_agent = self.per_agent and not self.skip_agent_families
        for tenant in sorted(self.store.agents):
            for team, snap in sorted(self.store.agents[tenant].items()):
                counts = dict.fromkeys(StateKind, 0)
                pauses: dict[str, int] = defaultdict(int)
                for a in snap.agents:
                    counts[a.state.kind] += 1
                    if a.state.kind is StateKind.PAUSE:
                        pauses[a.state.pause_type or UNKNOWN_PAUSE_TYPE] += 1
                    if per_agent and a.state.logged_on:
                        key = [tenant, team, a.agent_id]
                        code.add_metric(key, float(STATE_CODES[a.state.kind]))
                        since.add_metric([*key, a.state.kind.value], a.since.timestamp())
                        entry.add_metric([*key, a.entry], 1.0)
                for kind, n in counts.items():
                    agents.add_metric([tenant, team, kind.value], float(n))
                for pause_type, n in sorted(pauses.items()):
                    paused.add_metric([tenant, team, pause_type], float(n))
        yield from (agents, paused)
        if per_agent:
            yield from (code, since, entry, self._agent_info(info))

    def _agent_info(self, info: GaugeMetricFamily) -> Metric:
        for tenant in sorted(self.store.agents):
            for team, snap in sorted(self.store.agents[tenant].items()):
                for a in snap.agents:
                    info.add_metric([tenant, team, a.agent_id, a.name], 1.0)
        return info

    def _engine(self, engine: EngineView) -> Iterator[Metric]:
        tenants = sorted({*self.store.agents, *(s.tenant for s in self.tenants())})
        activity, adherent = agent_family("activity"), agent_family("adherent")
        counters = {f: counter_family(f, per_agent=self.per_agent) for f in COUNTER_FIELDS}
        # with skip_agent_families the per-agent lines come from `AgentLines` instead
        per_agent = self.per_agent and not self.skip_agent_families
        with_counters = not (self.per_agent and self.skip_agent_families)
        exceptions = GaugeMetricFamily(
            "puzzelmon_exceptions",
            "Open exceptions (alerts firing).",
            labels=["tenant", "team", "rule"],
        )
        started = GaugeMetricFamily(
            "puzzelmon_exception_started_timestamp_seconds",
            "When each open exception's condition began.",
            labels=["tenant", "team", "agent_id", "rule"],
        )
        # queues are few and named by Puzzel, so their exceptions are listed whatever
        # per_agent_series says (the dashboards' current-exceptions table shows both kinds)
        queue_started = GaugeMetricFamily(
            "puzzelmon_queue_exception_started_timestamp_seconds",
            "When each open queue exception's condition began.",
            labels=["tenant", "queue", "rule"],
        )
        for tenant in tenants:
            if per_agent:
                self._agent_standing(engine, tenant, activity, adherent)
            if with_counters:
                self._accrued(engine, tenant, counters)
            self._open_exceptions(engine, tenant, exceptions, (started, queue_started))
        if per_agent:
            yield from (activity, adherent)
        if with_counters:
            yield from counters.values()
        yield from (exceptions, queue_started)
        if self.per_agent:
            yield started

    @staticmethod
    def _agent_standing(
        engine: EngineView, tenant: str, activity: GaugeMetricFamily, adherent: GaugeMetricFamily
    ) -> None:
        index = {name: i for i, name in enumerate(engine.activities(tenant))}
        for ev in sorted(engine.agent_evaluations(tenant), key=lambda e: e.agent_id):
            key = [tenant, ev.team, ev.agent_id]
            if ev.activity is not None:
                activity.add_metric([*key, ev.activity], float(index.get(ev.activity, -1)))
            if ev.adherent is not None:
                adherent.add_metric(key, 1.0 if ev.adherent else 0.0)

    def _accrued(
        self, engine: EngineView, tenant: str, counters: dict[str, CounterMetricFamily]
    ) -> None:
        # each sum from 0.0, adding the agents in the engine's order, in float: one tuple of
        # the four (in COUNTER_FIELDS order) per key instead of a dict per key and field
        sums: dict[tuple[str, ...], tuple[float, float, float, float]] = {}
        zero = (0.0, 0.0, 0.0, 0.0)
        per_agent = self.per_agent
        for agent_id, acc in _totals(engine, tenant, per_agent=per_agent):
            key = (tenant, acc.team, agent_id) if per_agent else (tenant, acc.team)
            v = sums.get(key, zero)
            sums[key] = (
                v[0] + float(acc.adherent_seconds),
                v[1] + float(acc.scheduled_seconds),
                v[2] + float(acc.productive_seconds),
                v[3] + float(acc.productive_scheduled_seconds),
            )
        families = [counters[f] for f in COUNTER_FIELDS]
        for labels, values in sorted(sums.items()):
            for family, value in zip(families, values, strict=True):
                family.add_metric(list(labels), value)

    def _open_exceptions(
        self,
        engine: EngineView,
        tenant: str,
        exceptions: GaugeMetricFamily,
        started: tuple[GaugeMetricFamily, GaugeMetricFamily],  # agents', queues'
    ) -> None:
        agent_started, queue_started = started
        open_counts: dict[tuple[str, str], int] = defaultdict(int)
        for alert in engine.open_alerts(tenant):
            team = alert.team or ""
            open_counts[(team, alert.rule.value)] += 1
            if self.per_agent and alert.subject == "agent":
                agent_started.add_metric(
                    [tenant, team, alert.subject_id, alert.rule.value],
                    alert.condition_since.timestamp(),
                )
            elif alert.subject == "queue":
                queue_started.add_metric(
                    [tenant, alert.subject_id, alert.rule.value],
                    alert.condition_since.timestamp(),
                )
        for (team, rule), n in sorted(open_counts.items()):
            exceptions.add_metric([tenant, team, rule], float(n))

    # --- queues and tickers -----------------------------------------------------------------

    def queue_families(self) -> list[Metric]:
        """The queue families alone (`Exporter.render` caches them per queue snapshot)."""
        return list(self._queues())

    def _queues(self) -> Iterator[Metric]:
        labels = ["tenant", "queue", "queue_name"]

        def gauge(name: str, doc: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, labels=labels)

        def counter(name: str, doc: str) -> CounterMetricFamily:
            return CounterMetricFamily(name, doc, labels=labels)

        gauges: list[tuple[GaugeMetricFamily, Callable[[Any], float | None]]] = [
            (
                gauge("puzzelmon_queue_requests_waiting", "Requests waiting now."),
                _attr("queue_size"),
            ),
            (
                gauge("puzzelmon_queue_wait_max_seconds", "Longest current wait."),
                _attr("wait_time_max_seconds"),
            ),
            (
                gauge("puzzelmon_queue_wait_average_seconds", "Average current wait."),
                _attr("wait_time_average_seconds"),
            ),
            (
                gauge("puzzelmon_queue_agents_logged_on", "Agents logged on to the queue."),
                _attr("agents_logged_on"),
            ),
            (gauge("puzzelmon_queue_agents_ready", "Agents ready."), _attr("agents_ready")),
            (gauge("puzzelmon_queue_agents_paused", "Agents in pause."), _attr("agents_in_pause")),
            (
                gauge("puzzelmon_queue_service_level_ratio", "Puzzel's service level (sla / 100)."),
                lambda q: None if q.sla_percent is None else float(q.sla_percent) / 100.0,
            ),
        ]
        counters: list[tuple[CounterMetricFamily, Callable[[Any], float | None]]] = [
            (
                counter(
                    "puzzelmon_queue_offered", "Requests offered today (resets at local midnight)."
                ),
                _attr("calls_offered_today"),
            ),
            (
                counter("puzzelmon_queue_answered", "Requests answered today."),
                _attr("calls_answered_today"),
            ),
            (
                counter("puzzelmon_queue_abandoned", "Requests abandoned today."),
                _attr("calls_abandoned_today"),
            ),
            (
                counter("puzzelmon_queue_answered_within_sla", "Answered within SLA today."),
                _attr("calls_answered_within_sla"),
            ),
        ]
        for tenant, snap in sorted(self.store.queues.items()):
            for q in sorted(snap.queues, key=lambda q: q.queue_id):
                key = [tenant, q.queue_id, q.description]
                # a value Puzzel did not report gets no series, rather than a made-up 0
                for g, get in gauges:
                    _add(g, key, get(q))
                for c, get in counters:
                    _add(c, key, get(q))
        yield from (g for g, _ in gauges)
        yield from (c for c, _ in counters)

    def _tickers(self) -> Iterator[Metric]:
        ap_labels = ["tenant", "access_point"]
        ap_offered = CounterMetricFamily(
            "puzzelmon_access_point_offered", "Requests offered today.", labels=ap_labels
        )
        ap_answered = CounterMetricFamily(
            "puzzelmon_access_point_answered", "Requests answered today.", labels=ap_labels
        )
        team_labels = ["tenant", "team"]
        logged_on = CounterMetricFamily(
            "puzzelmon_team_logged_on_seconds",
            "Agents' logged-on seconds today, summed per team (agent stats).",
            labels=team_labels,
        )
        pause = CounterMetricFamily(
            "puzzelmon_team_pause_seconds",
            "Agents' pause seconds today, summed per team (agent stats).",
            labels=team_labels,
        )
        for tenant, kinds in sorted(self.store.tickers.items()):
            aps = kinds.get("access_point_tickers")
            if aps is not None:
                for row in sorted(aps.rows, key=lambda r: r.key):
                    ap_offered.add_metric([tenant, row.key], row.values.get("requests_offered", 0))
                    ap_answered.add_metric(
                        [tenant, row.key], row.values.get("requests_answered", 0)
                    )
            stats = kinds.get("agent_stats")
            if stats is not None:
                teams: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
                for row in stats.rows:
                    t = teams[row.description or UNKNOWN_TEAM]
                    t[0] += row.values.get("logged_on_seconds", 0.0)
                    t[1] += row.values.get("in_pause_seconds", 0.0)
                for team, (on, paused) in sorted(teams.items()):
                    logged_on.add_metric([tenant, team], on)
                    pause.add_metric([tenant, team], paused)
        yield from (ap_offered, ap_answered, logged_on, pause)


_AGENT_FAMILIES: dict[str, tuple[str, str, list[str]]] = {
    "code": (
        "puzzelmon_agent_state_code",
        "Agent state as a number: 0 logged_off, 1 available, 2 connecting, 3 connected, "
        "4 busy, 5 wrap_up, 6 no_answer, 7 pause, 8 unknown. Logged-off agents are absent.",
        ["tenant", "team", "agent_id"],
    ),
    "since": (
        "puzzelmon_agent_state_since_timestamp_seconds",
        "When the agent entered the current state (first poll that saw it, or exact from "
        "the per-user status duration).",
        ["tenant", "team", "agent_id", "state"],
    ),
    "entry": (
        "puzzelmon_agent_state_entry",
        "Always 1; `entry` says where the state's entry time comes from: exact (a status "
        "duration), transition (a poll saw the change) or first_seen (the agent was already "
        "in the state when the monitor first saw it: the time in state is at least this).",
        ["tenant", "team", "agent_id", "entry"],
    ),
    # names live on one info series so the other per-agent series need no name label (a
    # rename would otherwise split their history); dashboards join on agent_id
    "info": (
        "puzzelmon_agent_info",
        "Always 1: the agent's name, for joins on agent_id. Every agent of the latest "
        "agent-state poll, logged on or not.",
        ["tenant", "team", "agent_id", "name"],
    ),
    "activity": (
        "puzzelmon_agent_scheduled_activity_code",
        "Scheduled activity now (value: index in the activity list); absent when unscheduled.",
        ["tenant", "team", "agent_id", "activity"],
    ),
    "adherent": (
        "puzzelmon_agent_adherent",
        "1 adherent, 0 not; absent when unscheduled or in a neutral activity.",
        ["tenant", "team", "agent_id"],
    ),
}

_COUNTERS: dict[str, tuple[str, str]] = {
    "adherent_seconds": (
        "puzzelmon_adherent_seconds_total",
        "Seconds scheduled and in an allowed state.",
    ),
    "scheduled_seconds": (
        "puzzelmon_scheduled_seconds_total",
        "Seconds scheduled (non-neutral activities).",
    ),
    "productive_seconds": (
        "puzzelmon_productive_seconds_total",
        "Seconds in a state allowed by the productive activity, scheduled or not.",
    ),
    "productive_scheduled_seconds": (
        "puzzelmon_productive_scheduled_seconds_total",
        "Seconds scheduled as the productive activity.",
    ),
}


def agent_family(kind: str) -> GaugeMetricFamily:
    """An empty per-agent gauge family (`code`, `since`, `entry`, `info`, `activity`,
    `adherent`): the one definition of its name, help and labels."""
    name, doc, labels = _AGENT_FAMILIES[kind]
    return GaugeMetricFamily(name, doc, labels=labels)


def counter_family(field: str, *, per_agent: bool) -> CounterMetricFamily:
    """An empty adherence counter family (`COUNTER_FIELDS`)."""
    name, doc = _COUNTERS[field]
    labels = ["tenant", "team", "agent_id"] if per_agent else ["tenant", "team"]
    return CounterMetricFamily(name, doc, labels=labels)


def _add(
    family: GaugeMetricFamily | CounterMetricFamily, key: list[str], value: float | None
) -> None:
    if value is not None:
        family.add_metric(key, value)


def _attr(name: str) -> Callable[[Any], float | None]:
    def get(obj: Any) -> float | None:
        value = getattr(obj, name)
        return None if value is None else float(value)

    return get


def _totals(engine: EngineView, tenant: str, *, per_agent: bool) -> Iterable[tuple[str, Totals]]:
    """(agent id, totals) per agent in the order of `engine.accrued` (by agent id). For the
    team sums, an engine that lends its memory of each agent (`totals_by_agent`, which the
    per-agent counters' lines read too) spares building an `Accrual` per agent at every
    render: the sums see the same numbers in the same order."""
    by_agent = getattr(engine, "totals_by_agent", None)
    if per_agent or by_agent is None:
        return ((a.agent_id, a) for a in engine.accrued(tenant))
    lent: Mapping[str, Totals] = by_agent(tenant)
    return sorted(lent.items(), key=itemgetter(0))


def _le(bound: float) -> str:
    return repr(float(bound))


class Exporter:
    """A fresh registry holding the snapshot collector (other components may register their own
    metrics on `registry`, e.g. alert delivery), and `render`, what `/metrics` serves.

    `registry` alone renders everything through client_python (the reference). `render` renders
    the same families, but with per-agent series on it writes the per-agent families itself
    from cached lines (`monitor.http.agent_exposition`), after everything else; and it keeps
    each rendered body for `render_cache_seconds`, so that scrapes arriving together (two
    Prometheus servers, a dashboard) cost one render."""

    def __init__(
        self,
        store: LatestSnapshots,
        *,
        tenants: Callable[[], Sequence[TenantSource]] = list,
        clients: Callable[[], Mapping[str, _HasStats]] = dict,
        engine: EngineView | None = None,
        per_agent_series: bool = True,
        registry: CollectorRegistry | None = None,
        render_cache_seconds: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        # client_python's counters add an undocumented `*_created` series each; dashboards and
        # rules never use them, so they only cost series (a process-wide switch in the library)
        disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped upstream
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=False)
        self.collector = SnapshotCollector(
            store,
            tenants=tenants,
            clients=clients,
            engine=engine,
            per_agent_series=per_agent_series,
        )
        self.registry.register(self.collector)
        self._tenants = tenants
        self._lines = (
            AgentLines({k: agent_family(k).name for k in _AGENT_FAMILIES})
            if per_agent_series
            else None
        )
        self._families = _fast_families(with_engine=engine is not None)
        self._cache: dict[str, tuple[float, bytes]] = {}
        # the queue families, rendered once per queue snapshot (a queue poll every 15 s): the
        # snapshots they were rendered from, and the text per format
        self._queue_cache: tuple[list[tuple[str, object]], dict[bool, bytes]] = ([], {})
        self.render_cache_seconds = render_cache_seconds
        self._monotonic = monotonic
        self.renders = 0  # bodies rendered (not served from the render cache)
        # more reasons not to be ready (name -> reason), e.g. Redis down or schedules lost
        self.readiness_checks: list[Callable[[], Mapping[str, str]]] = []
        # replicas sharing tenants: which this one works (added to every /readyz answer); a
        # replica that works none is ready (a standby), the others are judged by their tenants
        self.ownership: Callable[[], Mapping[str, Any]] | None = None

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The body of `/metrics` for this Accept header, and its Content-Type."""
        encoder, content_type = choose_encoder(accept)
        now = self._monotonic()
        cached = self._cache.get(content_type)
        if cached is not None and 0 <= now - cached[0] < self.render_cache_seconds:
            return cached[1], content_type
        body = self._render(encoder, openmetrics=content_type.startswith(OPENMETRICS))
        self._cache = {content_type: (now, body)}
        self.renders += 1
        return body, content_type

    def _render(self, encoder: Callable[[CollectorRegistry], bytes], *, openmetrics: bool) -> bytes:
        if self._lines is None:
            return self._render_without_agents(openmetrics=openmetrics)
        c = self.collector
        c.skip_agent_families = c.skip_queue_families = True
        try:
            head = encoder(self.registry)
        finally:
            c.skip_agent_families = c.skip_queue_families = False
        queues = self._queue_text(openmetrics=openmetrics)
        tail = queues + self._agent_text(self._lines, openmetrics=openmetrics).encode()
        if openmetrics:
            return head.removesuffix(EOF) + tail + EOF
        return head + tail

    def _render_without_agents(self, *, openmetrics: bool) -> bytes:
        """The registry as client_python renders it, family for family in its order, but with
        the queue families (most of the series here) from the queue cache in their place."""
        c = self.collector
        c.queue_slot = slot = GaugeMetricFamily("puzzelmon_queue_slot", "")
        try:
            families = list(self.registry.collect())
        finally:
            c.queue_slot = None
        at = next(i for i, f in enumerate(families) if f is slot)
        head = render_families(families[:at], openmetrics=openmetrics)
        tail = render_families(families[at + 1 :], openmetrics=openmetrics)
        body = head + self._queue_text(openmetrics=openmetrics) + tail
        return body + EOF if openmetrics else body

    def _queue_text(self, *, openmetrics: bool) -> bytes:
        """The queue families as client_python renders them, from the cache while every
        tenant's queue snapshot is the one they were rendered from."""
        now = sorted(self.collector.store.queues.items())
        then, texts = self._queue_cache
        same = len(now) == len(then) and all(
            a[0] == b[0] and a[1] is b[1] for a, b in zip(now, then, strict=True)
        )
        if not same:
            texts = {}
            self._queue_cache = (list(now), texts)  # holds the snapshots: `is` stays sound
        text = texts.get(openmetrics)
        if text is None:
            text = texts[openmetrics] = render_families(
                self.collector.queue_families(), openmetrics=openmetrics
            )
        return text

    def _agent_text(self, lines: AgentLines, *, openmetrics: bool) -> str:
        c = self.collector
        out = Out.empty()
        for tenant in sorted(c.store.agents):
            for team, snap in sorted(c.store.agents[tenant].items()):
                lines.observed(tenant, team, snap.agents, out)
        if c.engine is not None:
            for tenant in sorted({*c.store.agents, *(s.tenant for s in self._tenants())}):
                index = {name: i for i, name in enumerate(c.engine.activities(tenant))}
                lines.evaluated(tenant, c.engine.agent_evaluations(tenant), index, out)
                _count(lines, c.engine, tenant, out)
        lines.keep_only(out)
        f = self._families
        chosen = [(f[i], "".join(c)) for i, c in enumerate((out.code, out.since, out.entry))]
        chosen.append((f[3], "".join(out.info)))
        if c.engine is not None:
            chosen += [(f[4], "".join(out.activity)), (f[5], "".join(out.adherent))]
            chosen += [(f[6 + i], named(f[6 + i], out.counters[i])) for i in range(4)]
        return join(chosen, openmetrics=openmetrics)

    def problems(self) -> dict[str, str]:
        return {k: v for check in self.readiness_checks for k, v in check().items()}

    def readiness(self) -> dict[str, bool]:
        """Tenant -> whether its first agent-state poll has succeeded."""
        return {t.tenant: t.ready for t in self._tenants()}


def _count(lines: AgentLines, engine: EngineView, tenant: str, out: Out) -> None:
    """One tenant's adherence counters, from the cheapest source the engine offers: its state
    (`engine_state(tenant)`, read, not copied: lazy agents' totals derived in columns), its
    memory of each agent (`totals_by_agent(tenant)`: agent id -> `Totals`), else `Accrual`s."""
    state_of = getattr(engine, "engine_state", None)
    if state_of is not None:
        lines.counted_state(tenant, state_of(tenant), out)
        return
    by_agent = getattr(engine, "totals_by_agent", None)
    if by_agent is None:
        lines.accrued(tenant, engine.accrued(tenant), out)
    else:
        lines.counted(tenant, by_agent(tenant), out)


OPENMETRICS = "application/openmetrics-text"
EOF = b"# EOF\n"


def _fast_families(*, with_engine: bool) -> list[Family]:
    kinds = ["code", "since", "entry", "info"] + (["activity", "adherent"] if with_engine else [])
    families = [Family.of(agent_family(k)) for k in kinds]
    if with_engine:
        families += [Family.of(counter_family(f, per_agent=True)) for f in COUNTER_FIELDS]
    return families


_LANDING = """<!doctype html>
<html><head><meta charset="utf-8"><title>puzzel-monitor</title></head>
<body><h1>puzzel-monitor {version}</h1>
<p>Real-time telemetry and WFM adherence monitoring for Puzzel contact centres.</p>
<ul>
<li><a href="/metrics">/metrics</a>: Prometheus metrics</li>
<li><a href="/healthz">/healthz</a>: liveness</li>
<li><a href="/readyz">/readyz</a>: readiness (first agent-state poll of every tenant)</li>
</ul></body></html>
"""


def build_http_app(
    exporter: Exporter,
    *,
    routes: Iterable[web.AbstractRouteDef] | Iterable[Iterable[web.AbstractRouteDef]] = (),
    middlewares: Sequence[Any] = (),
    readiness: Callable[[], Mapping[str, bool]] | None = None,
) -> web.Application:
    """The exporter's aiohttp application, with extra route lists and middlewares mounted."""
    app = web.Application(middlewares=list(middlewares))
    ready_of = readiness or exporter.readiness

    async def landing(request: web.Request) -> web.Response:
        return web.Response(
            text=_LANDING.format(version=html.escape(__version__)), content_type="text/html"
        )

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        states = ready_of()
        waiting = sorted(t for t, ok in states.items() if not ok)
        problems = exporter.problems()
        owned = dict(exporter.ownership()) if exporter.ownership is not None else {}
        if problems and (states or owned) and not waiting:
            body = {"ready": False, "problems": problems, **owned}
            return web.json_response(body, status=503)
        if waiting or not (states or owned):
            return web.json_response(
                {
                    "ready": False,
                    "waiting_for": waiting,
                    "reason": "no successful agent-state poll yet"
                    if states
                    else "no tenants are being polled",
                    **owned,
                },
                status=503,
            )
        return web.json_response({"ready": True, "tenants": sorted(states), **owned})

    app.router.add_get("/", landing)
    reference = make_aiohttp_handler(exporter.registry)

    async def metrics(request: web.Request) -> web.StreamResponse:
        if "name[]" in request.query:  # a selection of families: client_python's own path
            return await reference(request)
        body, content_type = exporter.render(",".join(request.headers.getall(hdrs.ACCEPT, [])))
        response = web.Response(body=body, headers={hdrs.CONTENT_TYPE: content_type})
        response.enable_compression()
        return response

    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    for item in routes:
        if isinstance(item, web.AbstractRouteDef):
            app.router.add_routes([item])
        else:
            app.router.add_routes(list(item))
    return app
