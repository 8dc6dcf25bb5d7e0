"""`/metrics` as served (`Exporter.render`: per-agent families from cached lines) equals the
reference (client_python rendering the whole registry), family for family and byte for byte,
in both formats, through changes between renders; and it stays valid for promtool."""

from __future__ import annotations

import dataclasses
import random
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.utils import floatToGoString

from monitor.core.snapshots import AgentObservation, AgentSnapshot, QueueObservation, QueueSnapshot
from monitor.core.states import AgentState, StateKind
from monitor.engine.memory import AgentMemory, EngineState, LazyAgent, QuietPath
from monitor.engine.model import Accrual, AgentEvaluation
from monitor.http.agent_exposition import esc, fmt
from monitor.http.metrics import Exporter, build_http_app
from monitor.ingest.pollers import LatestSnapshots
from tests.http.test_metrics import T0, TENANT, FakeEngine, engine_view, filled_store, make_exporter

OPENMETRICS = "application/openmetrics-text;version=1.0.0"
DAY = timedelta(days=1)
PER_AGENT = (
    "puzzelmon_agent_state_code",
    "puzzelmon_agent_state_since_timestamp_seconds",
    "puzzelmon_agent_state_entry",
    "puzzelmon_agent_info",
    "puzzelmon_agent_scheduled_activity_code",
    "puzzelmon_agent_adherent",
    "puzzelmon_adherent_seconds_total",
    "puzzelmon_scheduled_seconds_total",
    "puzzelmon_productive_seconds_total",
    "puzzelmon_productive_scheduled_seconds_total",
)
# awkward label values: every character client_python escapes, and some it does not
NAMES = ['Ann "A" Berg', "back\\slash", "new\nline", "Åse Ødegård", "plain", "tab\tname"]
TEAMS = ["Support", 'Sales "B"', "Kundeservice Tromsø", "x\\y"]


def families(body: bytes) -> dict[str, str]:
    """Family name (as in its HELP line) -> its block of text, HELP line to the next HELP."""
    out: dict[str, str] = {}
    text = body.decode().removesuffix("# EOF\n")
    for block in text.split("# HELP ")[1:]:
        name = block.split(" ", 1)[0]
        assert name not in out, f"family {name} appears twice"
        out[name] = "# HELP " + block
    return out


def assert_same(exporter: Exporter) -> None:
    for accept, reference in (
        ("", generate_latest),
        ("text/plain;version=0.0.4", generate_latest),
        (OPENMETRICS, generate_openmetrics),
    ):
        exporter._cache.clear()  # a fresh render each time
        served, _ = exporter.render(accept)
        expected = reference(exporter.registry)
        assert families(served) == families(expected), accept
        if accept == OPENMETRICS:
            assert served.endswith(b"# EOF\n")
            assert served.count(b"# EOF") == 1


def random_centre(rng: random.Random, n: int) -> tuple[LatestSnapshots, FakeEngine]:
    kinds = list(StateKind)
    teams: dict[str, list[AgentObservation]] = {t: [] for t in TEAMS}
    engine = FakeEngine()
    for i in range(n):
        team = rng.choice(TEAMS)
        kind = rng.choice(kinds)
        state = AgentState(kind, rng.choice(["Break", None]) if kind is StateKind.PAUSE else None)
        since = T0 - timedelta(seconds=rng.randrange(0, 86400), microseconds=rng.randrange(10**6))
        aid = f"{i}" if i % 7 else f'id "{i}"\\'
        teams[team].append(
            AgentObservation(aid, rng.choice(NAMES), team, state, since,
                             since_exact=rng.random() < 0.3, first_seen=rng.random() < 0.2)
        )  # fmt: skip
        activity = rng.choice(["phone", "break", "meeting", "unknown-activity", None])
        adherent = None if activity is None else rng.choice([True, False, None])
        adherent_since = since if adherent else None
        engine.evaluations.append(
            AgentEvaluation(aid, team, state, since, activity, adherent, adherent_since)
        )
        if rng.random() < 0.8:
            engine.accruals.append(
                Accrual(aid, team, scheduled_seconds=rng.uniform(0, 3e4),
                        adherent_seconds=rng.choice([0, 1e-9, 123.456, 1e7 + 0.1]),
                        productive_seconds=rng.uniform(0, 1e6), productive_scheduled_seconds=0.1)
            )  # fmt: skip
    store = LatestSnapshots()
    store.put_agents(TENANT, [AgentSnapshot(TENANT, t, T0, tuple(a)) for t, a in teams.items()])
    return store, engine


def test_the_handmade_centre_renders_as_the_reference() -> None:
    for engine in (None, engine_view()):
        exporter, _ = make_exporter(filled_store(), engine=engine)
        assert_same(exporter)
        body, _ = exporter.render()
        assert set(PER_AGENT[:4]) <= set(families(body))


