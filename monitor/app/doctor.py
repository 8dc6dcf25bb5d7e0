"""`puzzel-monitor doctor -c config.yaml [--tenant KEY] [--record DIR]`: what a tenant supports.

First one line on the configured Redis (`redis (url|sentinel) TARGET: ok[, primary HOST:PORT]` or
`NOT reachable: ...`; not part of the exit code). Then for each configured tenant: authenticate
with its credentials, then call every configurable endpoint of `monitor.puzzel.endpoints` once,
with this tenant's paths, including the endpoints the tenant has turned off (their verdict says
`(off)`, so the operator learns what to turn on). Each answer is checked against the endpoint's
model without the monitor's tolerance hiding anything:

- rows: how many rows (or 1 for a single object) came back;
- missing: required fields a row lacks (or that fail validation): those rows would be dropped;
- unknown: top-level keys the model does not know (harmless: a hint of what Puzzel also sends);
- verdict: `ok`, `unsupported` (404/405: the tenant lacks the path), `shape problem`,
  `auth problem` or `error` (5xx, timeout, connection, another Puzzel error code).

The HTTP status is read from the session's trace hooks (the client is unchanged); the Puzzel code
of a successful answer is 0 (the client raises on any other). Then the alert sinks (see
`monitor.app.doctor_sinks`: a Slack bot token is tried, nothing is posted). Exit codes: 0 when
authentication and the agent-state call are `ok` for every tenant checked and no sink check
failed, 1 otherwise, 2 on a bad configuration.

`--record DIR` writes each answer as `DIR/<tenant>/<endpoint>.json`, an envelope
`{"result": ..., "code": 0}` with personal data replaced by consistent pseudonyms (see `Redactor`);
ids, numbers, statuses, nulls and the shape are kept. Tokens and secrets are never printed or
recorded: the auth answers are not recorded, and error texts come from the client, which never
includes them.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TextIO

import aiohttp
import orjson
from pydantic import BaseModel

from monitor.alerts.config import AlertingConfig
from monitor.app.config import (
    ConfigError,
    PuzzelIdCredentialsConfig,
    RedisConfig,
    TenantConfig,
    iter_secrets,
    load_config,
)
from monitor.app.doctor_sinks import SinkCheck, check_sinks, print_sinks
from monitor.app.logging import configure_logging
from monitor.app.redis_client import RedisReach, check_reach
from monitor.core.clock import SystemClock
from monitor.core.exits import EXIT_CONFIG, EXIT_FAILED, EXIT_OK
from monitor.puzzel.client import PuzzelClient
from monitor.puzzel.endpoints import CONFIGURABLE, ENDPOINTS, Endpoint
from monitor.puzzel.exceptions import (
    PuzzelApiError,
    PuzzelAuthError,
    PuzzelError,
    PuzzelMalformedResponse,
    PuzzelNotFound,
)
from monitor.puzzel.models import (
    AccessPointTicker,
    AgentStats,
    PauseType,
    SystemQueue,
    TokenInformation,
    User,
    UserGroup,
    UserGroupAgentState,
    UserStateInformation,
    UserSummary,
    VisualQueue,
    VisualQueueState,
    VisualQueueTicker,
    parse_as,
    parse_rows,
)

OK = "ok"
UNSUPPORTED = "unsupported"
SHAPE = "shape problem"
AUTH = "auth problem"
ERROR = "error"

AGENT_STATE = "user_group_state_information"


@dataclass(frozen=True, slots=True)
class Spec:
    """How doctor calls one endpoint and what its answer should look like."""

    model: type[BaseModel]
    many: bool  # a list of rows (else one object)
    path: Mapping[str, str] = field(default_factory=dict)  # fixed path placeholders
    user_query: bool = False  # `?userId=<the API user>`, as the client's typed method sends
    agent_path: bool = False  # `{userId}` in the path: an agent seen in an earlier answer


_TODAY = {"tickerPeriodWindow": "Today"}

# Every configurable endpoint, in the order doctor calls them (agent ids come from earlier answers).
SPECS: dict[str, Spec] = {
    "access_token_information": Spec(TokenInformation, many=False),
    AGENT_STATE: Spec(UserGroupAgentState, many=True, path=_TODAY, user_query=True),
    "visual_queue_state_information": Spec(
        VisualQueueState, many=True, path={"result": "All"}, user_query=True
    ),
    "visual_queues": Spec(VisualQueue, many=True),
    "users": Spec(UserSummary, many=True),
    "user": Spec(User, many=False, agent_path=True),
    "user_groups": Spec(UserGroup, many=True),
    "queues": Spec(SystemQueue, many=True),
    "user_state_information": Spec(UserStateInformation, many=False, agent_path=True),
    "agent_stats": Spec(AgentStats, many=True, path=_TODAY, user_query=True),
    "visual_queue_ticker": Spec(VisualQueueTicker, many=True, path=_TODAY),
    "access_point_tickers": Spec(AccessPointTicker, many=True, path=_TODAY),
    "pause_types": Spec(PauseType, many=True, user_query=True),
}
assert frozenset(SPECS) == CONFIGURABLE, "doctor must know every configurable endpoint"


@dataclass(frozen=True, slots=True)
class Probe:
    """One row of the table: one call of one endpoint (or the authentication)."""

    endpoint: str
    path: str  # the tenant's path template
    verdict: str
    on: bool = True  # whether the monitor calls it for this tenant
    status: int | None = None
    code: int | None = None
    rows: int | None = None
    missing: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()
    latency_ms: float | None = None
    detail: str = ""
    answer: Any = field(default=None, repr=False)  # the unwrapped result, for --record
    answered: bool = False  # whether `answer` is a real answer (it may be null)

    @property
    def shown_verdict(self) -> str:
        return self.verdict if self.on else f"{self.verdict} (off)"


@dataclass(frozen=True, slots=True)
class TenantReport:
    tenant: str
    api_base_url: str
    probes: list[Probe]

    @property
    def healthy(self) -> bool:
        """Authentication and the agent-state call both worked."""
        verdicts = {p.endpoint: p.verdict for p in self.probes}
        return verdicts.get(AGENT_STATE) == OK and all(
            p.verdict == OK for p in self.probes if ENDPOINTS[p.endpoint].host != "api"
        )


# --- judging one answer ---------------------------------------------------------------------


def known_keys(model: type[BaseModel]) -> frozenset[str]:
    """Field names and aliases of `model` (what an answer's row may carry without surprise)."""
    keys: set[str] = set()
    for name, info in model.model_fields.items():
        keys.add(name)
        if info.alias:
            keys.add(info.alias)
    return frozenset(keys)


def unknown_fields(model: type[BaseModel], data: Any) -> tuple[str, ...]:
    """Top-level keys, across all rows of `data`, that `model` does not know."""
    rows = data if isinstance(data, list) else [data]
    known = known_keys(model)
    seen = {k for row in rows if isinstance(row, dict) for k in row if k not in known}
    return tuple(sorted(seen))


def judge(spec: Spec, data: Any, *, name: str) -> tuple[str, int, tuple[str, ...], str]:
    """(verdict, rows, required fields missing, detail) of a successful answer `data`."""
    if spec.many:
        try:
            parsed = parse_rows(spec.model, data, endpoint=name)
        except PuzzelMalformedResponse as exc:
            return SHAPE, 0, (exc.field or "result",), str(exc)
        missing = tuple(sorted({r.field for r in parsed.rejected}))
        rows = len(data) if isinstance(data, list) else 0
        if not missing:
            return OK, rows, (), ""
        dropped = f"{name}: {len(parsed.rejected)} of {rows} rows would be dropped"
        return SHAPE, rows, missing, dropped
    try:
        parse_as(spec.model, data, endpoint=name)
    except PuzzelMalformedResponse as exc:
        where = (exc.field or "result").removeprefix("result.")
        return SHAPE, int(data is not None), (where,), str(exc)
    return OK, 1, (), ""


def failed(ep: Endpoint, exc: PuzzelError, status: int | None, latency_ms: float) -> Probe:
    """The table row of a call that raised `exc`."""
    verdict, code = ERROR, None
    if isinstance(exc, PuzzelApiError):
        code, status = exc.code, exc.http_status
        verdict = UNSUPPORTED if isinstance(exc, PuzzelNotFound) else ERROR
    elif isinstance(exc, PuzzelAuthError):
        verdict, status = AUTH, exc.http_status or status
    elif isinstance(exc, PuzzelMalformedResponse):
        verdict = SHAPE
    missing = (exc.field,) if isinstance(exc, PuzzelMalformedResponse) and exc.field else ()
    return Probe(
        ep.name,
        ep.template,
        verdict,
        on=ep.on,
        status=status,
        code=code,
        missing=missing,
        latency_ms=latency_ms,
        detail=str(exc),
    )


# --- calling ----------------------------------------------------------------------------------


class StatusTrace:
    """The HTTP status of the last response on a session (doctor calls one thing at a time)."""

    def __init__(self) -> None:
        self.last: int | None = None
        self.config = aiohttp.TraceConfig()
        self.config.on_request_end.append(self._on_end)

    async def _on_end(
        self, _session: aiohttp.ClientSession, _ctx: SimpleNamespace, params: Any
    ) -> None:
        self.last = params.response.status


def _elapsed_ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def auth_endpoint(tenant: TenantConfig) -> Endpoint:
    """The auth endpoint this tenant's credentials use."""
    if isinstance(tenant.credentials, PuzzelIdCredentialsConfig):
        return ENDPOINTS["oidc_token"]
    return ENDPOINTS["login"]


async def authenticate(client: PuzzelClient, ep: Endpoint, trace: StatusTrace) -> Probe:
    """The first row: getting a token with the configured credentials (never shown)."""
    trace.last = None
    start = time.perf_counter()
    try:
        await client.auth.get_token()
    except PuzzelError as exc:
        return failed(ep, exc, trace.last, _elapsed_ms(start))
    return Probe(ep.name, ep.template, OK, status=trace.last, latency_ms=_elapsed_ms(start))


def call_args(
    spec: Spec, user_id: int | str | None, agent_id: int | str | None
) -> tuple[dict[str, str], dict[str, str]]:
    """(query, path placeholders) of one call."""
    query = {"userId": str(user_id)} if spec.user_query and user_id is not None else {}
    path = dict(spec.path)
    if spec.agent_path:
        path["userId"] = str(agent_id if agent_id is not None else user_id)
    return query, path


async def probe(
    client: PuzzelClient,
    name: str,
    trace: StatusTrace,
    *,
    user_id: int | str | None,
    agent_id: int | str | None,
) -> Probe:
    """Call endpoint `name` once and judge the answer."""
    ep, spec = client.endpoints[name], SPECS[name]
    query, path = call_args(spec, user_id, agent_id)
    trace.last = None
    start = time.perf_counter()
    try:
        data = await client.raw(name, query or None, **path)
    except PuzzelError as exc:
        return failed(ep, exc, trace.last, _elapsed_ms(start))
    latency = _elapsed_ms(start)
    verdict, rows, missing, detail = judge(spec, data, name=name)
    return Probe(
        name,
        ep.template,
        verdict,
        on=ep.on,
        status=trace.last or 200,
        code=0,
        rows=rows,
        missing=missing,
        unknown=unknown_fields(spec.model, data),
        latency_ms=latency,
        detail=detail,
        answer=data,
        answered=True,
    )


def first_agent_id(answer: Any, key: str) -> int | str | None:
    """The first `key` (an agent's id) among the rows of a list answer."""
    if not isinstance(answer, list):
        return None
    for row in answer:
        if isinstance(row, dict) and isinstance(row.get(key), int | str):
            value: int | str = row[key]
            return value
    return None


async def api_user(client: PuzzelClient) -> int | str | None:
    try:
        return await client.api_user_id()
    except PuzzelError:
        return None


async def probe_endpoints(client: PuzzelClient, trace: StatusTrace) -> list[Probe]:
    """Every configurable endpoint once, in `SPECS` order."""
    probes: list[Probe] = []
    user_id: int | str | None = None
    agent_id: int | str | None = None
    for name in SPECS:
        if name == AGENT_STATE:
            user_id = await api_user(client)
        result = await probe(client, name, trace, user_id=user_id, agent_id=agent_id)
        probes.append(result)
        if agent_id is None:
            key = "id" if name == "users" else "userId"
            agent_id = first_agent_id(result.answer, key)
    return probes


async def check_tenant(
    tenant: TenantConfig, session: aiohttp.ClientSession, trace: StatusTrace
) -> TenantReport:
    """Authenticate, then (if that worked) probe every endpoint."""
    from monitor.app.service import make_client  # noqa: PLC0415 - service imports a lot

    client = make_client(tenant, session=session, clock=SystemClock())
    probes = [await authenticate(client, auth_endpoint(tenant), trace)]
    if probes[0].verdict == OK:
        probes += await probe_endpoints(client, trace)
    return TenantReport(tenant.customer_key, tenant.api_base_url, probes)


async def check_tenants(tenants: Sequence[TenantConfig]) -> list[TenantReport]:
    trace = StatusTrace()
    async with aiohttp.ClientSession(trace_configs=[trace.config]) as session:
        return [await check_tenant(t, session, trace) for t in tenants]


# --- recording --------------------------------------------------------------------------------

# keys whose string values are personal data, by kind (keys compared case-insensitively)
PERSONAL_KEYS: dict[str, str] = {
    "firstname": "first",
    "lastname": "last",
    "fullname": "name",
    "displayname": "name",
    "username": "user",
    "email": "email",
    "e_mail": "email",
    "mail": "email",
    "mobilephone": "phone",
    "phone": "phone",
    "phonenumber": "phone",
    "lastphonenumber": "phone",
    "mobile": "phone",
    "requestremoteaddress": "address",
    "remoteaddress": "address",
    "callerid": "address",
    "ani": "address",
}
# `name` is personal only in rows about a person (Truto's agent rows carry `userId, name, ...`);
# elsewhere it names a group, profile or quality and is kept.
_PERSON_MARKERS = frozenset({"userId", "firstName", "lastName", "userName"})
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")


class Redactor:
    """Replaces personal data by pseudonyms, consistently: the same input value gets the same
    replacement everywhere in one tenant's recording. Nulls, empty strings, ids, numbers,
    statuses and the shape stay as they are."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], str] = {}
        self._values: dict[str, str] = {}  # every personal value replaced -> its pseudonym
        self._counts: dict[str, int] = {}  # pseudonyms handed out, by kind

    def pseudonym(self, kind: str, value: str) -> str:
        key = (kind, value)
        if key not in self._seen:
            n = self._counts[kind] = self._counts.get(kind, 0) + 1
            self._seen[key] = {
                "first": f"First{n}",
                "last": f"Last{n}",
                "name": f"Person {n}",
                "user": f"user{n}",
                "email": f"user{n}@example.invalid",
                "phone": f"+470000{n:04d}",
                "address": f"+470000{n:04d}",
            }[kind]
            self._values[value] = self._seen[key]
        return self._seen[key]

    def redact(self, data: Any) -> Any:
        """`data` with personal data replaced (a new structure; `data` is not changed)."""
        return self._scrub_known(self._walk(data))

    def _walk(self, data: Any) -> Any:
        if isinstance(data, list):
            return [self._walk(item) for item in data]
        if not isinstance(data, dict):
            return data
        person = not _PERSON_MARKERS.isdisjoint(data)
        return {key: self._value(key, value, person=person) for key, value in data.items()}

    def _value(self, key: str, value: Any, *, person: bool) -> Any:
        kind = PERSONAL_KEYS.get(key.lower()) or ("name" if person and key == "name" else None)
        if kind is None:
            return self._walk(value)
        if isinstance(value, str) and value.strip():
            return self.pseudonym(kind, value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return int(self.pseudonym("phone", str(value)).lstrip("+"))
        return value if value in (None, "") else self._walk(value)

    def _scrub_known(self, data: Any) -> Any:
        """A second pass: personal values seen under other keys, and any e-mail address."""
        if isinstance(data, list):
            return [self._scrub_known(item) for item in data]
        if isinstance(data, dict):
            return {k: self._scrub_known(v) for k, v in data.items()}
        if isinstance(data, str):
            if data in self._values:
                return self._values[data]
            return _EMAIL.sub(lambda m: self.pseudonym("email", m.group(0)), data)
        return data


def record(report: TenantReport, directory: Path) -> list[Path]:
    """Write each answered API call of `report` as a fixture; returns the files written."""
    target = directory / report.tenant
    target.mkdir(parents=True, exist_ok=True)
    redactor = Redactor()
    written: list[Path] = []
    for p in report.probes:
        if not p.answered or ENDPOINTS[p.endpoint].host != "api":
            continue
        path = target / f"{p.endpoint}.json"
        envelope = {"result": redactor.redact(p.answer), "code": 0}
        path.write_bytes(orjson.dumps(envelope, option=orjson.OPT_INDENT_2) + b"\n")
        written.append(path)
    return written


# --- printing ---------------------------------------------------------------------------------

HEADERS = ("endpoint", "path", "http", "code", "rows", "missing", "unknown", "ms", "verdict")


def _names(items: tuple[str, ...], limit: int = 3) -> str:
    if not items:
        return "-"
    more = f",+{len(items) - limit}" if len(items) > limit else ""
    return ",".join(items[:limit]) + more


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def cells(p: Probe) -> tuple[str, ...]:
    return (
        p.endpoint,
        p.path,
        _num(p.status),
        _num(p.code),
        _num(p.rows),
        _names(p.missing),
        _names(p.unknown),
        _num(p.latency_ms),
        p.shown_verdict,
    )


def format_table(rows: Iterable[tuple[str, ...]]) -> list[str]:
    table = [HEADERS, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADERS))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in table
    ]


def print_report(report: TenantReport, out: TextIO) -> None:
    print(f"tenant {report.tenant} ({report.api_base_url})", file=out)
    for line in format_table(cells(p) for p in report.probes):
        print("  " + line, file=out)
    notes = [p for p in report.probes if p.detail and p.verdict != UNSUPPORTED]
    for p in notes:
        print(f"  - {p.detail}", file=out)  # client errors start with the endpoint
    off_ok = [p.endpoint for p in report.probes if not p.on and p.verdict == OK]
    if off_ok:
        print(
            f"  answered but turned off (endpoints: {{name: true}}): {', '.join(off_ok)}", file=out
        )
    state = "ok" if report.healthy else "NOT ok (authentication or agent state failed)"
    print(f"  => {state}", file=out)


# --- command ----------------------------------------------------------------------------------


def select_tenants(tenants: Sequence[TenantConfig], key: str | None) -> list[TenantConfig]:
    """All tenants, or the one with customer key `key`. Raises ConfigError if there is none."""
    if key is None:
        return list(tenants)
    chosen = [t for t in tenants if t.customer_key == key]
    if not chosen:
        known = ", ".join(t.customer_key for t in tenants)
        raise ConfigError(f"no tenant {key!r} in the configuration (configured: {known})")
    return chosen


def doctor_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """`puzzel-monitor doctor -c config.yaml [--tenant KEY] [--record DIR]`."""
    out = out or sys.stdout
    try:
        config = load_config(args.config)
        tenants = select_tenants(config.tenants, getattr(args, "tenant", None))
    except ConfigError as e:
        print(f"puzzel-monitor: configuration error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    level = getattr(args, "log_level", "info") or "info"
    # the table says what the client would log; keep stderr for real trouble unless asked
    configure_logging("error" if level == "info" else level, secrets=iter_secrets(config))
    reach, reports, sinks = asyncio.run(_check_all(config.redis, tenants, config.alerting))
    print(reach.describe(), file=out)
    record_dir = getattr(args, "record", None)
    for report in reports:
        print_report(report, out)
        if record_dir:
            files = record(report, Path(record_dir))
            print(
                f"  recorded {len(files)} answers in {Path(record_dir) / report.tenant}", file=out
            )
    print_sinks(sinks, out)
    healthy = all(r.healthy for r in reports) and all(s.healthy for s in sinks)
    return EXIT_OK if healthy else EXIT_FAILED


async def _check_all(
    redis: RedisConfig, tenants: Sequence[TenantConfig], alerting: AlertingConfig
) -> tuple[RedisReach, list[TenantReport], list[SinkCheck]]:
    """Redis (reported, not part of the exit code: doctor is about what Puzzel supports), then
    the tenants, then the alert sinks."""
    return await check_reach(redis), await check_tenants(tenants), await check_sinks(alerting)
