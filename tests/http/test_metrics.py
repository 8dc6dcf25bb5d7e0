"""The exporter: samples from hand-made snapshots, series lifecycle, promtool, HTTP."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from monitor.core.snapshots import (
    AgentObservation,
    AgentSnapshot,
    QueueObservation,
    QueueSnapshot,
    TickerRow,
    TickerSnapshot,
)
from monitor.core.states import AgentState, StateKind
from monitor.engine.model import Accrual, AgentEvaluation, AlertTransition, RuleName
from monitor.http.metrics import Exporter, build_http_app
from monitor.ingest.pollers import LatestSnapshots, PollHealth
from monitor.puzzel.stats import ClientStats

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
TENANT = "12345"


def agent(aid: str, state: AgentState, team: str = "Support", since: float = 0) -> AgentObservation:
    return AgentObservation(aid, f"A {aid}", team, state, T0 + timedelta(seconds=since))


def agent_cycle(*agents: AgentObservation, team: str = "Support") -> AgentSnapshot:
    return AgentSnapshot(TENANT, team, T0, tuple(agents))


@dataclass
class FakeTenant:
    tenant: str
    health: dict[str, PollHealth] = field(default_factory=dict)
    ready: bool = False
    refreshed: int = 0

    def overruns(self) -> dict[str, int]:
        self.refreshed += 1
        return {k: h.overruns for k, h in self.health.items()}

    def supported(self) -> dict[str, bool]:
        return {k: h.supported for k, h in self.health.items() if h.supported is not None}


@dataclass
class FakeClient:
    stats: ClientStats = field(default_factory=ClientStats)


@dataclass
class FakeEngine:
    evaluations: list[AgentEvaluation] = field(default_factory=list)
    accruals: list[Accrual] = field(default_factory=list)
    alerts: list[AlertTransition] = field(default_factory=list)

    def agent_evaluations(self, tenant: str) -> Sequence[AgentEvaluation]:
        return self.evaluations

    def accrued(self, tenant: str) -> Sequence[Accrual]:
        return self.accruals

    def open_alerts(self, tenant: str) -> Sequence[AlertTransition]:
        return self.alerts

    def activities(self, tenant: str) -> Sequence[str]:
        return ["phone", "break", "lunch", "meeting"]


def filled_store() -> LatestSnapshots:
    store = LatestSnapshots()
    store.put_agents(
        TENANT,
        [
            agent_cycle(
                agent("1", AgentState(StateKind.AVAILABLE), since=10),
                agent("2", AgentState(StateKind.PAUSE, "Break"), since=20),
                agent("3", AgentState(StateKind.PAUSE, "Break")),
                agent("4", AgentState(StateKind.LOGGED_OFF)),
            ),
            agent_cycle(agent("5", AgentState(StateKind.BUSY), team="Sales"), team="Sales"),
        ],
    )
    store.put_queues(
        TENANT,
        QueueSnapshot(
            TENANT,
            T0,
            (
                QueueObservation("4101", "Support NO", queue_size=3, wait_time_max_seconds=95,
                                 calls_offered_today=58, sla_percent=92),
                QueueObservation("4102", "Sales NO", queue_size=0),
            ),
        ),
    )  # fmt: skip
    store.put_ticker(
        TENANT,
        TickerSnapshot(
            TENANT,
            "agent_stats",
            T0,
            (
                TickerRow("1", "Support", {"logged_on_seconds": 100, "in_pause_seconds": 10}),
                TickerRow("2", "Support", {"logged_on_seconds": 50, "in_pause_seconds": 30}),
            ),
        ),
    )
    store.put_ticker(
        TENANT,
        TickerSnapshot(
            TENANT,
            "access_point_tickers",
            T0,
            (TickerRow("+4722000000", "Main", {"requests_offered": 7, "requests_answered": 6}),),
        ),
    )
    return store


def health(endpoint: str, *, up: bool, polls: int, failures: int) -> PollHealth:
    h = PollHealth(TENANT, endpoint, up=up, polls=polls, failures=failures, overruns=1)
    h.last_success = T0 if up else None
    h.observe_duration(0.2)
    h.observe_duration(3.0)
    return h


def make_exporter(
    store: LatestSnapshots, *, engine: FakeEngine | None = None, per_agent: bool = True
) -> tuple[Exporter, FakeTenant]:
    tenant = FakeTenant(
        TENANT,
        {
            "user_states": health("user_states", up=True, polls=4, failures=1),
            "queues": health("queues", up=False, polls=2, failures=2),
            "agent_stats": health("agent_stats", up=False, polls=1, failures=0),
        },
        ready=True,
    )
    tenant.health["user_states"].supported = True
    tenant.health["agent_stats"].supported = False  # answered 404: the tenant lacks it
    client = FakeClient()
    client.stats.of("user_group_state_information").rejected["userId"] = 3
    client.stats.of("user_group_state_information").requests = 12
    client.stats.of("user_group_state_information").failures = 2
    client.stats.of("user_group_state_information").retries = 1
    clients: Mapping[str, FakeClient] = {TENANT: client}
    exporter = Exporter(
        store,
        tenants=lambda: [tenant],
        clients=lambda: clients,
        engine=engine,
        per_agent_series=per_agent,
    )
    return exporter, tenant


def test_snapshot_samples() -> None:
    """Agent, queue, ticker, health and client families carry the snapshot values."""
    exporter, _ = make_exporter(filled_store())
    value = exporter.registry.get_sample_value
    t = {"tenant": TENANT}
    assert value("puzzelmon_build_info", {"version": "0.1.0"}) == 1
    assert value("puzzelmon_agents", {**t, "team": "Support", "state": "pause"}) == 2
    assert value("puzzelmon_agents", {**t, "team": "Support", "state": "available"}) == 1
    assert value("puzzelmon_agents", {**t, "team": "Support", "state": "logged_off"}) == 1
    assert value("puzzelmon_agents", {**t, "team": "Support", "state": "busy"}) == 0
    assert value("puzzelmon_agents", {**t, "team": "Sales", "state": "busy"}) == 1
    assert value("puzzelmon_agents_paused", {**t, "team": "Support", "pause_type": "Break"}) == 2
    per_agent = {**t, "team": "Support", "agent_id": "2"}
    assert value("puzzelmon_agent_state_code", per_agent) == 7
    assert value(
        "puzzelmon_agent_state_since_timestamp_seconds", {**per_agent, "state": "pause"}
    ) == (T0.timestamp() + 20)
    # logged-off agents have no per-agent series
    assert value("puzzelmon_agent_state_code", {**t, "team": "Support", "agent_id": "4"}) is None
    q = {**t, "queue": "4101", "queue_name": "Support NO"}
    assert value("puzzelmon_queue_requests_waiting", q) == 3
    assert value("puzzelmon_queue_wait_max_seconds", q) == 95
    assert value("puzzelmon_queue_service_level_ratio", q) == pytest.approx(0.92)
    assert value("puzzelmon_queue_offered_total", q) == 58
    assert value("puzzelmon_access_point_offered_total", {**t, "access_point": "+4722000000"}) == 7
    assert value("puzzelmon_team_logged_on_seconds_total", {**t, "team": "Support"}) == 150
    assert value("puzzelmon_team_pause_seconds_total", {**t, "team": "Support"}) == 40
    us = {**t, "endpoint": "user_states"}
    assert value("puzzelmon_up", us) == 1
    assert value("puzzelmon_up", {**t, "endpoint": "queues"}) == 0
    assert value("puzzelmon_last_success_timestamp_seconds", us) == T0.timestamp()
    assert value("puzzelmon_last_success_timestamp_seconds", {**t, "endpoint": "queues"}) is None
    assert value("puzzelmon_polls_total", us) == 4
    assert value("puzzelmon_poll_failures_total", us) == 1
    assert value("puzzelmon_poll_overruns_total", us) == 1
    assert value("puzzelmon_poll_duration_seconds_count", us) == 2
    assert value("puzzelmon_poll_duration_seconds_bucket", {**us, "le": "0.25"}) == 1
    assert value("puzzelmon_poll_duration_seconds_sum", us) == pytest.approx(3.2)
    ep = {**t, "endpoint": "user_group_state_information"}
    assert value("puzzelmon_api_requests_total", ep) == 12
    assert value("puzzelmon_api_request_failures_total", ep) == 2
    assert value("puzzelmon_api_retries_total", ep) == 1
    # no engine view: no engine families
    assert "puzzelmon_agent_adherent" not in generate_latest(exporter.registry).decode()


def test_agent_disappears_after_logoff_and_removed_queue_too() -> None:
    """An agent who logs off (or leaves the snapshot) and a removed queue are gone at the next
    scrape: nothing lingers."""
    store = filled_store()
    exporter, _ = make_exporter(store)
    value = exporter.registry.get_sample_value
    key = {"tenant": TENANT, "team": "Support", "agent_id": "1"}
    assert value("puzzelmon_agent_state_code", key) == 1
    logged_off, busy = AgentState(StateKind.LOGGED_OFF), AgentState(StateKind.BUSY)
    store.put_agents(TENANT, [agent_cycle(agent("1", logged_off), agent("2", busy))])
    assert value("puzzelmon_agent_state_code", key) is None
    assert value("puzzelmon_agent_state_code", {**key, "agent_id": "3"}) is None  # left
    assert value("puzzelmon_agent_state_code", {**key, "agent_id": "2"}) == 4
    store.put_queues(TENANT, QueueSnapshot(TENANT, T0, (QueueObservation("4102", "Sales NO"),)))
    assert "4101" not in generate_latest(exporter.registry).decode()


def engine_view() -> FakeEngine:
    since = T0 - timedelta(minutes=10)
    available, brk = AgentState(StateKind.AVAILABLE), AgentState(StateKind.PAUSE, "Break")
    busy = AgentState(StateKind.BUSY)
    return FakeEngine(
        evaluations=[
            AgentEvaluation("1", "Support", available, since, "phone", True, since),
            AgentEvaluation("2", "Support", brk, since, "phone", False, since),
            AgentEvaluation("5", "Sales", busy, since, None, None, None),
        ],
        accruals=[
            Accrual("1", "Support", scheduled_seconds=600, adherent_seconds=550,
                    productive_seconds=500),
            Accrual("2", "Support", scheduled_seconds=600, adherent_seconds=100),
        ],
        alerts=[
            AlertTransition(RuleName.BREAK_OVERRUN, "firing", TENANT, "agent", "2", "Support",
                            "warning", T0, T0, since),
            AlertTransition(RuleName.QUEUE_WAIT_ABOVE, "firing", TENANT, "queue", "4101", None,
                            "critical", T0, T0, since),
        ],
    )  # fmt: skip


def test_engine_families() -> None:
    """Engine-derived families come from the EngineView."""
    exporter, _ = make_exporter(filled_store(), engine=engine_view())
    value = exporter.registry.get_sample_value
    a1 = {"tenant": TENANT, "team": "Support", "agent_id": "1"}
    a2 = {**a1, "agent_id": "2"}
    assert value("puzzelmon_agent_scheduled_activity_code", {**a1, "activity": "phone"}) == 0
    assert value("puzzelmon_agent_adherent", a1) == 1
    assert value("puzzelmon_agent_adherent", a2) == 0
    assert value("puzzelmon_agent_adherent", {**a1, "team": "Sales", "agent_id": "5"}) is None
    assert value("puzzelmon_adherent_seconds_total", a1) == 550
    assert value("puzzelmon_scheduled_seconds_total", a2) == 600
    assert value("puzzelmon_productive_seconds_total", a1) == 500
    rule = {"tenant": TENANT, "team": "Support", "rule": "break_overrun"}
    assert value("puzzelmon_exceptions", rule) == 1
    assert value("puzzelmon_exceptions", {**rule, "team": "", "rule": "queue_wait_above"}) == 1
    started = (T0 - timedelta(minutes=10)).timestamp()
    assert (
        value("puzzelmon_exception_started_timestamp_seconds", {**a2, "rule": "break_overrun"})
        == started
    )


def test_per_agent_series_off_drops_agent_id_and_sums_per_team() -> None:
    """With per_agent_series off, per-agent families vanish and counters are summed per team."""
    exporter, _ = make_exporter(filled_store(), engine=engine_view(), per_agent=False)
    text = generate_latest(exporter.registry).decode()
    assert "agent_id" not in text
    for name in (
        "puzzelmon_agent_state_code",
        "puzzelmon_agent_state_since_timestamp_seconds",
        "puzzelmon_agent_scheduled_activity_code",
        "puzzelmon_agent_adherent",
        "puzzelmon_exception_started_timestamp_seconds",
    ):
        assert f"\n{name}{{" not in text
    value = exporter.registry.get_sample_value
    team = {"tenant": TENANT, "team": "Support"}
    assert value("puzzelmon_scheduled_seconds_total", team) == 1200
    assert value("puzzelmon_adherent_seconds_total", team) == 650
    assert value("puzzelmon_agents", {**team, "state": "pause"}) == 2


def test_unsupported_endpoints_and_rejected_rows() -> None:
    """An endpoint the tenant lacks: supported 0 and no `up` series; one it answers: supported
    1; an endpoint never answered yet: no supported series. Rejected rows by field."""
    exporter, _ = make_exporter(filled_store())
    value = exporter.registry.get_sample_value
    t = {"tenant": TENANT}
    assert value("puzzelmon_endpoint_supported", {**t, "endpoint": "agent_stats"}) == 0
    assert value("puzzelmon_up", {**t, "endpoint": "agent_stats"}) is None
    assert value("puzzelmon_endpoint_supported", {**t, "endpoint": "user_states"}) == 1
    assert value("puzzelmon_endpoint_supported", {**t, "endpoint": "queues"}) is None
    assert value("puzzelmon_up", {**t, "endpoint": "queues"}) == 0
    rejected = {**t, "endpoint": "user_group_state_information", "field": "userId"}
    assert value("puzzelmon_rows_rejected_total", rejected) == 3


def test_metric_names_match_the_reference() -> None:
    """Every family exported is listed in docs/metrics.md with the same labels."""
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text()
    documented = {
        m.group(1): {x.strip().rstrip("*") for x in m.group(2).split(",") if x.strip()}
        for m in re.finditer(r"^\| `(puzzelmon_\w+)` \| \w+ \| ([^|]*) \|", doc, re.M)
    }
    exporter, _ = make_exporter(filled_store(), engine=engine_view())
    text = generate_latest(exporter.registry).decode()
    seen: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = re.sub(r"_(bucket|count|sum)$", "", sample.name)
            labels = set(sample.labels) - {"le"}
            seen.setdefault(name, set()).update(labels)
    # alert delivery and the Redis guard register their own metrics, not the exporter
    # ...and so do the leases of replicas sharing tenants (monitor.app.replicas)
    others = (
        "puzzelmon_notification",
        "puzzelmon_outbox",
        "puzzelmon_sink",
        "puzzelmon_redis",
        "puzzelmon_tenant_owned",
        "puzzelmon_fenced_writes",
    )
    ours = {n for n in documented if not n.startswith(others)}
    assert set(seen) == ours
    for name, labels in seen.items():
        assert labels == documented[name], name


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_check_metrics_passes() -> None:
    """`promtool check metrics` accepts the exposition, with and without the engine."""
    for engine in (None, engine_view()):
        exporter, _ = make_exporter(filled_store(), engine=engine)
        out = generate_latest(exporter.registry)
        proc = subprocess.run(
            ["promtool", "check", "metrics"],
            input=out,
            capture_output=True,
            timeout=30,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()
        # the OpenMetrics form is complete too
        openmetrics: bytes = generate_openmetrics(exporter.registry)  # type: ignore[no-untyped-call]  # untyped upstream
        assert openmetrics.endswith(b"# EOF\n")


async def test_http_content_negotiation_and_probes() -> None:
    """/metrics answers exactly one valid Content-Type per Accept header; /, /healthz and
    /readyz answer as documented."""
    store = filled_store()
    exporter, tenant = make_exporter(store)
    app = build_http_app(exporter)
    async with TestClient(TestServer(app)) as client:
        prom_accept = (
            "application/openmetrics-text;version=1.0.0;q=0.5,"
            "text/plain;version=0.0.4;q=0.4,*/*;q=0.1"
        )
        resp = await client.get("/metrics", headers={"Accept": prom_accept})
        assert resp.status == 200
        content_types = resp.headers.getall("Content-Type")
        assert len(content_types) == 1
        assert content_types[0].startswith("application/openmetrics-text; version=1.0.0;")
        body = await resp.text()
        assert body.endswith("# EOF\n")
        assert "puzzelmon_agents{" in body
        for accept in ("text/plain;version=0.0.4", None):
            headers = {"Accept": accept} if accept else {}
            resp = await client.get("/metrics", headers=headers)
            content_types = resp.headers.getall("Content-Type")
            assert len(content_types) == 1
            assert content_types[0].startswith("text/plain; version=0.0.4;")
            assert "# EOF" not in await resp.text()

        resp = await client.get("/")
        assert resp.status == 200
        assert "/metrics" in await resp.text()
        assert (await client.get("/healthz")).status == 200
        resp = await client.get("/readyz")
        assert resp.status == 200
        tenant.ready = False
        resp = await client.get("/readyz")
        assert resp.status == 503
        assert (await resp.json())["waiting_for"] == [TENANT]


async def test_extra_routes_and_middlewares_are_mounted() -> None:
    """build_http_app mounts extra route lists and middlewares (e.g. the bearer API)."""
    from aiohttp import web
    from pydantic import SecretStr

    from monitor.http.auth import bearer_middleware

    routes = web.RouteTableDef()

    @routes.get("/api/v1/ping")
    async def ping(request: web.Request) -> web.Response:
        return web.json_response({"pong": True})

    exporter, _ = make_exporter(LatestSnapshots())
    app = build_http_app(
        exporter, routes=[routes], middlewares=[bearer_middleware(SecretStr("s3cret-token"))]
    )
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/api/v1/ping")).status == 401
        ok = await client.get("/api/v1/ping", headers={"Authorization": "Bearer s3cret-token"})
        assert ok.status == 200
        assert (await client.get("/metrics")).status == 200  # not behind the token


def test_each_exporter_has_its_own_registry() -> None:
    """Two exporters never share a registry (no global REGISTRY)."""
    a, _ = make_exporter(LatestSnapshots())
    b, _ = make_exporter(filled_store())
    assert a.registry is not b.registry
    key = {"tenant": TENANT, "team": "Support", "state": "pause"}
    assert a.registry.get_sample_value("puzzelmon_agents", key) is None
    assert b.registry.get_sample_value("puzzelmon_agents", key) == 2


async def test_readyz_of_a_replica_names_what_it_owns_and_a_standby_is_ready() -> None:
    """With replicas, /readyz adds the ownership to every answer; one that owns no tenant (no
    pollers) is ready, unlike a single process with nothing to poll."""
    exporter = Exporter(LatestSnapshots())
    owned: dict[str, object] = {"replica": "r2", "owned_tenants": [], "delivers_outbox": False}
    app = build_http_app(exporter)
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/readyz")
        assert resp.status == 503  # no ownership reported: nothing polled is not ready
        exporter.ownership = lambda: owned
        resp = await client.get("/readyz")
        assert resp.status == 200
        assert await resp.json() == {"ready": True, "tenants": [], **owned}
        exporter.readiness_checks.append(lambda: {"redis": "down"})
        resp = await client.get("/readyz")
        assert resp.status == 503
        assert (await resp.json())["problems"] == {"redis": "down"}