def test_a_random_centre_renders_as_the_reference_through_changes() -> None:
    """Lines are cached per agent: after states, teams, names, schedules and counters change,
    and agents leave and arrive, every render still equals the reference."""
    rng = random.Random(16)
    store, engine = random_centre(rng, 400)
    exporter, _ = make_exporter(store, engine=engine)
    assert_same(exporter)
    for _ in range(4):
        changed_store, changed_engine = random_centre(rng, 400)
        # keep about half of what was there, so cached and new lines mix
        engine.evaluations[::2] = changed_engine.evaluations[::2][: len(engine.evaluations[::2])]
        engine.accruals = changed_engine.accruals[: len(engine.accruals) - 5]
        store.agents[TENANT] = {
            team: snap if rng.random() < 0.5 else changed_store.agents[TENANT][team]
            for team, snap in store.agents[TENANT].items()
        }
        assert_same(exporter)


def test_agents_changed_in_place_render_as_the_reference() -> None:
    """Teams and evaluations are kept whole while their objects are the same, and patched
    where a few are new objects in the same places: states, names, activities, adherence
    and teams change in place, and agents swap places, and every render equals the
    reference."""
    rng = random.Random(1616)
    store, engine = random_centre(rng, 300)
    exporter, _ = make_exporter(store, engine=engine)
    assert_same(exporter)
    kinds = list(StateKind)
    for step in range(6):
        for team, snap in store.agents[TENANT].items():
            agents = list(snap.agents)
            for i in rng.sample(range(len(agents)), min(3, len(agents))):
                kind = rng.choice(kinds)
                agents[i] = replace(
                    agents[i],
                    state=AgentState(kind, "Break" if kind is StateKind.PAUSE else None),
                    name=rng.choice(NAMES),
                    since=agents[i].since + timedelta(seconds=step + 1),
                )
            if step == 3 and len(agents) > 1:  # two agents swap places
                agents[0], agents[-1] = agents[-1], agents[0]
            store.agents[TENANT][team] = replace(snap, agents=tuple(agents))
        evaluations = list(engine.evaluations)
        for i in rng.sample(range(len(evaluations)), 20):
            ev = evaluations[i]
            evaluations[i] = replace(
                ev,
                team=rng.choice(TEAMS) if i % 4 == 0 else ev.team,
                activity=rng.choice(["phone", "break", None]),
                adherent=rng.choice([True, False, None]),
            )
        for i in rng.sample(range(len(evaluations)), 5):  # only the team changes
            evaluations[i] = replace(evaluations[i], team=f"moved {step}")
        if step == 4:  # two agents swap places in the engine's list
            evaluations[0], evaluations[-1] = evaluations[-1], evaluations[0]
        engine.evaluations = evaluations
        assert_same(exporter)


@dataclass
class LendingEngine(FakeEngine):
    """An engine that lends its memory of each agent, as the pipeline does: the counters are
    then written from it, not from the `Accrual` list (which the reference still reads)."""

    def totals_by_agent(self, tenant: str) -> Mapping[str, Accrual]:
        return {a.agent_id: a for a in self.accruals}


# every number the counters may hold that client_python writes in a form of its own, and ints
# (a total read back from JSON) that it writes as floats
AWKWARD = [0, 7, -0.0, 1e-7, 5e-324, 999999.9999999999, 1e6, 1234567.5, 1e22, -1234567.5,
           float("inf"), float("-inf"), float("nan"), 10**17]  # fmt: skip


def test_counters_from_the_engine_memory_render_as_the_reference_through_changes() -> None:
    rng = random.Random(161)
    store, fake = random_centre(rng, 300)
    engine = LendingEngine(fake.evaluations, fake.accruals)
    exporter, _ = make_exporter(store, engine=engine)
    assert_same(exporter)
    for step in range(5):
        accruals = []
        for i, a in enumerate(engine.accruals[: len(engine.accruals) - 3]):  # some leave
            team = rng.choice(TEAMS) if i % 5 == step else a.team  # some move to another team
            more = a.adherent_seconds + rng.uniform(0, 5)
            accruals.append(
                replace(a, team=team, scheduled_seconds=rng.choice(AWKWARD), adherent_seconds=more)
            )
        accruals.append(Accrual(f"new {step}", rng.choice(TEAMS), scheduled_seconds=1))
        engine.accruals = accruals
        assert_same(exporter)
    body, _ = exporter.render()
    assert b"puzzelmon_scheduled_seconds_total{" in body


@dataclass
class RenamingEngine(FakeEngine):
    names: tuple[str, ...] = ("phone", "break", "lunch", "meeting")

    def activities(self, tenant: str) -> list[str]:
        return list(self.names)


