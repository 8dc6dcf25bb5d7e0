"""Simulator profiles: how much of Puzzel the simulator claims to know.

`full` (the default) serves every endpoint of `monitor.puzzel.endpoints` with the richest shapes
the client was written for. `public` serves exactly what public evidence shows and nothing more
(../shared/puzzel-api.md, "Corrections after a second audit" above all), so the monitor can be
tested against the shapes a real tenant is known to send rather than against our own guesses:

- Envelope: only `{"result", "code"}`, for errors too (`{"result": null, "code": N}` with the HTTP
  status); WF's recorded reply has no `id` and no `message` (Corrections; section 3).
- Paths without public evidence (`verified=False` in the endpoint table: per-user state, agent
  stats, visual-queue ticker, access-point tickers, pause types) answer 404 exactly as an unknown
  path does (Corrections; sections 4.10, 4.11).
- Agent-state rows (`users/stateinformation/{window}`) are SCR's flat rows: `userId, firstName,
  lastName, contactCentreStatus, userStatus, userGroupName, callsOffered, callsAnswered`, with no
  pause type and no status duration (Corrections; section 4.3). Paused is `Pause`/`Busy`, logged
  off is `LoggedOff`/`System`, and logged on is `Available` (ready) or `Busy` (anything else),
  since over REST only those two are seen (Corrections; section 5).
- Some names are null (Truto and the issue-10 stand-in show rows a strict model must survive):
  by user id, about one agent in seven has no first name and one in eleven no last name, the same
  everywhere the name appears (state rows, the users list, `users/{userId}`).
- Visual-queue state rows (section 4.2) carry only the fields the table marks H, and the first
  visual queue of the centre also lacks `callsAbandonedToday`, so consumers meet a missing ticker
  field. Note: the table marks the calls row "H/M", and SCR's mock and client carry
  `callsOfferedToday` and `callsAnsweredToday` but not `callsAbandonedToday`, so the latter rests
  on ND alone; it is kept (on all other queues) because the profile's brief asks for it.
- `users/{userId}` (section 4.4, confirmed) keeps `pauseTypeId` and `sessionTime`: the one
  confirmed per-agent pause type source. The users list (4.5), user groups (4.6), queues (4.7),
  visual queues (4.1), token information and the auth flows (2a, 2b) are unchanged.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any, Literal, get_args

from monitor.core.states import AgentState, StateKind
from monitor.puzzel.endpoints import ENDPOINTS
from monitor.simulator.backend import User, VisualQueue
from monitor.simulator.payloads import number

Profile = Literal["full", "public"]
PROFILES: tuple[Profile, ...] = get_args(Profile)
DEFAULT_PROFILE: Profile = "full"
PROFILE_SUMMARIES: dict[Profile, str] = {
    "full": "every endpoint and field the client knows",
    "public": "only the paths and fields public evidence shows; unevidenced paths answer 404",
}

Json = dict[str, Any]

# endpoints the public profile answers with 404, as if their paths did not exist
UNSERVED_ENDPOINTS: frozenset[str] = frozenset(n for n, e in ENDPOINTS.items() if not e.verified)

AGENT_ROW_FIELDS: tuple[str, ...] = (
    "userId",
    "firstName",
    "lastName",
    "contactCentreStatus",
    "userStatus",
    "userGroupName",
    "callsOffered",
    "callsAnswered",
)

# section 4.2's H fields, in the table's order
QUEUE_ROW_FIELDS: tuple[str, ...] = (
    "id",
    "description",
    "queueSize",
    "waitTimeMaxSeconds",
    "waitTimeAverageSeconds",
    "agentsLoggedOn",
    "agentsReady",
    "agentsInPause",
    "callsOfferedToday",
    "callsAnsweredToday",
    "callsAbandonedToday",
)
# left out of the first visual queue's rows
QUEUE_FIELD_MISSING_ON_FIRST_QUEUE = "callsAbandonedToday"

NULL_FIRST_NAME_EVERY = 7
NULL_LAST_NAME_EVERY = 11


def check_profile(name: str) -> Profile:
    """`name` as a Profile. Raises ValueError naming the allowed values."""
    for p in PROFILES:
        if name == p:
            return p
    raise ValueError(f"unknown simulator profile {name!r}; expected one of: {', '.join(PROFILES)}")


def serves(profile: Profile, endpoint: str) -> bool:
    """Whether `profile` answers `endpoint` at all (otherwise: 404, as for an unknown path)."""
    return profile == "full" or endpoint not in UNSERVED_ENDPOINTS


def envelope(result: Any, code: int = 0) -> Json:
    return {"result": result, "code": code}


def status(state: AgentState) -> tuple[str, str]:
    """(contactCentreStatus, userStatus) as public evidence shows them."""
    if state.kind is StateKind.LOGGED_OFF:
        return "LoggedOff", "System"
    if state.kind is StateKind.PAUSE:
        return "Pause", "Busy"
    if state.kind is StateKind.AVAILABLE:
        return "LoggedOn", "Available"
    return "LoggedOn", "Busy"


def _id_number(user_id: int | str) -> int:
    """A stable number for a user id; scripted ids need not be digits."""
    text = str(user_id)
    return int(text) if text.isdigit() else zlib.crc32(text.encode())


def first_name(user: User) -> str | None:
    return None if _id_number(user.id) % NULL_FIRST_NAME_EVERY == 0 else user.first_name


def last_name(user: User) -> str | None:
    return None if _id_number(user.id) % NULL_LAST_NAME_EVERY == 0 else user.last_name


def agent_row(user: User, state: AgentState, calls: tuple[int, int]) -> Json:
    ccs, us = status(state)
    return {
        "userId": user.id,
        "firstName": first_name(user),
        "lastName": last_name(user),
        "contactCentreStatus": ccs,
        "userStatus": us,
        "userGroupName": user.group_name,
        "callsOffered": calls[0],
        "callsAnswered": calls[1],
    }


def queue_row(vq: VisualQueue, fields: Mapping[str, float], *, first: bool) -> Json:
    """One visual-queue state row; `first` says whether `vq` is the centre's first queue."""
    row: Json = {"id": vq.id, "description": vq.description}
    for name in QUEUE_ROW_FIELDS[2:]:
        if first and name == QUEUE_FIELD_MISSING_ON_FIRST_QUEUE:
            continue
        row[name] = number(fields.get(name, 0.0))
    return row


def user_list_entry(user: User) -> Json:
    return {
        "id": user.id,
        "groupId": user.group_id,
        "firstName": first_name(user),
        "lastName": last_name(user),
        "userName": user.user_name,
    }


def user_profile(full_profile: Json, user: User, state: AgentState) -> Json:
    """The full profile's `users/{userId}` answer with the public statuses and names."""
    ccs, us = status(state)
    return full_profile | {
        "firstName": first_name(user),
        "lastName": last_name(user),
        "contactCentreStatus": ccs,
        "userStatus": us,
    }
