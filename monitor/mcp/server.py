"""The MCP server (official `mcp` SDK): tools over a `MonitorView`, each call authorised by a
token and written to the audit stream.

The token comes from the transport: over HTTP the `Authorization: Bearer` header of each
request; over stdio (a desktop assistant starts `puzzel-monitor mcp`) the one the process was
started with. Refusals are tool errors (`isError`), so a model reads why.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import redis.asyncio as aioredis
import structlog
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field, SecretStr

from monitor.mcp import audit as codes
from monitor.mcp.audit import AuditLog
from monitor.mcp.tokens import Grant, TokenRejected, TokenStore
from monitor.mcp.tools import Denied, NotFound, Tools
from monitor.mcp.view import MonitorView

log = structlog.get_logger(__name__)

INSTRUCTIONS = (
    "puzzel-monitor watches Puzzel contact centres: agents' live states against their "
    "schedules (adherence), queues and alerts. Tenants are Puzzel customer keys, teams are "
    "Puzzel user groups. Leave tenant empty to ask about every tenant your token reaches. "
    "Times are UTC (RFC 3339)."
)

Tenant = Annotated[
    str | None, Field(description="Puzzel customer key; leave empty for every tenant in reach")
]
Team = Annotated[
    str | None, Field(description="Team (Puzzel user group name), e.g. 'Support'; empty: all")
]
Fingerprint = Annotated[
    str, Field(description="The alert's fingerprint, as open_alerts returns it")
]
Duration = Annotated[
    str | None, Field(description="How long, e.g. '30m', '2h', '1d' (at most 30 days)")
]
Until = Annotated[
    str | None, Field(description="Or until when, an RFC 3339 time; give duration or until")
]

READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
WRITE = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)

Impl = Callable[[Grant], Awaitable[dict[str, Any]]]


class _Refused(ToolError):
    """A refusal the gate has already written to the audit stream."""


class Gate:
    """Token, scope, audit: every tool call goes through `call`."""

    def __init__(self, tokens: TokenStore, audit: AuditLog, token: SecretStr | None) -> None:
        self._tokens = tokens
        self._audit = audit
        self._token = token

    def _given(self, ctx: Context | None) -> str | None:
        headers = ctx.headers if ctx is not None else None
        if headers is None:  # stdio or in-process: the token the server was started with
            return self._token.get_secret_value() if self._token else None
        scheme, _, value = (headers.get("authorization") or "").partition(" ")
        return value.strip() if scheme.lower() == "bearer" else None

    async def call(
        self, ctx: Context, tool: str, scope: str, arguments: dict[str, Any], impl: Impl
    ) -> dict[str, Any]:
        arguments = {k: v for k, v in arguments.items() if v is not None}
        name: str | None = None
        code, message = codes.OK, ""
        try:
            grant = await self._tokens.verify(self._given(ctx))
            name = grant.name
            if scope not in grant.scopes:
                raise Denied(f"this token lacks the {scope!r} scope needed by {tool}")
            return await impl(grant)
        except (TokenRejected, Denied) as exc:
            code, message = codes.DENIED, f"denied: {exc}"
        except NotFound as exc:
            code, message = codes.NOT_FOUND, f"not found: {exc}"
        except ValueError as exc:
            code, message = codes.INVALID, f"invalid arguments: {exc}"
        except Exception:
            log.exception("MCP tool failed", tool=tool)
            code, message = codes.ERROR, "internal error (see the monitor's log)"
        finally:
            await self._audit.record(token=name, tool=tool, arguments=arguments, code=code)
        raise _Refused(message)

    async def rejected(self, ctx: Context | None, tool: str, arguments: dict[str, Any]) -> None:
        """A call the SDK refused before the tool ran (unknown tool, arguments against the
        schema): audited too, under the token's name if the token is valid."""
        try:
            name: str | None = (await self._tokens.verify(self._given(ctx))).name
        except TokenRejected:
            name = None
        await self._audit.record(token=name, tool=tool, arguments=arguments, code=codes.INVALID)


class _AuditedServer(MCPServer):
    """The SDK's server, with the calls it refuses itself written to the audit stream too."""

    gate: Gate

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context | None = None
    ) -> Any:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            # the SDK may wrap the gate's refusal: that one is in the stream already
            if not isinstance(exc, _Refused) and not isinstance(exc.__cause__, _Refused):
                await self.gate.rejected(context, name, arguments)
            raise


