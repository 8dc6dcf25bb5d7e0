"""The agent-state vocabulary shared by the simulator, the pollers, the engine and scenarios.

Puzzel reports two fields per agent, `contactCentreStatus` (LoggedOn / LoggedOff / Pause) and
`userStatus` (Available, Connecting, Connected, Busy, WrapUp, NoAnswer, ...), plus a pause type
when paused. We fold them into one `AgentState`: a kind from the scenario-format vocabulary and,
for pauses, the pause type's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class StateKind(StrEnum):
    LOGGED_OFF = "logged_off"
    AVAILABLE = "available"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    BUSY = "busy"
    WRAP_UP = "wrap_up"
    NO_ANSWER = "no_answer"
    PAUSE = "pause"
    UNKNOWN = "unknown"  # a status value Puzzel sent that we do not map (the unmapped_state rule)


# userStatus value (as Puzzel writes it) for each logged-on kind
USER_STATUS_BY_KIND: dict[StateKind, str] = {
    StateKind.AVAILABLE: "Available",
    StateKind.CONNECTING: "Connecting",
    StateKind.CONNECTED: "Connected",
    StateKind.BUSY: "Busy",
    StateKind.WRAP_UP: "WrapUp",
    StateKind.NO_ANSWER: "NoAnswer",
}
_KIND_BY_USER_STATUS = {v.lower(): k for k, v in USER_STATUS_BY_KIND.items()}
# Seen in the wild with other spellings
_KIND_BY_USER_STATUS.update(
    {
        "wrap-up": StateKind.WRAP_UP,
        "wrap_up": StateKind.WRAP_UP,
        "no_answer": StateKind.NO_ANSWER,
        "ready": StateKind.AVAILABLE,
    }
)

# Numeric codes for the exporter's per-agent state gauge (Grafana value mappings use these).
STATE_CODES: dict[StateKind, int] = {
    StateKind.LOGGED_OFF: 0,
    StateKind.AVAILABLE: 1,
    StateKind.CONNECTING: 2,
    StateKind.CONNECTED: 3,
    StateKind.BUSY: 4,
    StateKind.WRAP_UP: 5,
    StateKind.NO_ANSWER: 6,
    StateKind.PAUSE: 7,
    StateKind.UNKNOWN: 8,
}


_FROM_PUZZEL_MAX = 4096


@dataclass(frozen=True, slots=True)
class AgentState:
    """One agent state: a kind and, for pauses, the pause type's name (None if unknown)."""

    kind: StateKind
    pause_type: str | None = None
    raw: str | None = None  # the unmapped Puzzel value, for UNKNOWN

    @classmethod
    def parse(cls, text: str, pause_type: str | None = None) -> AgentState:
        """Parse a scenario-vocabulary state (`available`, `pause`, ...). Raises ValueError."""
        try:
            kind = StateKind(text.strip().lower())
        except ValueError:
            allowed = ", ".join(k.value for k in StateKind if k is not StateKind.UNKNOWN)
            raise ValueError(f"unknown state {text!r}; expected one of: {allowed}") from None
        if kind is StateKind.UNKNOWN:
            raise ValueError("'unknown' is not a state a scenario can set")
        if pause_type is not None and kind is not StateKind.PAUSE:
            raise ValueError(f"only 'pause' takes a pause type, not {text!r}")
        return cls(kind, pause_type if kind is StateKind.PAUSE else None)

    @classmethod
    def from_puzzel(
        cls,
        contact_centre_status: str | None,
        user_status: str | None,
        pause_type: str | None = None,
    ) -> AgentState:
        """Fold Puzzel's two status fields into one state (one shared object per combination
        seen: a few dozen in practice, asked for thousands of times a cycle)."""
        key = (contact_centre_status, user_status, pause_type)
        state = _FROM_PUZZEL.get(key)
        if state is None:
            state = cls._fold(contact_centre_status, user_status, pause_type)
            if len(_FROM_PUZZEL) < _FROM_PUZZEL_MAX:  # odd values must not grow it forever
                _FROM_PUZZEL[key] = state
        return state

    @classmethod
    def _fold(
        cls,
        contact_centre_status: str | None,
        user_status: str | None,
        pause_type: str | None,
    ) -> AgentState:
        ccs = (contact_centre_status or "").strip().lower()
        if ccs in ("loggedoff", "logged_off", ""):
            return cls(StateKind.LOGGED_OFF)
        if ccs == "pause":
            return cls(StateKind.PAUSE, pause_type)
        if ccs == "loggedon":
            kind = _KIND_BY_USER_STATUS.get((user_status or "").strip().lower())
            if kind is None:
                return cls(StateKind.UNKNOWN, raw=f"LoggedOn/{user_status}")
            return cls(kind)
        return cls(StateKind.UNKNOWN, raw=f"{contact_centre_status}/{user_status}")

    def to_puzzel(self) -> tuple[str, str]:
        """(contactCentreStatus, userStatus) as the simulator reports this state."""
        if self.kind is StateKind.LOGGED_OFF:
            return "LoggedOff", "Available"
        if self.kind is StateKind.PAUSE:
            return "Pause", "Available"
        if self.kind is StateKind.UNKNOWN:
            return "LoggedOn", "System"
        return "LoggedOn", USER_STATUS_BY_KIND[self.kind]

    @property
    def logged_on(self) -> bool:
        return self.kind is not StateKind.LOGGED_OFF

    @property
    def label(self) -> str:
        """Human/label form: `available`, `pause:Break`."""
        if self.kind is StateKind.PAUSE and self.pause_type:
            return f"pause:{self.pause_type}"
        return self.kind.value

    def __str__(self) -> str:
        return self.label


LOGGED_OFF = AgentState(StateKind.LOGGED_OFF)


_FROM_PUZZEL: dict[tuple[str | None, str | None, str | None], AgentState] = {}