def test_kept_lines_follow_the_activity_codes_and_new_objects() -> None:
    """Lines are kept per observation and evaluation object: the same objects under new
    activity codes, and equal but new objects, still render as the reference."""
    store, fake = random_centre(random.Random(7), 200)
    engine = RenamingEngine(fake.evaluations, fake.accruals)
    exporter, _ = make_exporter(store, engine=engine)
    assert_same(exporter)
    engine.names = ("meeting", "phone", "break")  # same evaluations, other codes
    assert_same(exporter)
    assert b'activity="meeting",' in exporter.render()[0]
    engine.evaluations = [replace(e) for e in engine.evaluations]
    for team, snap in store.agents[TENANT].items():
        store.agents[TENANT][team] = replace(snap, agents=tuple(replace(a) for a in snap.agents))
    assert_same(exporter)


def test_without_per_agent_series_the_body_is_the_reference() -> None:
    exporter, _ = make_exporter(filled_store(), engine=engine_view(), per_agent=False)
    assert exporter.render()[0] == generate_latest(exporter.registry)
    assert not set(PER_AGENT[:6]) & set(families(exporter.render()[0]))


def test_scrapes_within_the_render_cache_share_one_render() -> None:
    now = [100.0]
    exporter = Exporter(
        filled_store(), engine=engine_view(), render_cache_seconds=1.0, monotonic=lambda: now[0]
    )
    first, _ = exporter.render()
    now[0] += 0.5
    assert exporter.render()[0] is first
    assert exporter.renders == 1
    exporter.render(OPENMETRICS)  # another format is another render
    assert exporter.renders == 2
    now[0] += 1.0
    exporter.render()
    assert exporter.renders == 3


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_served_exposition() -> None:
    store, engine = random_centre(random.Random(3), 200)
    for view in (None, engine):
        exporter, _ = make_exporter(store, engine=view)
        body, _ = exporter.render()
        proc = subprocess.run(
            ["promtool", "check", "metrics"], input=body, capture_output=True, timeout=30,
            check=False,
        )  # fmt: skip
        # promtool lints (e.g. counter naming) print but pass; an invalid exposition fails
        assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()


async def test_the_http_endpoint_serves_the_render() -> None:
    exporter, _ = make_exporter(filled_store(), engine=engine_view())
    async with TestClient(TestServer(build_http_app(exporter))) as client:
        resp = await client.get("/metrics", headers={"Accept": OPENMETRICS})
        body = await resp.read()
        assert body == exporter.render(OPENMETRICS)[0]
        assert families(body) == families(generate_openmetrics(exporter.registry))
        assert exporter.renders == 1  # the test's own render came from the render cache
        # a selection of families (name[]) goes to client_python's own handler, as before
        resp = await client.get("/metrics", params={"name[]": "puzzelmon_agent_state_code"})
        assert resp.status == 200
        assert exporter.renders == 1


@pytest.mark.parametrize(
    "value",
    [0.0, -0.0, 1.0, 0.1 + 0.2, 1e-7, 123456.5, 1234567.5, 12345678.0, 1e22, -1234567.5,
     float("inf"), float("-inf"), float("nan"), 1764583200.123456, 5e-324, 999999.9999999999, 1e6],
)  # fmt: skip
def test_numbers_are_formatted_as_client_python_formats_them(value: float) -> None:
    assert fmt(value) == floatToGoString(value)


def test_queue_families_are_rendered_again_after_a_queue_poll() -> None:
    """The queue families are kept per queue snapshot: a new snapshot shows at the next
    render, equal to the reference."""
    store = filled_store()
    exporter, _ = make_exporter(store, engine=engine_view())
    assert_same(exporter)
    store.put_queues(
        TENANT, QueueSnapshot(TENANT, T0, (QueueObservation("4101", "Support NO", queue_size=7),))
    )
    assert_same(exporter)
    body, _ = exporter.render()
    line = b'puzzelmon_queue_requests_waiting{queue="4101",queue_name="Support NO",tenant="12345"}'
    assert line + b" 7.0\n" in body
    assert b'queue="4102"' not in body


def test_without_per_agent_series_queues_and_team_sums_follow_changes() -> None:
    """Per-agent series off: the queue families come from the queue cache in their place (a
    new queue snapshot shows), and each team's counters are the sums of its agents from 0.0
    in the engine's order, as a dict per team and field summed them."""
    for lends in (False, True):
        _queues_and_team_sums(random.Random(44), lends=lends)


