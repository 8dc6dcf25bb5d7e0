"""Pollers against the simulator served over real HTTP (virtual time, frozen between polls)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from monitor.app.service import make_client
from monitor.core.snapshots import AgentSnapshot, QueueSnapshot, TickerSnapshot
from monitor.core.states import StateKind
from monitor.http.metrics import Exporter
from monitor.ingest.cadence import Scheduler
from monitor.ingest.pollers import LatestSnapshots, TenantPollers
from tests.simserver import T0, SimServer


class RecordingSink:
    """A SnapshotSink that keeps what it was given."""

    def __init__(self) -> None:
        self.cycles: list[tuple[str, Sequence[AgentSnapshot]]] = []
        self.queues: list[QueueSnapshot] = []
        self.tickers: list[TickerSnapshot] = []

    async def on_agent_cycle(self, tenant: str, snapshots: Sequence[AgentSnapshot]) -> None:
        self.cycles.append((tenant, snapshots))

    async def on_queues(self, tenant: str, snapshot: QueueSnapshot) -> None:
        self.queues.append(snapshot)

    async def on_ticker(self, tenant: str, snapshot: TickerSnapshot) -> None:
        self.tickers.append(snapshot)


def endpoints_since(server: SimServer, start: int) -> Counter[str]:
    return Counter(str(r.endpoint) for r in server.sim.requests[start:])


@pytest.mark.parametrize("combined", [False, True], ids=["per_group", "combined"])
async def test_state_cycle_makes_one_request_per_group(
    make_sim_server: Callable[..., Any], combined: bool
) -> None:
    """With 1,000 agents in 10 groups and 20 queues, a state cycle makes one request per group
    (or one in all, combined) plus at most the per-user budget, and what it publishes matches
    the simulator."""
    server: SimServer = await make_sim_server(agents=1000, groups=10, queues=20)
    tenant = server.tenant(user_state_budget=10, combined_state_call=combined)
    state_calls = 1 if combined else 10
    store, sink = LatestSnapshots(), RecordingSink()
    async with aiohttp.ClientSession() as session:
        client = make_client(tenant, session=session, clock=server.clock)
        pollers = TenantPollers(tenant, client, server.clock, store, sink)

        start = len(server.sim.requests)
        await pollers.run_poll("user_states", pollers.poll_user_states)
        first = endpoints_since(server, start)
        # the first cycle also lists the groups, names pause types and gets a token
        assert first["user_group_state_information"] == state_calls
        assert first["user_groups"] == 1
        assert first["pause_types"] <= 1
        assert first["user_state_information"] <= 10
        assert set(first) <= {
            "user_group_state_information",
            "user_groups",
            "pause_types",
            "user_state_information",
            "oidc_token",
        }
        groups = [r.user_group_name for r in server.sim.requests[start:] if r.user_group_name]
        if combined:
            assert groups == []  # unfiltered: every group in one answer
        else:
            assert sorted(groups) == sorted(g.name for g in server.sim.centre.user_groups())

        for _ in range(3):
            server.clock.advance(5)
            start = len(server.sim.requests)
            await pollers.run_poll("user_states", pollers.poll_user_states)
            steady = endpoints_since(server, start)
            assert steady["user_group_state_information"] == state_calls
            assert steady["user_state_information"] <= 10
            assert steady["pause_types"] == steady["user_groups"] == 0  # cached
            assert sum(steady.values()) <= state_calls + 10
            assert pollers.last_cycle_requests == sum(steady.values())

        start = len(server.sim.requests)
        await pollers.run_poll("queues", pollers.poll_queues)
        assert endpoints_since(server, start) == Counter({"visual_queue_state_information": 1})

    # one cycle = one publication of all 10 groups
    assert len(sink.cycles) == 4
    assert len(sink.cycles[-1][1]) == 10
    truth = server.sim.agent_states()
    seen = {
        a.agent_id: a for snap in store.agent_snapshots(tenant.customer_key) for a in snap.agents
    }
    assert set(seen) == set(truth)
    for aid, (state, since) in truth.items():
        assert seen[aid].state.kind == state.kind
        if seen[aid].since_exact:
            assert abs((seen[aid].since - since).total_seconds()) <= 1.0
    assert any(a.since_exact for a in seen.values())
    pauses = [a for a in seen.values() if a.state.kind is StateKind.PAUSE]
    assert pauses
    assert all(a.state.pause_type for a in pauses)  # ids were turned into names
    queues = server.sim.queue_figures()
    assert len(sink.queues[-1].queues) == 20
    for q in sink.queues[-1].queues:
        assert q.queue_size == queues[q.queue_id]["queueSize"]
    health = pollers.health["user_states"]
    assert (health.up, health.polls, health.failures) == (True, 4, 0)


async def test_watched_queues_filter(make_sim_server: Callable[..., Any]) -> None:
    """Only the configured visual queues are published."""
    server: SimServer = await make_sim_server(queues=4)
    ids = sorted(server.sim.queue_figures())[:2]
    tenant = server.tenant(visual_queues=ids)
    store = LatestSnapshots()
    async with aiohttp.ClientSession() as session:
        client = make_client(tenant, session=session, clock=server.clock)
        pollers = TenantPollers(tenant, client, server.clock, store)
        await pollers.run_poll("queues", pollers.poll_queues)
    assert sorted(q.queue_id for q in store.queues[tenant.customer_key].queues) == ids


async def test_failing_endpoint_is_down_and_stale_while_others_keep_cadence(
    make_sim_server: Callable[..., Any],
) -> None:
    """A poller whose endpoint starts failing shows up 0 with a stale last-success time and
    logs once; the other pollers keep their cadence."""
    from structlog.testing import capture_logs

    server: SimServer = await make_sim_server()
    tenant = server.tenant(
        cadences={"user_states": "5s", "queues": "15s", "agent_stats": "10s",
                  "queue_ticker": "off", "access_points": "off", "jitter": "off"},
    )  # fmt: skip
    store = LatestSnapshots()
    scheduler = Scheduler(server.clock)
    async with aiohttp.ClientSession() as session:
        client = make_client(tenant, session=session, clock=server.clock)
        pollers = TenantPollers(tenant, client, server.clock, store)
        pollers.register(scheduler)
        exporter = Exporter(
            store, tenants=lambda: [pollers], clients=lambda: {tenant.customer_key: client}
        )
        await scheduler.run_until(T0 + timedelta(seconds=12))
        assert pollers.health["agent_stats"].up
        last_ok = pollers.health["agent_stats"].last_success
        assert last_ok == T0 + timedelta(seconds=10)

        server.broken.add("agentstats")
        with capture_logs() as logs:
            await scheduler.run_until(T0 + timedelta(seconds=61))

    value = exporter.registry.get_sample_value
    labels = {"tenant": tenant.customer_key, "endpoint": "agent_stats"}
    assert value("puzzelmon_up", labels) == 0
    assert value("puzzelmon_last_success_timestamp_seconds", labels) == last_ok.timestamp()
    assert value("puzzelmon_up", {**labels, "endpoint": "user_states"}) == 1
    assert (value("puzzelmon_poll_failures_total", labels) or 0) >= 3
    failures = [e for e in logs if e["event"] == "poll failed"]
    assert len(failures) == 1
    assert failures[0]["endpoint"] == "agent_stats"

    state_times = [
        r.monotonic
        for r in server.sim.requests
        if r.endpoint == "user_group_state_information"  # one combined call per cycle
    ]
    assert state_times == [5.0 * k for k in range(13)]
    queue_times = [
        r.monotonic for r in server.sim.requests if r.endpoint == "visual_queue_state_information"
    ]
    assert queue_times == [0.0, 15.0, 30.0, 45.0, 60.0]

    server.broken.clear()
    async with aiohttp.ClientSession() as session:
        client = make_client(tenant, session=session, clock=server.clock)
        pollers.client = client
        with capture_logs() as logs:
            await scheduler.run_until(T0 + timedelta(seconds=400))
    assert [e["event"] for e in logs if e["event"].startswith("poll ")] == ["poll recovered"]
    assert value("puzzelmon_up", labels) == 1
    assert isinstance(exporter.registry, CollectorRegistry)


async def test_rate_limited_poll_is_postponed_by_retry_after(
    make_sim_server: Callable[..., Any],
) -> None:
    """A 429 whose Retry-After overruns the call's deadline postpones that poller."""
    server: SimServer = await make_sim_server()
    tenant = server.tenant(
        cadences={"user_states": "5s", "queues": "off", "agent_stats": "off",
                  "queue_ticker": "off", "access_points": "off", "jitter": "off"},
    )  # fmt: skip
    store = LatestSnapshots()
    scheduler = Scheduler(server.clock)
    async with aiohttp.ClientSession() as session:
        client = make_client(tenant, session=session, clock=server.clock)
        pollers = TenantPollers(tenant, client, server.clock, store)
        pollers.register(scheduler)
        await scheduler.run_until(T0 + timedelta(seconds=1))  # token + first cycle
        server.sim.faults.throttle(100, retry_after=60)
        await scheduler.run_until(T0 + timedelta(seconds=6))
        server.sim.faults.clear()
        await scheduler.run_until(T0 + timedelta(seconds=80))
    job = scheduler.job(pollers.job_name("user_states"))
    assert job.stats.postponements >= 1
    times = sorted(
        {
            r.monotonic
            for r in server.sim.requests
            if r.endpoint == "user_group_state_information" and r.status == 200
        }
    )
    assert times[0] == 0.0
    assert times[1] >= 65.0  # nothing between the 429 at 5 s and its Retry-After
    assert pollers.health["user_states"].up


