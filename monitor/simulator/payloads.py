"""Puzzel JSON shapes (puzzel-api.md section 4, and the unverified endpoints' field lists in
monitor/puzzel/endpoints.py), rendered from the centre's plain data. Pure functions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from typing import Any

from monitor.core.states import AgentState, StateKind
from monitor.simulator.backend import AccessPointTicker, AgentTicker, User, VisualQueue
from monitor.simulator.scenario import QUEUE_FIELDS

Json = dict[str, Any]


def iso_utc(t: datetime) -> str:
    """`2024-08-12T07:58:21.841Z`, as in the Swagger samples."""
    u = t.astimezone(UTC)
    return u.strftime("%Y-%m-%dT%H:%M:%S.") + f"{u.microsecond // 1000:03d}Z"


def ms_date(t: datetime) -> str:
    """The legacy Microsoft JSON date, `/Date(1767016200000+0000)/`."""
    return f"/Date({round(t.timestamp() * 1000)}+0000)/"


def zoneless_local(t: datetime, tz: tzinfo) -> str:
    """A zone-less local time as the auth service writes it: `2024-08-12T21:26:50.51`."""
    local = t.astimezone(tz)
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    centis = local.microsecond // 10_000
    return f"{text}.{centis:02d}".rstrip("0").rstrip(".")


def api_date(t: datetime | None, legacy: bool) -> str | None:
    if t is None:
        return None
    return ms_date(t) if legacy else iso_utc(t)


def number(value: float) -> int | float:
    """Counts and seconds are ints in Puzzel's JSON; keep a fraction only if one was given."""
    return int(value) if float(value).is_integer() else value


def pause_type_id(state: AgentState, pause_types: Mapping[str, int]) -> int:
    if state.kind is not StateKind.PAUSE or state.pause_type is None:
        return 0
    return pause_types.get(state.pause_type, 0)


def visual_queue(vq: VisualQueue) -> Json:
    return {
        "id": vq.id,
        "description": vq.description,
        "queues": [
            {"id": q.id, "key": q.key, "description": q.description, "serviceId": q.service_id}
            for q in vq.queues
        ],
    }


def visual_queue_state(vq: VisualQueue, fields: Mapping[str, float]) -> Json:
    row: Json = {"id": vq.id, "description": vq.description}
    for name in QUEUE_FIELDS:
        row[name] = number(fields.get(name, 100.0 if name == "sla" else 0.0))
    for name, value in fields.items():
        if name not in row:
            row[name] = number(value)
    return row


def visual_queue_ticker(vq: VisualQueue, fields: Mapping[str, float]) -> Json:
    def get(name: str) -> int | float:
        return number(fields.get(name, 0.0))

    return {
        "id": vq.id,
        "description": vq.description,
        "callsOffered": get("callsOfferedToday"),
        "callsAnswered": get("callsAnsweredToday"),
        "callsAbandoned": get("callsAbandonedToday"),
        "callsAnsweredWithinSla": get("callsAnsweredWithinSla"),
        "callsAbandonedWithinSla": get("callsAbandonedWithinSla"),
        "ciqsOffered": get("ciqsOfferedToday"),
        "ciqsAnswered": get("ciqsAnsweredToday"),
        "surveysAnswered": 0,
    }


def user_group_state_row(
    user: User, state: AgentState, calls: tuple[int, int], pause_types: Mapping[str, int]
) -> Json:
    ccs, us = state.to_puzzel()
    return {
        "userId": user.id,
        "firstName": user.first_name,
        "lastName": user.last_name,
        "userGroupName": user.group_name,
        "contactCentreStatus": ccs,
        "userStatus": us,
        "pauseTypeId": pause_type_id(state, pause_types),
        "callsOffered": calls[0],
        "callsAnswered": calls[1],
    }


def user_profile(
    user: User,
    state: AgentState,
    ticker: AgentTicker,
    pause_types: Mapping[str, int],
    *,
    legacy_dates: bool,
) -> Json:
    ccs, us = state.to_puzzel()
    return {
        "id": user.id,
        "groupId": user.group_id,
        "userName": user.user_name,
        "firstName": user.first_name,
        "lastName": user.last_name,
        "eMail": f"{user.user_name}@example.no",
        "mobilePhone": "",
        "userGroupName": user.group_name,
        "profileName": "Phone",
        "currentProfileId": 771,
        "contactCentreStatus": ccs,
        "userStatus": us,
        "pauseTypeId": pause_type_id(state, pause_types),
        "sessionTime": api_date(ticker.session_start, legacy_dates),
        "joined": state.logged_on,
        "chatState": "Undefined",
        "languageId": 1,
        "chatCapacityMaxParallel": 0,
        "chatPhoneThreshold": 0,
        "chatConnected": 0,
        "chatConnecting": False,
        "profiles": [],
    }


def user_state_information(
    user: User, state: AgentState, since: datetime, now: datetime, pause_types: Mapping[str, int]
) -> Json:
    ccs, us = state.to_puzzel()
    return {
        "userId": user.id,
        "contactCentreStatus": ccs,
        "userStatus": us,
        "pauseTypeId": pause_type_id(state, pause_types),
        "pauseTypeName": state.pause_type if state.kind is StateKind.PAUSE else None,
        "statusDurationSeconds": max(0, int((now - since).total_seconds())),
        "chatConnected": 0,
        "silentMonitored": False,
    }


def agent_stats_row(
    user: User,
    ticker: AgentTicker,
    pause_types: Mapping[str, int],
    queues: Sequence[VisualQueue],
) -> Json:
    return {
        "userId": user.id,
        "userGroupName": user.group_name,
        "overview": {
            "requestsOffered": ticker.calls_offered,
            "requestsAnswered": ticker.calls_answered,
            "loggedOnSeconds": int(ticker.logged_on_seconds),
            "inPauseSeconds": int(sum(ticker.pause_seconds.values())),
        },
        "pause": [
            {"pauseTypeId": pause_types.get(name, 0), "description": name, "seconds": int(sec)}
            for name, sec in sorted(ticker.pause_seconds.items())
        ],
        "queuesTotal": [
            {
                "visualQueueId": vq.id,
                "requestsOffered": ticker.queue_offered.get(str(vq.id), 0),
                "requestsAnswered": ticker.queue_answered.get(str(vq.id), 0),
            }
            for vq in queues
            if str(vq.id) in ticker.queue_offered
        ],
    }


def access_point(ap: AccessPointTicker) -> Json:
    return {
        "accesspoint": ap.access_point,
        "description": ap.description,
        "requestsOffered": ap.requests_offered,
        "requestsAnswered": ap.requests_answered,
    }