def _queues_and_team_sums(rng: random.Random, *, lends: bool) -> None:
    store, fake = random_centre(rng, 300)
    # sorted by agent id, as the engine lists them; a lending engine's memory is in no order
    accruals = sorted(fake.accruals, key=lambda a: a.agent_id)
    engine = (
        LendingEngine(fake.evaluations, accruals)
        if lends
        else FakeEngine(fake.evaluations, accruals)
    )
    if lends:
        rng.shuffle(engine.accruals)
    store.put_queues(TENANT, QueueSnapshot(TENANT, T0, (QueueObservation("4101", "NO", 3),)))
    exporter, _ = make_exporter(store, engine=engine, per_agent=False)
    for step in range(3):
        engine.accruals = [
            replace(
                a,
                adherent_seconds=rng.choice(AWKWARD),
                productive_seconds=a.productive_seconds + step,
            )
            for a in engine.accruals
        ]
        queue = QueueObservation("4101", "NO", queue_size=step)
        store.put_queues(TENANT, QueueSnapshot(TENANT, T0, (queue,)))
        for accept, reference in (("", generate_latest), (OPENMETRICS, generate_openmetrics)):
            exporter._cache.clear()
            body = exporter.render(accept)[0]
            assert body == reference(exporter.registry), accept
            assert f'queue_name="NO",tenant="{TENANT}"}} {float(step)}'.encode() in body
        sums: dict[str, dict[str, float]] = {}
        for a in sorted(engine.accruals, key=lambda a: a.agent_id):
            team = sums.setdefault(a.team, {})
            for field in ("adherent_seconds", "productive_seconds"):
                team[field] = team.get(field, 0.0) + float(getattr(a, field))
        for team, fields in sums.items():
            for field, value in fields.items():
                labels = f'{{team="{esc(team)}",tenant="{TENANT}"}}'
                line = f"puzzelmon_{field}_total{labels} {floatToGoString(value)}\n"
                assert line.encode() in body


@dataclass
class StateEngine(FakeEngine):
    """An engine that lends its state, as the pipeline does (`engine_state`): the counters are
    then derived from the memory and the lazy agents' flags, while the reference reads
    `EngineState.totals()` (the `current_totals` the counters showed before)."""

    state: EngineState = dataclasses.field(default_factory=EngineState)

    def accrued(self, tenant: str) -> Sequence[Accrual]:
        return self.state.totals()

    def engine_state(self, tenant: str) -> EngineState:
        return self.state


def quiet_path(rng: random.Random) -> QuietPath:
    ev = AgentEvaluation("x", "t", AgentState(StateKind.AVAILABLE), T0, None, None, None)
    f = [rng.random() < 0.5 for _ in range(4)]
    return QuietPath(None, "", None, ev, f[0], f[1], f[2], f[3], None, False)


def lazy_state(rng: random.Random, accruals: Sequence[Accrual], until: datetime) -> EngineState:
    """A state of `accruals` as memories settled up to one of a few shared bases (some past
    `until`), most of them lazy with random flags."""
    bases = [T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=2.5), until, until + DAY]
    state = EngineState(quiet_until=until)
    for a in accruals:
        state.agents[a.agent_id] = AgentMemory(
            "n", a.team, AgentState(StateKind.AVAILABLE), T0, rng.choice(bases),
            scheduled_seconds=a.scheduled_seconds, adherent_seconds=a.adherent_seconds,
            productive_seconds=a.productive_seconds,
            productive_scheduled_seconds=a.productive_scheduled_seconds,
        )  # fmt: skip
        if rng.random() < 0.7:
            state.lazy[a.agent_id] = LazyAgent(quiet_path(rng), None, until, until)
    return state


def test_counters_from_the_lazy_engine_state_render_as_the_reference_through_changes() -> None:
    rng = random.Random(1616)
    store, fake = random_centre(rng, 300)
    until = T0 + timedelta(seconds=10)
    engine = StateEngine(fake.evaluations, state=lazy_state(rng, fake.accruals, until))
    exporter, _ = make_exporter(store, engine=engine)
    assert_same(exporter)
    for step in range(6):
        old, until = engine.state, until + timedelta(seconds=rng.choice([0, 5, 0.123456]))
        state = replace(old, agents=dict(old.agents), lazy=dict(old.lazy), quiet_until=until)
        for i, (aid, m) in enumerate(list(state.agents.items())):
            if i % 7 == step:  # some change: other totals, another team at even steps
                team = rng.choice(TEAMS) if i % 2 and step % 2 == 0 else m.team
                state.agents[aid] = replace(m, team=team, scheduled_seconds=rng.choice(AWKWARD))
                state.lazy.pop(aid, None)
        if step == 3:  # some leave, one joins
            for aid in list(state.agents)[:3]:
                del state.agents[aid]
                state.lazy.pop(aid, None)
            state.agents[f"new {step}"] = replace(next(iter(state.agents.values())), team="x\\y")
        if step == 5:  # nothing is lazy any more
            state.lazy = {}
        engine.state = state
        assert_same(exporter)
    body, _ = exporter.render()
    assert b"puzzelmon_adherent_seconds_total{" in body
