"""Approved ranges are an input of the pure engine: an approval that covers `now` resolves the
agent's open exceptions through the one loop (with the approval as the resolution); after the
range the condition holds again from its end; a withdrawal ends the range there and does not
reach back; the raw accruals do not change."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from monitor.engine.approvals import Approvals
from monitor.engine.engine import next_due
from monitor.engine.model import ApprovedRange
from monitor.rules.loader import ruleset_from_mapping
from tests.engine.driver import Run, drive, local, segments, st

DAY = "2026-03-02"
RULES = ruleset_from_mapping(
    {
        "break_overrun": {"after": "2m"},
        "out_of_adherence": {"after": "5m"},
        "long_pause": {"after": "10m"},
    },
)
SCHEDULE = {
    "1001": segments(
        "1001",
        DAY,
        [("08:00", "10:00", "phone"), ("10:00", "10:15", "break"), ("10:15", "12:00", "phone")],
    )
}


def timeline(back: str) -> dict[str, list[tuple[datetime, object]]]:
    return {
        "1001": [
            (local(DAY, "07:58:40"), st("available")),
            (local(DAY, "10:00:30"), st("pause:Break")),
            (local(DAY, back), st("available")),
            (local(DAY, "12:00:00"), st("logged_off")),
        ]
    }


def approved(
    made: str, start: str, end: str, withdrawn: str | None = None
) -> Callable[[datetime], Approvals]:
    """The approval of 1001 from `start` to `end`, known from `made` (and withdrawn at
    `withdrawn`: from then on its effective end is the withdrawal)."""

    def at(now: datetime) -> Approvals:
        if now < local(DAY, made):
            return {}
        stop = local(DAY, end)
        if withdrawn is not None and now >= local(DAY, withdrawn):
            stop = min(stop, local(DAY, withdrawn))
        return {"1001": [ApprovedRange("1001", local(DAY, start), stop, "ana", "team meeting")]}

    return at


def play(back: str, approvals: Callable[[datetime], Approvals] | None = None) -> Run:
    return drive(
        timeline(back),  # type: ignore[arg-type]
        SCHEDULE,
        RULES,
        local(DAY, "07:30"),
        local(DAY, "12:30"),
        approvals=approvals,
    )


def test_an_approval_covering_now_resolves_the_open_exceptions_once() -> None:
    run = play("10:24:00", approved("10:21:00", "10:15:00", "10:30:00"))
    assert run.ideal("break_overrun") == [("firing", "10:17:30"), ("resolved", "10:21:00")]
    assert run.ideal("out_of_adherence") == [("firing", "10:20:00"), ("resolved", "10:21:00")]
    # long_pause fired before the range began: inside it, every rule about the agent's conduct
    # is excused, so it resolves at 10:21 too
    assert run.ideal("long_pause") == [("firing", "10:10:30"), ("resolved", "10:21:00")]
    for t in run.transitions:
        if t.status == "resolved":
            assert t.details["resolution"] == "approved by ana: team meeting"
        else:
            assert "resolution" not in t.details
    # the raw books are the agent's: the same seconds with or without the approval
    plain = play("10:24:00")
    assert plain.ideal("out_of_adherence") == [("firing", "10:20:00"), ("resolved", "10:24:00")]
    assert "resolution" not in plain.transitions[-1].details
    got, want = run.state.agents["1001"], plain.state.agents["1001"]
    assert (got.scheduled_seconds, got.adherent_seconds) == (
        want.scheduled_seconds,
        want.adherent_seconds,
    )


def test_after_the_range_a_new_exception_opens_from_its_end() -> None:
    run = play("10:40:00", approved("10:21:00", "10:15:00", "10:22:00"))
    assert run.ideal("break_overrun") == [
        ("firing", "10:17:30"),
        ("resolved", "10:21:00"),
        ("firing", "10:24:00"),  # held again from 10:22, fires after its 2 minutes
        ("resolved", "10:40:00"),
    ]
    assert run.ideal("out_of_adherence") == [
        ("firing", "10:20:00"),
        ("resolved", "10:21:00"),
        ("firing", "10:27:00"),
        ("resolved", "10:40:00"),
    ]
    again = [t for t in run.transitions if t.status == "firing" and t.at > local(DAY, "10:22")]
    assert {t.condition_since for t in again} == {local(DAY, "10:22:00")}


def test_a_range_approved_in_advance_keeps_the_exceptions_from_opening() -> None:
    run = play("10:24:00", approved("09:00:00", "10:00:00", "10:30:00"))
    assert run.alerts("break_overrun") == []
    assert run.alerts("out_of_adherence") == []
    assert run.alerts("long_pause") == []


def test_a_withdrawal_does_not_reach_back() -> None:
    # withdrawn after the agent is back: nothing fires again
    late = play("10:24:00", approved("10:21:00", "10:15:00", "11:00:00", withdrawn="10:50:00"))
    assert late.ideal("out_of_adherence") == [("firing", "10:20:00"), ("resolved", "10:21:00")]
    assert len(late.transitions) == 6
    # withdrawn while the agent is still out: a new exception from the withdrawal, not before
    early = play("10:40:00", approved("10:21:00", "10:15:00", "11:00:00", withdrawn="10:30:00"))
    assert early.ideal("out_of_adherence")[2:] == [("firing", "10:35:00"), ("resolved", "10:40:00")]
    refired = [t for t in early.transitions if t.status == "firing" and t.at > local(DAY, "10:21")]
    assert refired
    assert {t.condition_since for t in refired} == {local(DAY, "10:30:00")}


def test_a_range_that_does_not_cover_now_leaves_the_alert_open() -> None:
    run = play("10:24:00", approved("10:21:00", "09:00:00", "10:10:00"))
    assert run.ideal("out_of_adherence") == [("firing", "10:20:00"), ("resolved", "10:24:00")]
    assert all("resolution" not in t.details for t in run.transitions)


def test_next_due_wakes_a_replay_at_the_approvals_bounds() -> None:
    run = play("10:24:00")
    approvals = approved("00:00:00", "12:10:00", "12:20:00")(local(DAY, "12:00"))
    now = local(DAY, "12:05")
    assert next_due(run.state, now=now, schedules=SCHEDULE, ruleset=RULES) is None
    assert next_due(
        run.state, now=now, schedules=SCHEDULE, ruleset=RULES, approvals=approvals
    ) == local(DAY, "12:10")
