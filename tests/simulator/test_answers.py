"""The simulator's kept rows and user index serve what building every row afresh serves."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime

import orjson

from monitor.core.states import AgentState, StateKind
from monitor.simulator import payloads, profiles
from monitor.simulator.answers import StateRows, UserIndex
from monitor.simulator.backend import User

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
GROUPS = ["Support", "Sales", " support "]  # the last matches the first, as the API does


def _users(n: int) -> list[User]:
    return [
        User(
            id=i if i % 5 else f"x{i}",
            group_id=20600 + i % 3,
            group_name=GROUPS[i % 3].strip() if i % 3 != 2 else "Other",
            first_name=f"Ann {i}",
            last_name='B"erg',
            user_name=f"ann{i}",
        )
        for i in range(n)
    ]


def _state(rng: random.Random) -> AgentState:
    kind = rng.choice(list(StateKind))
    return AgentState(kind, rng.choice(["Lunch", None]) if kind is StateKind.PAUSE else None)


def test_kept_rows_equal_rows_built_afresh_through_changes() -> None:
    rng = random.Random(5)
    users = _users(60)
    states = {u.agent_id: (_state(rng), T0) for u in users}
    calls = {u.agent_id: (0, 0) for u in users}
    rows, index = StateRows(), UserIndex()
    for step in range(30):
        pause_types = {"Lunch": 1 + step // 10}  # a new id drops every kept row
        public = step % 7 == 3

        def full(u: User, s: AgentState, c: tuple[int, int]) -> dict[str, object]:
            return payloads.user_group_state_row(u, s, c, pause_types)  # noqa: B023

        make = profiles.agent_row if public else full
        context = ("public",) if public else ("full", tuple(pause_types.items()))
        index.refresh(list(users))  # a fresh list of the same objects: kept index
        for group in [None, *GROUPS]:
            chosen = index.all() if group is None else index.in_group(group)
            expected = [
                u for u in users if group is None or u.group_name.lower() == group.strip().lower()
            ]
            assert chosen == expected
            served = orjson.dumps(
                {"result": rows.answer(chosen, states, calls, make, context=context)}
            )
            reference = orjson.dumps(
                {"result": [make(u, states[u.agent_id][0], calls[u.agent_id]) for u in chosen]}
            )
            assert served == reference
        for u in rng.sample(users, 6):  # some change state, calls, or are equal but new objects
            states[u.agent_id] = (_state(rng), T0)
            calls[u.agent_id] = (calls[u.agent_id][0] + rng.randrange(2), calls[u.agent_id][1])
        i = rng.randrange(len(users))
        users[i] = replace(users[i], last_name=f"Renamed {step}")  # a new object: row rebuilt


def test_user_index_finds_the_first_user_with_an_id_and_follows_new_users() -> None:
    users = _users(10)
    twin = replace(users[3], group_name="Sales")
    index = UserIndex()
    index.refresh([*users, twin])
    assert index.get(users[3].agent_id) is users[3]
    assert index.get("nobody") is None
    renamed = [replace(u, group_name="Sales") for u in users]
    index.refresh(renamed)
    assert index.in_group("support") == []
    assert index.in_group(" SALES") == renamed