def build_server(
    tools: Tools, tokens: TokenStore, audit: AuditLog, *, token: SecretStr | None = None
) -> MCPServer:
    """The server with every tool; `token` authorises stdio and in-process sessions."""
    server = _AuditedServer("puzzel-monitor", instructions=INSTRUCTIONS, log_level="WARNING")
    gate = server.gate = Gate(tokens, audit, token)
    _read_tools(server, tools, gate)
    _write_tools(server, tools, gate)
    _approve_tools(server, tools, gate)
    return server


def _read_tools(server: MCPServer, tools: Tools, gate: Gate) -> None:
    @server.tool(
        annotations=READ,
        description="Agents who are out of adherence right now: their live state differs from "
        "what their schedule allows. Each row: agent, team, state, scheduled activity, since "
        "when. Filter by tenant and/or team.",
    )
    async def agents_out_of_adherence(
        ctx: Context, tenant: Tenant = None, team: Team = None
    ) -> dict[str, Any]:
        args = {"tenant": tenant, "team": team}
        return await gate.call(
            ctx, "agents_out_of_adherence", "read", args,
            lambda g: tools.agents_out_of_adherence(g, tenant, team),
        )  # fmt: skip

    @server.tool(
        annotations=READ,
        description="One agent: live state and since when, adherent or not, the schedule from "
        "12 h before to 12 h after now, and the agent's open exceptions (firing alerts).",
    )
    async def agent_status(
        ctx: Context,
        tenant: Annotated[str, Field(description="Puzzel customer key")],
        agent_id: Annotated[str, Field(description="Puzzel user id of the agent")],
    ) -> dict[str, Any]:
        args = {"tenant": tenant, "agent_id": agent_id}
        return await gate.call(
            ctx, "agent_status", "read", args, lambda g: tools.agent_status(g, tenant, agent_id)
        )

    @server.tool(
        annotations=READ,
        description="Queues as last polled: waiting contacts, longest wait, agents logged on, "
        "ready and in pause, today's offered/answered/abandoned and SLA.",
    )
    async def queue_status(
        ctx: Context,
        tenant: Tenant = None,
        queue_id: Annotated[
            str | None, Field(description="One visual queue id; empty: all")
        ] = None,
    ) -> dict[str, Any]:
        args = {"tenant": tenant, "queue_id": queue_id}
        return await gate.call(
            ctx, "queue_status", "read", args, lambda g: tools.queue_status(g, tenant, queue_id)
        )

    _more_read_tools(server, tools, gate)


def _more_read_tools(server: MCPServer, tools: Tools, gate: Gate) -> None:
    @server.tool(
        annotations=READ,
        description="Adherence per team from the engine's counters (since it first saw each "
        "agent): scheduled hours, adherence (share of scheduled time in an allowed state) and "
        "conformance (productive time over scheduled productive time), as ratios 0..1.",
    )
    async def team_adherence(
        ctx: Context, tenant: Tenant = None, team: Team = None
    ) -> dict[str, Any]:
        args = {"tenant": tenant, "team": team}
        return await gate.call(
            ctx, "team_adherence", "read", args, lambda g: tools.team_adherence(g, tenant, team)
        )

    @server.tool(
        annotations=READ,
        description="Alerts firing now (agent, queue, team and data-freshness rules), oldest "
        "first, with their fingerprint (for acknowledge/snooze) and any snooze or ack in force.",
    )
    async def open_alerts(ctx: Context, tenant: Tenant = None, team: Team = None) -> dict[str, Any]:
        args = {"tenant": tenant, "team": team}
        return await gate.call(
            ctx, "open_alerts", "read", args, lambda g: tools.open_alerts(g, tenant, team)
        )

    @server.tool(
        annotations=READ,
        description="What the Puzzel connection supports and how polling goes: per tenant, "
        "which endpoints answer, and per poll kind whether it is up, the last success and "
        "the counts of polls and failures.",
    )
    async def connection_status(ctx: Context, tenant: Tenant = None) -> dict[str, Any]:
        return await gate.call(
            ctx, "connection_status", "read", {"tenant": tenant},
            lambda g: tools.connection_status(g, tenant),
        )  # fmt: skip


