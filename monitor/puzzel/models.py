"""Pydantic models of Puzzel's responses.

Field names are snake_case in Python and camelCase on the wire (both accepted on input). Unknown
fields are ignored, so Puzzel can add fields without breaking us; a missing required field is a
validation error naming it. Required = seen by two or more independent sources (puzzel-api.md
confidence H) or the very thing the monitor needs; everything else has a default.

Date fields use `PuzzelDateTime`: pass `context={"timezone": ...}` to `model_validate` for the
tenant's zone (zone-less values only; default Europe/Oslo).
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
)
from pydantic.alias_generators import to_camel

from monitor.puzzel.dates import PuzzelDateTime
from monitor.puzzel.exceptions import PuzzelMalformedResponse

T = TypeVar("T")

# Puzzel's user and visual-queue ids are ints; scripted scenarios may use names, so accept both.
PuzzelId = int | str

# 0 (or absent) when the agent is not paused: both read as None.
PauseTypeId = Annotated[int | None, AfterValidator(lambda v: v or None)]


class PuzzelModel(BaseModel):
    """Base: camelCase aliases, extra fields ignored, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        extra="ignore",
        frozen=True,
    )


class Envelope(PuzzelModel):
    """The wrapper around every ContactCentre5 response (section 3). `code == 0` is success."""

    model_config = ConfigDict(coerce_numbers_to_str=True)

    code: int
    result: Any = None
    id: str | None = None
    message: str | None = None


# --- 4.1 / 4.7 queues -----------------------------------------------------------------------


class QueueItem(PuzzelModel):
    """A system queue underneath a visual queue."""

    id: int
    key: str = ""
    description: str = ""
    service_id: int | None = None


class VisualQueue(PuzzelModel):
    """4.1 `/{customerKey}/visualqueues` row."""

    id: PuzzelId
    description: str
    queues: list[QueueItem] = Field(default_factory=list)


class SystemQueue(PuzzelModel):
    """4.7 `/{customerKey}/queues` row."""

    id: int
    key: str
    description: str = ""
    service_id: int | None = None


# --- 4.2 visual queue state + ticker --------------------------------------------------------


class VisualQueueState(PuzzelModel):
    """4.2 `VisualQueueStateAndTickerList` row: a visual queue's state now and its today-ticker."""

    id: PuzzelId
    description: str
    queue_size: int
    wait_time_max_seconds: float
    wait_time_average_seconds: float
    agents_logged_on: int
    agents_ready: int
    agents_in_pause: int
    calls_offered_today: int
    calls_answered_today: int
    queue_size_ciq: int = 0
    queue_size_preferred: int = 0
    agents_unavailable: int = 0
    calls_abandoned_today: int = 0
    calls_answered_within_sla: int = 0
    calls_abandoned_within_sla: int = 0
    ciqs_offered_today: int = 0
    ciqs_answered_today: int = 0
    ciq_scheduled: int = 0
    sla: float | None = None  # percent, 0-100
    alarm_flag: int = 0
    unblocked_logged_in: int | None = None
    unblocked_unavailable: int | None = None
    silent_calls_today: int | None = None


# --- 4.3 agent state + ticker per user group ------------------------------------------------


class UserGroupAgentState(PuzzelModel):
    """4.3 `AgentStateAndTickerList` row: one agent's state and today-ticker."""

    user_id: PuzzelId
    first_name: str
    last_name: str
    user_group_name: str
    contact_centre_status: str
    user_status: str
    calls_offered: int
    calls_answered: int
    pause_type_id: PauseTypeId = None
    pause_type_name: str | None = None
    # Not seen in any source; used if Puzzel turns out to send it (puzzel-api.md open question 3).
    status_duration_seconds: float | None = None


# --- 4.4 / 4.5 users ------------------------------------------------------------------------


class QualityElement(PuzzelModel):
    id: int
    name: str = ""
    user_level: int | None = None


class Quality(PuzzelModel):
    id: int
    number: int | None = None
    description: str = ""
    service_id: int | None = None
    elements: list[QualityElement] = Field(default_factory=list)


class Profile(PuzzelModel):
    id: int
    name: str = ""
    number: int | None = None
    phone_number: str | None = None
    last_phone_number: str | None = None
    phone_type: str | None = None
    group_profile: bool = False
    qualities: list[Quality] = Field(default_factory=list)


class User(PuzzelModel):
    """4.4 `/{customerKey}/users/{userId}`: one user's state and profile."""

    id: PuzzelId
    first_name: str
    last_name: str
    contact_centre_status: str
    user_status: str
    group_id: int | None = None
    user_name: str = ""
    e_mail: str | None = None
    mobile_phone: str | None = None
    user_group_name: str | None = None
    profile_name: str | None = None
    current_profile_id: int | None = None
    pause_type_id: PauseTypeId = None
    session_time: PuzzelDateTime | None = None
    joined: bool | None = None
    chat_state: str | None = None
    language_id: int | None = None
    chat_capacity_max_parallel: int | None = None
    chat_phone_threshold: int | None = None
    chat_connected: int | None = None
    chat_connecting: bool | None = None
    profiles: list[Profile] = Field(default_factory=list)


