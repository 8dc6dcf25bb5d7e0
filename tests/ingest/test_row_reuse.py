"""The pollers keep the AgentRow made from a Puzzel row the client handed back unchanged, and
make it afresh when what it was made from changes: the row, its group, the pause names."""

from __future__ import annotations

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