async def test_configured_groups_only(make_sim_server: Callable[..., Any]) -> None:
    """With a list of user groups, only those are asked for, and the group list is not read."""
    server: SimServer = await make_sim_server(groups=3)
    names = [g.name for g in server.sim.centre.user_groups()]
    tenant = server.tenant(user_groups=names[:2], user_state_budget=0)
    store = LatestSnapshots()
    async with aiohttp.ClientSession() as session:
        client = make_client(tenant, session=session, clock=server.clock)
        pollers = TenantPollers(tenant, client, server.clock, store)
        start = len(server.sim.requests)
        await pollers.run_poll("user_states", pollers.poll_user_states)
    asked = [r.user_group_name for r in server.sim.requests[start:] if r.endpoint]
    assert "user_groups" not in {r.endpoint for r in server.sim.requests[start:]}
    assert sorted(g for g in asked if g) == sorted(names[:2])
    assert sorted(store.agents[tenant.customer_key]) == sorted(names[:2])


async def test_missing_endpoint_is_unsupported_not_down_and_reprobed_hourly(
    make_sim_server: Callable[..., Any],
) -> None:
    """A 404 marks an optional endpoint unsupported: one warning, no further polls until the
    hourly re-probe, `puzzelmon_endpoint_supported` 0, no `puzzelmon_up` series for it, and it
    is left out of staleness; when it answers again it is supported again."""
    from structlog.testing import capture_logs

    server: SimServer = await make_sim_server()
    tenant = server.tenant(
        cadences={"user_states": "5s", "queues": "off", "agent_stats": "10s",
                  "queue_ticker": "off", "access_points": "off", "jitter": "off"},
    )  # fmt: skip
    store = LatestSnapshots()
    scheduler = Scheduler(server.clock)
    server.missing.add("agentstats")
    async with aiohttp.ClientSession() as session:
        client = make_client(tenant, session=session, clock=server.clock)
        pollers = TenantPollers(tenant, client, server.clock, store)
        pollers.register(scheduler)
        exporter = Exporter(
            store, tenants=lambda: [pollers], clients=lambda: {tenant.customer_key: client}
        )
        with capture_logs() as logs:
            await scheduler.run_until(T0 + timedelta(seconds=1800))
        value = exporter.registry.get_sample_value
        labels = {"tenant": tenant.customer_key, "endpoint": "agent_stats"}
        assert value("puzzelmon_endpoint_supported", labels) == 0
        assert value("puzzelmon_up", labels) is None
        assert value("puzzelmon_up", {**labels, "endpoint": "user_states"}) == 1
        assert pollers.unsupported() == {"agent_stats"}
        assert client.stats.of("agent_stats").requests == 1
        warnings = [e for e in logs if e["log_level"] == "warning"]
        assert [(e["event"], e["endpoint"]) for e in warnings] == [
            ("endpoint not supported by this tenant; asking again hourly", "agent_stats")
        ]
        assert not [e for e in logs if e["event"] == "poll failed"]

        server.missing.clear()
        await scheduler.run_until(T0 + timedelta(seconds=3700))
        assert client.stats.of("agent_stats").requests >= 2
        assert value("puzzelmon_endpoint_supported", labels) == 1
        assert value("puzzelmon_up", labels) == 1
        assert pollers.unsupported() == set()