class UserSummary(PuzzelModel):
    """4.5 `/{customerKey}/users` row."""

    id: PuzzelId
    first_name: str
    last_name: str
    group_id: int | None = None
    user_name: str = ""


class UserGroup(PuzzelModel):
    """4.6 `/{customerKey}/usergroups` row."""

    id: int
    name: str


# --- unverified endpoints (field lists: monitor/puzzel/endpoints.py docstring) ---------------


class UserStateInformation(PuzzelModel):
    """Per-user state information (unverified path): the one source of a status duration."""

    user_id: PuzzelId
    contact_centre_status: str
    user_status: str
    status_duration_seconds: float
    pause_type_id: PauseTypeId = None
    pause_type_name: str | None = None
    chat_connected: int | None = None
    silent_monitored: bool | None = None


class AgentStatsOverview(PuzzelModel):
    requests_offered: int = 0
    requests_answered: int = 0
    logged_on_seconds: float = 0.0
    in_pause_seconds: float = 0.0


class AgentPauseStats(PuzzelModel):
    pause_type_id: int | None = None
    description: str = ""
    seconds: float = 0.0


class AgentQueueTotals(PuzzelModel):
    visual_queue_id: PuzzelId
    requests_offered: int = 0
    requests_answered: int = 0


class AgentStats(PuzzelModel):
    """Agent stats row (unverified path): today-ticker per agent."""

    user_id: PuzzelId
    overview: AgentStatsOverview
    user_group_name: str | None = None
    pause: list[AgentPauseStats] = Field(default_factory=list)
    queues_total: list[AgentQueueTotals] = Field(default_factory=list)


class VisualQueueTicker(PuzzelModel):
    """Visual queue ticker row (unverified path)."""

    id: PuzzelId
    description: str
    calls_offered: int
    calls_answered: int
    calls_abandoned: int = 0
    calls_answered_within_sla: int = 0
    calls_abandoned_within_sla: int = 0
    ciqs_offered: int = 0
    ciqs_answered: int = 0
    surveys_answered: int = 0


class AccessPointTicker(PuzzelModel):
    """Access point ticker row (unverified path). `accesspoint` is the dialled number or address."""

    model_config = ConfigDict(coerce_numbers_to_str=True)

    accesspoint: str
    requests_offered: int
    requests_answered: int
    description: str = ""


class PauseType(PuzzelModel):
    """Pause type (unverified path)."""

    id: int
    description: str


# --- authentication -------------------------------------------------------------------------


class TokenInformation(PuzzelModel):
    """`/accesstokeninformation`: who the token belongs to and when it expires."""

    model_config = ConfigDict(coerce_numbers_to_str=True)

    customer_key: str
    user_id: PuzzelId
    access_token_expiry: PuzzelDateTime
    access_token_expiry_iso: PuzzelDateTime | None = None
    customer_id: int | None = None
    user_group_id: int | None = None
    language_id: int | None = None
    language_code: str | None = None
    password_valid_days_left: int | None = None


class RefreshToken(PuzzelModel):
    """The LogIn session used to get new access tokens. `session_id` is a secret."""

    model_config = ConfigDict(coerce_numbers_to_str=True)

    customer_key: str
    session_id: SecretStr
    expiry_date: PuzzelDateTime | None = None


class LoginResponse(PuzzelModel):
    """`POST auth/api/Authenticate/LogIn` answer (no envelope)."""

    access_token: SecretStr | None = None
    refresh_token: RefreshToken | None = None
    language_code: str | None = None
    two_factor_required: bool = False
    logout_from_external_identity_provider: bool = False


class OidcTokenResponse(BaseModel):
    """Puzzel ID `/id/connect/token` answer (standard OAuth, snake_case, no envelope)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    access_token: SecretStr
    token_type: str = "Bearer"
    expires_in: float | None = None
    scope: str | None = None


def parse_as(
    type_: type[T], data: Any, *, endpoint: str, timezone: Any = None, prefix: str = "result"
) -> T:
    """Validate `data` as `type_` (a model or `list[Model]`); errors name endpoint and field."""
    try:
        value: T = _adapter(type_).validate_python(data, context={"timezone": timezone})
        return value
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in (prefix, *err["loc"]))
        extra = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise PuzzelMalformedResponse(endpoint, f"{err['msg']}{extra}", field=loc) from None


_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def _adapter(type_: Any) -> TypeAdapter[Any]:
    adapter = _ADAPTERS.get(type_)
    if adapter is None:
        adapter = _ADAPTERS[type_] = TypeAdapter(type_)
    return adapter