def _write_tools(server: MCPServer, tools: Tools, gate: Gate) -> None:
    @server.tool(
        annotations=WRITE,
        description="Acknowledge an open alert: no repeats or escalations for this episode "
        "(until it resolves, or until duration/until, default 7 days). Needs the 'ack' scope.",
    )
    async def acknowledge_alert(
        ctx: Context, fingerprint: Fingerprint, duration: Duration = None, until: Until = None
    ) -> dict[str, Any]:
        body = {"duration": duration, "until": until}
        return await gate.call(
            ctx, "acknowledge_alert", "ack", {"fingerprint": fingerprint, **body},
            lambda g: tools.acknowledge_alert(g, fingerprint, _given(body)),
        )  # fmt: skip

    @server.tool(
        annotations=WRITE,
        description="Snooze an open alert: no notifications about it for a while (give "
        "duration, e.g. '45m', or until). Needs the 'ack' scope.",
    )
    async def snooze_alert(
        ctx: Context, fingerprint: Fingerprint, duration: Duration = None, until: Until = None
    ) -> dict[str, Any]:
        body = {"duration": duration, "until": until}
        return await gate.call(
            ctx, "snooze_alert", "ack", {"fingerprint": fingerprint, **body},
            lambda g: tools.snooze_alert(g, fingerprint, _given(body)),
        )  # fmt: skip

    @server.tool(
        annotations=WRITE,
        description="End an alert's snooze now. Needs the 'ack' scope.",
    )
    async def unsnooze_alert(ctx: Context, fingerprint: Fingerprint) -> dict[str, Any]:
        return await gate.call(
            ctx, "unsnooze_alert", "ack", {"fingerprint": fingerprint},
            lambda g: tools.unsnooze_alert(g, fingerprint),
        )  # fmt: skip


def _approve_tools(server: MCPServer, tools: Tools, gate: Gate) -> None:
    @server.tool(
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=False, idempotent_hint=False,
            open_world_hint=False,
        ),
        description="Approve (excuse) a time range of one agent, with a reason: e.g. the "
        "supervisor sent them to a meeting. Approved time counts as adherent in the adherence "
        "records, and an open exception of the agent (out_of_adherence, break_overrun, ...) "
        "that the range covers now resolves within a cycle. To excuse an open exception, give "
        "its agent and a range from its 'since' (open_alerts) to when it is expected to end. "
        "Times are RFC 3339 (without an offset: the tenant's local time). Returns the "
        "approval with its id (for withdraw_approval). Needs the 'approve' scope.",
    )  # fmt: skip
    async def approve_exception(
        ctx: Context,
        *,
        tenant: Annotated[str, Field(description="Puzzel customer key")],
        agent_id: Annotated[str, Field(description="Puzzel user id of the agent")],
        start: Annotated[str, Field(description="Start of the approved range, RFC 3339")],
        end: Annotated[str, Field(description="End of the approved range, RFC 3339")],
        reason: Annotated[str, Field(description="Why, as the audit trail will show it")],
    ) -> dict[str, Any]:
        body = {"start": start, "end": end, "reason": reason}
        return await gate.call(
            ctx, "approve_exception", "approve", {"tenant": tenant, "agent_id": agent_id, **body},
            lambda g: tools.approve(g, tenant, agent_id, body),
        )  # fmt: skip

    @server.tool(
        annotations=WRITE,
        description="Withdraw an approval (by its id): it no longer counts in the records; "
        "what it excused in the past stays resolved. Needs the 'approve' scope.",
    )
    async def withdraw_approval(
        ctx: Context,
        tenant: Annotated[str, Field(description="Puzzel customer key")],
        approval_id: Annotated[str, Field(description="The id approve_exception returned")],
    ) -> dict[str, Any]:
        return await gate.call(
            ctx, "withdraw_approval", "approve", {"tenant": tenant, "approval_id": approval_id},
            lambda g: tools.withdraw_approval(g, tenant, approval_id),
        )  # fmt: skip


def _given(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


def monitor_server(
    view: MonitorView,
    redis: aioredis.Redis,
    *,
    key_prefix: str = "pzm",
    audit_maxlen: int = 100_000,
    token: SecretStr | None = None,
) -> tuple[MCPServer, TokenStore, AuditLog]:
    """The server over `view`, with the tokens and audit stream of the monitor's Redis."""
    clock = view.clock
    tokens = TokenStore(redis, clock=clock, key_prefix=key_prefix)
    audit = AuditLog(redis, clock=clock, key_prefix=key_prefix, maxlen=audit_maxlen)
    return build_server(Tools(view), tokens, audit, token=token), tokens, audit
