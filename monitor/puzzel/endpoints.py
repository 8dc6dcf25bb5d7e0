"""Every Puzzel endpoint path in one table.

Several paths are not confirmed by public evidence (see ../shared/puzzel-api.md, section 4.10/4.11):
they are marked `verified=False` and can be corrected here, in one place, for both the client and
the simulator. Paths are relative to the ContactCentre5 base URL; `{customerKey}` and other
placeholders are filled by `Endpoint.path(...)`.

Field lists for the unverified endpoints (what the simulator serves and the models accept):
- user_state_information: result {userId, contactCentreStatus, userStatus, pauseTypeId,
  pauseTypeName, statusDurationSeconds, chatConnected, silentMonitored}
- agent_stats: result [{userId, userGroupName, overview{requestsOffered, requestsAnswered,
  loggedOnSeconds, inPauseSeconds}, pause[{pauseTypeId, description, seconds}],
  queuesTotal[{visualQueueId, requestsOffered, requestsAnswered}]}]
- visual_queue_ticker: result [{id, description, callsOffered, callsAnswered, callsAbandoned,
  callsAnsweredWithinSla, callsAbandonedWithinSla, ciqsOffered, ciqsAnswered, surveysAnswered}]
- access_point_tickers: result [{accesspoint, description, requestsOffered, requestsAnswered}]
- pause_types: result [{id, description}]
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


class Auth(StrEnum):
    NONE = "none"  # auth-service calls
    BEARER = "bearer"


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    method: str
    template: str
    verified: bool
    source: str  # where the path comes from (puzzel-api.md section)
    host: str = "api"  # "api" (ContactCentre5 base), "auth" (LogIn service) or "id" (Puzzel ID)
    enabled: bool | None = None  # None: on exactly when verified (a tenant's `endpoints:` decides)

    def path(self, **params: str | int) -> str:
        return self.template.format(**{k: str(v) for k, v in params.items()})

    @property
    def on(self) -> bool:
        """Whether the monitor calls this endpoint: unverified paths only when a tenant says so."""
        return self.verified if self.enabled is None else self.enabled

    @property
    def placeholders(self) -> frozenset[str]:
        return frozenset(_PLACEHOLDER.findall(self.template))


ENDPOINTS: dict[str, Endpoint] = {
    e.name: e
    for e in (
        # --- authentication -------------------------------------------------------------------
        Endpoint("login", "POST", "/api/Authenticate/LogIn", True, "2a", host="auth"),
        Endpoint(
            "get_access_token", "POST", "/api/Authenticate/GetAccessToken", True, "2a", host="auth"
        ),
        Endpoint("oidc_token", "POST", "/id/connect/token", True, "2b", host="id"),
        # --- ContactCentre5 ---------------------------------------------------------------------
        Endpoint("access_token_information", "GET", "/accesstokeninformation", True, "2 token"),
        Endpoint("visual_queues", "GET", "/{customerKey}/visualqueues", True, "4.1"),
        Endpoint(
            "visual_queue_state_information",
            "GET",
            "/{customerKey}/visualqueues/stateinformation/{result}",
            True,
            "4.2",
        ),
        Endpoint(
            "user_group_state_information",
            "GET",
            "/{customerKey}/users/stateinformation/{tickerPeriodWindow}",
            True,
            "4.3 (M)",
        ),
        Endpoint("user", "GET", "/{customerKey}/users/{userId}", True, "4.4"),
        Endpoint("users", "GET", "/{customerKey}/users", True, "4.5"),
        Endpoint("user_groups", "GET", "/{customerKey}/usergroups", True, "4.6"),
        Endpoint("queues", "GET", "/{customerKey}/queues", True, "4.7"),
        # --- unverified: paths invented to match Truto's tool catalogue (4.11) -------------------
        Endpoint(
            "user_state_information",
            "GET",
            "/{customerKey}/users/{userId}/stateinformation",
            False,
            "4.11",
        ),
        Endpoint(
            "agent_stats",
            "GET",
            "/{customerKey}/users/agentstats/{tickerPeriodWindow}",
            False,
            "4.11",
        ),
        Endpoint(
            "visual_queue_ticker",
            "GET",
            "/{customerKey}/visualqueues/ticker/{tickerPeriodWindow}",
            False,
            "4.11",
        ),
        Endpoint(
            "access_point_tickers",
            "GET",
            "/{customerKey}/accesspoints/ticker/{tickerPeriodWindow}",
            False,
            "4.11",
        ),
        Endpoint("pause_types", "GET", "/{customerKey}/pausetypes", False, "4.11"),
    )
}

# Endpoints a tenant may switch or re-path (`tenants[].endpoints`); the auth flows stay fixed.
CONFIGURABLE = frozenset(name for name, e in ENDPOINTS.items() if e.host == "api")

EndpointSetting = bool | str


def check_override(name: str, setting: EndpointSetting) -> None:
    """Raise ValueError unless `setting` (true, false or a path) is valid for endpoint `name`."""
    if name not in CONFIGURABLE:
        known = ", ".join(sorted(CONFIGURABLE))
        raise ValueError(f"unknown endpoint {name!r}; expected one of: {known}")
    if isinstance(setting, bool):
        return
    base = ENDPOINTS[name]
    if not setting.startswith("/"):
        raise ValueError(f"expected a path starting with '/', got {setting!r}")
    used = frozenset(_PLACEHOLDER.findall(setting))
    unknown = used - base.placeholders
    if unknown:
        allowed = ", ".join(f"{{{p}}}" for p in sorted(base.placeholders)) or "none"
        bad = ", ".join(f"{{{p}}}" for p in sorted(unknown))
        raise ValueError(f"{name}: unknown placeholder {bad} in {setting!r}; allowed: {allowed}")


def endpoint_table(overrides: Mapping[str, EndpointSetting] | None = None) -> dict[str, Endpoint]:
    """The endpoint table of one tenant: `true` turns an endpoint on with its default path, a
    path turns it on with that path, `false` turns it off."""
    table = dict(ENDPOINTS)
    for name, setting in (overrides or {}).items():
        check_override(name, setting)
        if isinstance(setting, bool):
            table[name] = replace(table[name], enabled=setting)
        else:
            table[name] = replace(table[name], template=setting, enabled=True)
    return table
