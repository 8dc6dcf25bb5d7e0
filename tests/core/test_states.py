"""`AgentState.from_puzzel`: Puzzel's two status fields folded into one state, shared per
combination, and the sharing bounded."""

from __future__ import annotations

from monitor.core import states
from monitor.core.states import AgentState, StateKind


def test_fold_and_one_shared_object_per_combination() -> None:
    a = AgentState.from_puzzel("Pause", "Available", "Lunch")
    assert a == AgentState(StateKind.PAUSE, "Lunch")
    assert AgentState.from_puzzel("Pause", "Available", "Lunch") is a
    assert AgentState.from_puzzel("Pause", "Available", "Break") == AgentState(
        StateKind.PAUSE, "Break"
    )
    assert AgentState.from_puzzel(" LoggedOff ", None) == AgentState(StateKind.LOGGED_OFF)
    odd = AgentState.from_puzzel("Weird", "X")
    assert odd == AgentState(StateKind.UNKNOWN, raw="Weird/X")


def test_odd_values_do_not_grow_the_shared_states_forever() -> None:
    for i in range(states._FROM_PUZZEL_MAX + 50):
        s = AgentState.from_puzzel("LoggedOn", f"odd-{i}")
        assert s == AgentState(StateKind.UNKNOWN, raw=f"LoggedOn/odd-{i}")
    assert len(states._FROM_PUZZEL) == states._FROM_PUZZEL_MAX
