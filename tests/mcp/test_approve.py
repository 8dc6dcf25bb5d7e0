"""The MCP `approve_exception` and `withdraw_approval` tools, through the SDK's own client: they
need the 'approve' scope and honour the token's tenant and team restrictions; each call is in
the MCP audit stream, and each approval and withdrawal in the approvals' audit trail under the
token's name; the approval reaches the engine and resolves the agent's open exception."""

from __future__ import annotations

from datetime import timedelta

from monitor.core.snapshots import AgentObservation, AgentSnapshot
from monitor.history.approvals import ApprovalStore
from tests.mcp.conftest import AT, TENANT, Monitored
from tests.mcp.test_mcp import call, in_process, over_http, refused

RANGE = {"start": "2026-03-02T10:00:00", "end": "2026-03-02T10:30:00", "reason": "team meeting"}


async def _cycle(m: Monitored, seconds: float) -> list[tuple[str, str, str, str]]:
    """One more agent-state cycle, every agent as the engine last saw it; the transitions."""
    now = AT + timedelta(seconds=seconds)
    seen: list[tuple[str, str, str, str]] = []

    async def note(transitions):  # type: ignore[no-untyped-def]
        seen.extend(
            (t.rule.value, t.subject_id, t.status, t.details.get("resolution", ""))
            for t in transitions
        )

    m.pipeline._observers.append(note)
    agents = tuple(
        AgentObservation(a, mem.name, mem.team, mem.state, mem.since)
        for a, mem in m.pipeline.state.agents.items()
    )
    await m.pipeline.on_agent_cycle(TENANT, [AgentSnapshot(TENANT, "all", now, agents)])
    m.pipeline._observers.remove(note)
    return seen


async def test_approve_over_mcp_resolves_the_exception_and_is_audited(monitored: Monitored) -> None:
    m = monitored
    lead, _ = await m.tokens.create("lead", scopes=["read", "approve"])
    async with over_http(m, lead) as client:
        alerts = (await call(client, "open_alerts", tenant=TENANT))["alerts"]
        assert ("out_of_adherence", "agent 1102") in {(a["rule"], a["subject"]) for a in alerts}
        approval = await call(client, "approve_exception", tenant=TENANT, agent_id="1102", **RANGE)
        assert (approval["agent"], approval["by"], approval["reason"]) == (
            "1102", "mcp:lead", "team meeting",
        )  # fmt: skip
    # the next cycle resolves 1102's exception, as approved; 1103's stays open
    assert await _cycle(m, 5) == [
        ("out_of_adherence", "1102", "resolved", "approved by mcp:lead: team meeting")
    ]
    async with in_process(m, lead) as client:
        withdrawn = await call(
            client, "withdraw_approval", tenant=TENANT, approval_id=approval["id"]
        )
        assert withdrawn["withdrawn_by"] == "mcp:lead"
        assert "not found" in await refused(
            client, "withdraw_approval", tenant=TENANT, approval_id=approval["id"]
        )
    trail = await ApprovalStore(m.view.history).audit(TENANT)  # type: ignore[arg-type]
    assert [(e["action"], e["by"], e["id"]) for e in trail] == [
        ("approve", "mcp:lead", approval["id"]),
        ("withdraw", "mcp:lead", approval["id"]),
    ]
    assert [(e["token"], e["tool"], e["code"]) for e in await m.audit.entries()] == [
        ("lead", "open_alerts", "ok"),
        ("lead", "approve_exception", "ok"),
        ("lead", "withdraw_approval", "ok"),
        ("lead", "withdraw_approval", "not_found"),
    ]


async def test_approve_refusals(monitored: Monitored) -> None:
    m = monitored
    reader, _ = await m.tokens.create("reader", scopes=["read", "ack"])
    other, _ = await m.tokens.create("other", scopes=["approve"], tenants=["999"])
    sales, _ = await m.tokens.create("sales", scopes=["approve"], teams=["Sales"])
    brief, _ = await m.tokens.create("brief", scopes=["approve"], ttl=timedelta(minutes=10))
    args = {"tenant": TENANT, "agent_id": "1102", **RANGE}
    async with in_process(m, reader) as client:
        assert "lacks the 'approve' scope" in await refused(client, "approve_exception", **args)
    async with in_process(m, other) as client:
        assert "tenant '12345'" in await refused(client, "approve_exception", **args)
    async with in_process(m, sales) as client:
        assert "team 'Support'" in await refused(client, "approve_exception", **args)
        assert "not seen agent '9999'" in await refused(
            client, "approve_exception", **(args | {"agent_id": "9999"})
        )
        assert "end=" in await refused(
            client, "approve_exception", **(args | {"agent_id": "2201", "end": "2026-03-02T09:00"})
        )
        ok = await call(client, "approve_exception", **(args | {"agent_id": "2201"}))
        assert ok["by"] == "mcp:sales"
    m.clock.advance(11 * 60)
    async with in_process(m, brief) as client:
        assert "expired" in await refused(client, "approve_exception", **args)
    assert [a["agent"] for a in await ApprovalStore(m.view.history).active(TENANT)] == ["2201"]  # type: ignore[arg-type]
    assert [(e["token"], e["tool"], e["code"]) for e in await m.audit.entries()] == [
        ("reader", "approve_exception", "denied"),
        ("other", "approve_exception", "denied"),
        ("sales", "approve_exception", "denied"),
        ("sales", "approve_exception", "not_found"),
        ("sales", "approve_exception", "invalid"),
        ("sales", "approve_exception", "ok"),
        ("", "approve_exception", "denied"),
    ]
