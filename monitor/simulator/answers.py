"""What the simulator keeps between answers so that a poll costs what changed, not the centre.

A replayed day asks for every agent's user-group state row at every poll (thousands of polls)
and per-user details for the few agents that changed; at 500 agents building each row afresh
and finding a user by a scan of every user were most of the simulator's time. Here a row is
serialised once and kept while its inputs are the same objects (or equal ones), and the users
are indexed by group and by id while the centre lists the same user objects. The bytes served
are those `orjson.dumps` writes for the same lists (`tests/simulator/test_answers.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from datetime import datetime
from operator import is_
from typing import Any

import orjson

from monitor.core.states import AgentState
from monitor.simulator.backend import User

# one agent's row from its user, state and (calls offered, calls answered)
RowMaker = Callable[[User, AgentState, tuple[int, int]], dict[str, Any]]


class UserIndex:
    """The centre's users by group (matched as the API matches `userGroupName`: trimmed, any
    case) and by agent id (the first user with that id, as a scan would find it)."""

    def __init__(self) -> None:
        self._users: list[User] = []
        self._by_group: dict[str, list[User]] = {}
        self._by_id: dict[str, User] = {}

    def refresh(self, users: Sequence[User]) -> None:
        """Index `users` unless they are the very objects indexed already (a scripted centre's
        users never change; a random centre makes new ones per call, indexed afresh)."""
        if len(users) == len(self._users) and all(map(is_, users, self._users)):
            return
        self._users = list(users)  # held: an object's identity stays its own while indexed
        by_group: dict[str, list[User]] = {}
        by_id: dict[str, User] = {}
        for u in self._users:
            by_group.setdefault(u.group_name.lower(), []).append(u)
            by_id.setdefault(u.agent_id, u)
        self._by_group, self._by_id = by_group, by_id

    def all(self) -> list[User]:
        return self._users

    def in_group(self, name: str) -> list[User]:
        return self._by_group.get(name.strip().lower(), [])

    def get(self, agent_id: str) -> User | None:
        return self._by_id.get(agent_id)


class StateRows:
    """User-group state rows as JSON, one kept per agent while its user, state and call counts
    are the same: only the rows of agents that changed are built and serialised again."""

    def __init__(self) -> None:
        self._context: Hashable = None
        # agent id -> (user, state, calls, the row's JSON)
        self._kept: dict[str, tuple[User, AgentState, tuple[int, int], bytes]] = {}

    def answer(
        self,
        users: Sequence[User],
        states: Mapping[str, tuple[AgentState, datetime]],
        calls: Mapping[str, tuple[int, int]],
        row: RowMaker,
        *,
        context: Hashable,
    ) -> orjson.Fragment:
        """The JSON list of `row(user, state, calls)` for `users`, as `orjson.dumps` writes it.
        `context` is whatever else the rows depend on (the profile, the pause type ids): a
        different one drops every kept row."""
        if context != self._context:
            self._context, self._kept = context, {}
        kept = self._kept
        parts: list[bytes] = []
        for u in users:
            aid = u.agent_id
            state, c = states[aid][0], calls[aid]
            k = kept.get(aid)
            if k is None or not (_same(k[0], u) and _same(k[1], state) and k[2] == c):
                k = kept[aid] = (u, state, c, orjson.dumps(row(u, state, c)))
            parts.append(k[3])
        return orjson.Fragment(b"[" + b",".join(parts) + b"]")


def _same(a: object, b: object) -> bool:
    return a is b or a == b