async def test_unverified_endpoints_are_not_polled_unless_turned_on(
    make_sim_server: Callable[..., Any],
) -> None:
    """Without `endpoints:` the pollers of unverified paths are not registered at all."""
    server: SimServer = await make_sim_server()
    tenant = server.tenant(endpoints={})
    async with aiohttp.ClientSession() as session:
        client = make_client(tenant, session=session, clock=server.clock)
        pollers = TenantPollers(tenant, client, server.clock, LatestSnapshots())
        assert set(pollers.kinds()) == {"user_states", "queues"}
        on = server.tenant(endpoints={"agent_stats": True, "access_point_tickers": True})
        client_on = make_client(on, session=session, clock=server.clock)
        pollers_on = TenantPollers(on, client_on, server.clock, LatestSnapshots())
        assert set(pollers_on.kinds()) == {"user_states", "queues", "agent_stats", "access_points"}


async def test_public_profile_tracks_every_agent_with_pause_types_from_users(
    make_sim_server: Callable[..., Any],
) -> None:
    """Against the public profile (null names, Pause/Busy, no pause type in rows) every agent is
    tracked in the simulator's state kind and every pause gets its type from users/{userId}."""
    server: SimServer = await make_sim_server(agents=60, profile="public")
    tenant = server.tenant(endpoints={}, user_state_budget=60)
    store = LatestSnapshots()
    async with aiohttp.ClientSession() as session:
        client = make_client(tenant, session=session, clock=server.clock)
        pollers = TenantPollers(tenant, client, server.clock, store)
        await pollers.run_poll("user_states", pollers.poll_user_states)
        await pollers.run_poll("queues", pollers.poll_queues)
    truth = server.sim.centre.agent_states()
    seen = {a.agent_id: a for s in store.agent_snapshots(tenant.customer_key) for a in s.agents}
    assert set(seen) == set(truth)
    public_kind = {StateKind.LOGGED_OFF, StateKind.AVAILABLE, StateKind.PAUSE}
    for aid, (state, _) in truth.items():
        expected = state.kind if state.kind in public_kind else StateKind.BUSY
        assert seen[aid].state.kind == expected, aid
        if state.kind is StateKind.PAUSE:
            assert seen[aid].state.pause_type is not None
    # the public profile nulls firstName for ids divisible by 7: those rows are kept, named
    # by what they carry
    nulled = [u for u in server.sim.centre.users() if int(u.id) % 7 == 0 and int(u.id) % 11]
    assert nulled
    for u in nulled:
        assert seen[u.agent_id].name == u.last_name
    assert all(a.first_seen for a in seen.values())
    endpoints = Counter(str(r.endpoint) for r in server.sim.requests)
    assert endpoints["user"] == sum(1 for s, _ in truth.values() if s.kind is StateKind.PAUSE)
    for name in ("user_state_information", "pause_types", "agent_stats"):
        assert endpoints[name] == 0, name
    queues = store.queues[tenant.customer_key].queues
    assert any(q.calls_abandoned_today is None for q in queues)
    assert all(q.sla_percent is None for q in queues)
