"""The pollers keep the AgentRow made from a Puzzel row the client handed back unchanged, and
make it afresh when what it was made from changes: the row, its group, the pause names."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime
from typing import Any

import aiohttp

from monitor.app.service import make_client
from monitor.core.states import AgentState, StateKind
from monitor.ingest.pollers import LatestSnapshots, TenantPollers
from monitor.ingest.tracker import GroupPoll
from monitor.puzzel.models import UserGroupAgentState
from tests.simserver import T0, SimServer


def _agent(user_id: int, status: str, pause_type_id: int | None = None) -> UserGroupAgentState:
    return UserGroupAgentState(
        user_id=user_id,
        contact_centre_status=status,
        user_status="Connected",
        first_name="Ada",
        pause_type_id=pause_type_id,
    )


async def test_kept_rows_follow_group_and_pause_names(make_sim_server: Callable[..., Any]) -> None:
    server: SimServer = await make_sim_server(agents=10, groups=2)
    tenant = server.tenant()
    async with aiohttp.ClientSession() as session:
        client = make_client(tenant, session=session, clock=server.clock)
        pollers = TenantPollers(tenant, client, server.clock, LatestSnapshots())
    paused, busy = _agent(1, "Pause", 5), _agent(2, "LoggedOn")
    at: datetime = T0

    def rows(group: str = "A") -> list[Any]:
        (poll,) = pollers._polls([(group, at, [paused, busy])])
        return list(poll.rows)

    first = rows()
    assert first[0].state == AgentState(StateKind.PAUSE, "5")  # no name known: the id
    again = rows()
    assert [a is b for a, b in zip(first, again, strict=True)] == [True, True]
    moved = rows("B")
    assert [r.team for r in moved] == ["B", "B"]
    pollers._pause_names = {5: "Lunch"}  # as refresh_pause_types does: a new map
    named = rows("B")
    assert named[0].state == AgentState(StateKind.PAUSE, "Lunch")
    assert named[1] == moved[1]


async def test_untyped_pause_reads_the_tracker_every_cycle(
    make_sim_server: Callable[..., Any],
) -> None:
    server: SimServer = await make_sim_server(agents=10, groups=2)
    tenant = server.tenant()
    async with aiohttp.ClientSession() as session:
        client = make_client(tenant, session=session, clock=server.clock)
        pollers = TenantPollers(tenant, client, server.clock, LatestSnapshots())
    untyped = _agent(3, "Pause")
    (poll,) = pollers._polls([("A", T0, [untyped])])
    assert poll.rows[0].state == AgentState(StateKind.PAUSE, None)
    pollers.tracker.observe_cycle([GroupPoll("A", T0, poll.rows)])
    assert pollers.tracker.name_pause("3", "Training", T0)
    (poll,) = pollers._polls([("A", T0, [untyped])])
    assert poll.rows[0].state == AgentState(StateKind.PAUSE, "Training")
    pollers.tracker.observe_cycle([GroupPoll("A", T0, poll.rows)])
    assert pollers.tracker.name_pause("3", "Meeting", T0)  # the same row, now another type
    (poll,) = pollers._polls([("A", T0, [untyped])])
    assert poll.rows[0].state == AgentState(StateKind.PAUSE, "Meeting")


def _random_row(rng: random.Random, user_id: int) -> UserGroupAgentState:
    return UserGroupAgentState(
        user_id=user_id,
        contact_centre_status=rng.choice(["LoggedOn", "Pause", "Pause", "LoggedOff"]),
        user_status=rng.choice(["Connected", "Available", None]),
        first_name=rng.choice(["Ada", "Bo"]),
        user_group_name=rng.choice(["A", "B", "B", "C", None]),
        pause_type_id=rng.choice([None, 0, 5, 7]),
        pause_type_name=rng.choice([None, None, "Lunch"]),
        calls_offered=rng.choice([None, 1]),
    )


class _Answers:
    """Just enough of the client: the combined call answers `answer`."""

    def __init__(self) -> None:
        self.answer: list[UserGroupAgentState] = []

    def enabled(self, name: str) -> bool:
        return name == "user_group_state_information"

    async def user_group_state_information(self, *args: Any, **kwargs: Any) -> Any:
        return self.answer


async def test_kept_rows_equal_rows_made_afresh(make_sim_server: Callable[..., Any]) -> None:
    """Through random combined answers (most rows the very same objects, some new, agents
    coming and going, group moves, new pause names), the split by group and the AgentRows
    made only for the rows that are new objects equal what a fresh poller makes of the same
    answer; a row that is the same object keeps its AgentRow (unless its pause has no type)."""
    server: SimServer = await make_sim_server(agents=10, groups=2)
    tenant = server.tenant()
    api = _Answers()
    kept = TenantPollers(tenant, api, server.clock, LatestSnapshots())  # type: ignore[arg-type]
    rng = random.Random(16)
    answer = [_random_row(rng, i) for i in range(30)]
    before: dict[tuple[str, int], tuple[UserGroupAgentState, Any]] = {}
    sizes: dict[str, int] = {}
    reused = 0
    for cycle in range(100):
        answer = list(answer)
        for i in rng.sample(range(len(answer)), 3):
            answer[i] = _random_row(rng, answer[i].user_id)
        if rng.random() < 0.1:
            answer.pop(rng.randrange(len(answer)))
        if rng.random() < 0.1:
            answer.insert(rng.randint(0, len(answer)), _random_row(rng, 100 + cycle))
        names = kept._pause_names
        if rng.random() < 0.05:
            kept._pause_names = {5: "Lunch", 7: f"Training {cycle}"}  # a refresh: a new map
        api.answer = answer
        fresh = TenantPollers(tenant, api, server.clock, LatestSnapshots())  # type: ignore[arg-type]
        fresh._pause_names = kept._pause_names
        got = await kept._combined_state_call(["A", "B"])
        want = await fresh._combined_state_call(["A", "B"])
        assert got[0] == want[0]
        assert [(g, [id(r) for r in rows]) for g, _, rows in got[1]] == [
            (g, [id(r) for r in rows]) for g, _, rows in want[1]
        ]
        polls = kept._polls(got[1])
        assert polls == fresh._polls(want[1])
        made = {}
        for (group, _, rows), poll in zip(got[1], polls, strict=True):
            # the same row at the same place of a group of the same size: the same AgentRow
            same_size = sizes.get(group) == len(rows) and names is kept._pause_names
            for i, (r, out) in enumerate(zip(rows, poll.rows, strict=True)):
                hit = before.get((group, i))
                untyped = out.state.kind is StateKind.PAUSE and out.state.pause_type is None
                if hit is not None and hit[0] is r and not untyped and same_size:
                    assert out is hit[1]
                    reused += 1
                made[group, i] = (r, out)
        before, sizes = made, {g: len(rows) for g, _, rows in got[1]}
    assert reused > 500  # (733 with this seed)
