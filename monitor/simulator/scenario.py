"""Scenario files: the contract in ../shared/scenario-format.md, parsed into frozen dataclasses.

Times are read *as written*: the YAML loader here does not apply YAML 1.1's sexagesimal numbers
(`10:00` would be 600) nor its timestamps, and every error names the file, the line, the field
path and what was expected. Parsing is pure: `parse_scenario` takes text, `load_scenario` reads
the file and hands it over.
"""

from __future__ import annotations

import bisect
import itertools
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from monitor.core.durations import parse_duration
from monitor.core.states import LOGGED_OFF, AgentState
from monitor.engine.model import RuleName, Segment
from monitor.rules.loader import DEFAULT_ACTIVITIES
from monitor.rules.yaml_reader import StrictLoader

# Visual-queue state fields (puzzel-api.md 4.2), reported even when a scenario never sets them.
QUEUE_FIELDS: tuple[str, ...] = (
    "queueSize",
    "queueSizeCiq",
    "queueSizePreferred",
    "waitTimeMaxSeconds",
    "waitTimeAverageSeconds",
    "agentsLoggedOn",
    "agentsReady",
    "agentsInPause",
    "agentsUnavailable",
    "callsOfferedToday",
    "callsAnsweredToday",
    "callsAbandonedToday",
    "callsAnsweredWithinSla",
    "callsAbandonedWithinSla",
    "ciqsOfferedToday",
    "ciqsAnsweredToday",
    "ciqScheduled",
    "sla",
    "alarmFlag",
)
# "a field never given reads 0, except sla, which reads 100"
QUEUE_FIELD_DEFAULTS: dict[str, float] = dict.fromkeys(QUEUE_FIELDS, 0.0) | {"sla": 100.0}

DEFAULT_CADENCE_USER_STATES = timedelta(seconds=5)
DEFAULT_CADENCE_QUEUES = timedelta(seconds=15)

_KNOWN_TOP_LEVEL = frozenset(
    {"name", "tenant", "start", "end", "cadence", "rules", "activities", "agents", "queues"}
    | {"expect"}
)
_THRESHOLD_RULES = frozenset({RuleName.QUEUE_SLA_BELOW, RuleName.QUEUE_WAIT_ABOVE})

_TIME_FORMS = "'HH:MM', 'HH:MM:SS' or a local date-time 'YYYY-MM-DDTHH:MM[:SS]'"
_CLOCK_TIME = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?")
_DATE_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?"
    r"\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?"
)


class ScenarioError(ValueError):
    """A scenario that breaks the contract; the message names file, line, field and expectation."""

    def __init__(self, source: str, line: int | None, path: str, message: str) -> None:
        self.source = source
        self.line = line
        self.path = path
        self.detail = message
        where = f"{source}:{line}" if line is not None else source
        field_part = f" {path}:" if path else ""
        super().__init__(f"{where}:{field_part} {message}")


# --- data -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScenarioAgent:
    id: str
    name: str
    group: str
    segments: tuple[Segment, ...]  # UTC, sorted, non-overlapping
    states: tuple[tuple[datetime, AgentState], ...]  # UTC, sorted, distinct times


@dataclass(frozen=True, slots=True)
class ScenarioQueue:
    id: str
    description: str
    states: tuple[tuple[datetime, dict[str, float]], ...]  # UTC, sorted; fields as written


@dataclass(frozen=True, slots=True)
class ExpectedAlert:
    rule: str
    agent: str | None
    queue: str | None
    at: datetime
    resolved: datetime | None


@dataclass(frozen=True, slots=True)
class ExpectedAdherence:
    adherence: float
    conformance: float | None = None


@dataclass(frozen=True, slots=True)
class Expect:
    alerts: tuple[ExpectedAlert, ...]
    adherence: dict[str, ExpectedAdherence]


@dataclass(frozen=True)
class Scenario:
    name: str
    source: str
    customer_key: str
    timezone: ZoneInfo
    start: datetime  # aware UTC
    end: datetime  # aware UTC
    cadence_user_states: timedelta = DEFAULT_CADENCE_USER_STATES
    cadence_queues: timedelta = DEFAULT_CADENCE_QUEUES
    rules: dict[str, dict[str, Any]] = field(default_factory=dict)
    activities: dict[str, dict[str, Any]] = field(default_factory=dict)
    agents: tuple[ScenarioAgent, ...] = ()
    queues: tuple[ScenarioQueue, ...] = ()
    expect: Expect | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    _agent_index: dict[str, ScenarioAgent] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )
    _state_times: dict[str, list[float]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )
    # per queue: the times its fields change, and the full field set in force from each
    _queue_timeline: dict[str, tuple[list[datetime], list[dict[str, float]]]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        # lookups are per poll, so index once: replay asks for every agent every few seconds
        for agent in self.agents:
            self._agent_index[agent.id] = agent
            # POSIX seconds: bisecting floats is several times faster than datetimes
            self._state_times[agent.id] = [at.timestamp() for at, _ in agent.states]
        for queue in self.queues:
            fields = dict(QUEUE_FIELD_DEFAULTS)
            for _, given in queue.states:
                for name in given:
                    fields.setdefault(name, 0.0)
            times, snapshots = [], [dict(fields)]
            for at, given in queue.states:
                fields.update(given)
                times.append(at)
                snapshots.append(dict(fields))
            self._queue_timeline[queue.id] = (times, snapshots)

    def agent(self, agent_id: str) -> ScenarioAgent:
        """The agent with this id; KeyError if the scenario has none."""
        return self._agent_index[str(agent_id)]

    def queue(self, queue_id: str) -> ScenarioQueue:
        return next(q for q in self.queues if q.id == str(queue_id))

    def _state_index(self, agent_id: str, t: datetime) -> tuple[ScenarioAgent, int]:
        agent = self.agent(agent_id)
        return agent, bisect.bisect_right(self._state_times[agent.id], t.timestamp()) - 1

    def state_at(self, agent_id: str, t: datetime) -> AgentState:
        """The agent's state at `t` (`logged_off` before its first state)."""
        agent, i = self._state_index(agent_id, t)
        return agent.states[i][1] if i >= 0 else LOGGED_OFF

    def state_since(self, agent_id: str, t: datetime) -> datetime:
        """When the agent entered the state it is in at `t`.

        Repeated identical states continue one another; before the first state the agent has been
        `logged_off` since the scenario start (or since `t`, if `t` is earlier still).
        """
        agent, i = self._state_index(agent_id, t)
        if i < 0:
            return min(self.start, t)
        state = agent.states[i][1]
        while i > 0 and agent.states[i - 1][1] == state:
            i -= 1
        since = agent.states[i][0]
        if i == 0 and state == LOGGED_OFF:
            return min(self.start, since)
        return since

    def queue_fields_at(self, queue_id: str, t: datetime) -> dict[str, float]:
        """The queue's visual-queue state fields at `t`: each field keeps its last given value."""
        times, snapshots = self._queue_timeline[str(queue_id)]
        return dict(snapshots[bisect.bisect_right(times, t)])

    def local(self, t: datetime) -> datetime:
        """`t` in the tenant's time zone."""
        return t.astimezone(self.timezone)

    def pause_type_names(self) -> list[str]:
        """Every pause type named in states or as `pause:Name` in activities, sorted."""
        names: set[str] = set()
        for agent in self.agents:
            names.update(s.pause_type for _, s in agent.states if s.pause_type)
        for spec in self.activities.values():
            allowed = spec.get("allowed") if isinstance(spec, dict) else None
            for pattern in allowed or ():
                text = str(pattern)
                if text.lower().startswith("pause:"):
                    names.add(text.split(":", 1)[1])
        return sorted(names)


# --- parsing ----------------------------------------------------------------------------------


def load_scenario(path: str | Path) -> Scenario:
    """Read and parse a scenario file. Raises ScenarioError (also for an unreadable file)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(str(p), None, "", f"cannot read the file: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ScenarioError(str(p), None, "", "expected UTF-8 text") from exc
    return parse_scenario(text, str(p))


# PyYAML built without libyaml has no CSafeLoader: the scenarios are then read by the pure-Python
# reader only (slower, the same result)
_LibYamlLoader: type[yaml.CSafeLoader] | type[StrictLoader] = getattr(
    yaml, "CSafeLoader", StrictLoader
)


class _FastStrictLoader(_LibYamlLoader):  # type: ignore[misc,valid-type]
    """`StrictLoader`'s implicit types and constructors on libyaml's parser and composer, for
    the nodes the scenario parser walks: a one-day 500-agent scenario reads several times
    faster (its plain-Python reading took seconds)."""

    yaml_implicit_resolvers = StrictLoader.yaml_implicit_resolvers
    yaml_constructors = StrictLoader.yaml_constructors


_Loader = StrictLoader | _FastStrictLoader


def parse_scenario(text: str, source_name: str = "<scenario>") -> Scenario:
    """Parse scenario YAML text; `source_name` is used in error messages."""
    try:
        return _parse_scenario(_FastStrictLoader(text), source_name)
    except (yaml.YAMLError, ScenarioError):
        # read again by the pure-Python reader, so that every message (and its line) is its own
        return _parse_scenario(StrictLoader(text), source_name)


def _parse_scenario(loader: _Loader, source_name: str) -> Scenario:
    try:
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else None
            raise ScenarioError(
                source_name, line, "", f"not valid YAML: {exc.problem or exc}"
            ) from None
        except yaml.YAMLError as exc:
            raise ScenarioError(source_name, None, "", f"not valid YAML: {exc}") from None
        if root is None:
            raise ScenarioError(
                source_name, 1, "", "the file is empty; expected a scenario mapping"
            )
        return _Parser(source_name, loader).scenario(root)
    finally:
        loader.dispose()


@dataclass(frozen=True, slots=True)
class _LocalTime:
    naive: datetime
    offset: timedelta | None
    has_date: bool


class _Parser:
    def __init__(self, source: str, loader: _Loader) -> None:
        self.source = source
        self.loader = loader
        self.tz: ZoneInfo = ZoneInfo("UTC")
        self.start_date: date = date(1970, 1, 1)

    # -- generic node helpers ------------------------------------------------------------------

    def fail(self, node: yaml.Node | None, path: str, message: str) -> NoReturn:
        line = node.start_mark.line + 1 if node is not None else None
        raise ScenarioError(self.source, line, path, message)

    def value(self, node: yaml.Node) -> Any:
        return self.loader.construct_object(node, deep=True)

    def mapping(self, node: yaml.Node, path: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, path, f"expected a mapping, got {self.describe(node)}")
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = self.value(key_node)
            if not isinstance(key, str | int) or isinstance(key, bool):
                self.fail(key_node, path, f"expected a text key, got {key!r}")
            name = str(key)
            if name in out:
                self.fail(key_node, _join(path, name), "this key appears twice")
            out[name] = (key_node, value_node)
        return out

    def sequence(self, node: yaml.Node, path: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            self.fail(node, path, f"expected a list, got {self.describe(node)}")
        return list(node.value)

    def describe(self, node: yaml.Node) -> str:
        if isinstance(node, yaml.MappingNode):
            return "a mapping"
        if isinstance(node, yaml.SequenceNode):
            return "a list"
        return repr(self.value(node))

    def text(self, node: yaml.Node, path: str, what: str = "text") -> str:
        if not isinstance(node, yaml.ScalarNode):
            self.fail(node, path, f"expected {what}, got {self.describe(node)}")
        v = self.value(node)
        if v is None or isinstance(v, bool | float):
            self.fail(node, path, f"expected {what}, got {v!r}")
        s = str(v).strip()
        if not s:
            self.fail(node, path, f"expected {what}, got an empty value")
        return s

    def ident(self, node: yaml.Node, path: str) -> str:
        """An id written as a number or text (Puzzel ids are numbers; scenarios may quote them)."""
        return self.text(node, path, "an id (a number or text)")

    def number(self, node: yaml.Node, path: str, what: str = "a number") -> float:
        v = self.value(node) if isinstance(node, yaml.ScalarNode) else None
        if not isinstance(v, int | float) or isinstance(v, bool):
            self.fail(node, path, f"expected {what}, got {self.describe(node)}")
        return float(v)

    def duration(self, node: yaml.Node, path: str) -> timedelta:
        v = self.value(node) if isinstance(node, yaml.ScalarNode) else None
        if not isinstance(v, str | int | float):
            self.fail(node, path, f"expected a duration like '90s', '2m' or '1h30m', got {v!r}")
        try:
            return parse_duration(v)
        except ValueError as exc:
            self.fail(node, path, str(exc))

    # -- times -----------------------------------------------------------------------------

    def local_time(self, node: yaml.Node, path: str) -> _LocalTime:
        raw = self.value(node) if isinstance(node, yaml.ScalarNode) else None
        if not isinstance(raw, str):
            self.fail(node, path, f"expected a time ({_TIME_FORMS}), got {self.describe(node)}")
        s = raw.strip()
        if m := _CLOCK_TIME.fullmatch(s):
            naive = self.clock(node, path, self.start_date, m.groups())
            return _LocalTime(naive, None, has_date=False)
        if m := _DATE_TIME.fullmatch(s):
            y, mo, d, hh, mm, ss, frac, off = m.groups()
            try:
                day = date(int(y), int(mo), int(d))
            except ValueError:
                self.fail(node, path, f"{s!r} is not a valid date")
            naive = self.clock(node, path, day, (hh, mm, ss, frac))
            return _LocalTime(naive, _offset(off) if off else None, has_date=True)
        self.fail(node, path, f"expected a time ({_TIME_FORMS}), got {s!r}")

    def clock(
        self, node: yaml.Node, path: str, day: date, parts: tuple[str | None, ...]
    ) -> datetime:
        hh, mm, ss, frac = (p or "" for p in parts)
        h, m, sec = int(hh), int(mm), int(ss or 0)
        if h == 24 and m == 0 and sec == 0 and not frac:
            # 24:00 is the end of the day, as schedules often write it
            return datetime(day.year, day.month, day.day) + timedelta(days=1)
        if h > 23 or m > 59 or sec > 59:
            self.fail(node, path, f"{hh}:{mm}{':' + ss if ss else ''} is not a valid time of day")
        micro = int((frac or "0").ljust(6, "0"))
        return datetime(day.year, day.month, day.day, h, m, sec, micro)

    def to_utc(self, node: yaml.Node, path: str, lt: _LocalTime) -> datetime:
        """Resolve a local wall time in the tenant zone: a skipped time is an error, a repeated
        one is its first occurrence unless an offset says otherwise."""
        if lt.offset is not None:
            aware = lt.naive.replace(tzinfo=timezone(lt.offset))
            if aware.astimezone(self.tz).utcoffset() != lt.offset:
                self.fail(
                    node,
                    path,
                    f"offset {_format_offset(lt.offset)} is not in effect in {self.tz.key} at "
                    f"{lt.naive.isoformat()}",
                )
            return aware.astimezone(UTC)
        local = lt.naive.replace(tzinfo=self.tz, fold=0)
        utc = local.astimezone(UTC)
        if utc.astimezone(self.tz).replace(tzinfo=None) != lt.naive:
            self.fail(
                node,
                path,
                f"{lt.naive.isoformat(sep=' ')} does not exist in {self.tz.key} "
                "(skipped by a daylight-saving change); expected an existing local time",
            )
        return utc

    def time(self, node: yaml.Node, path: str) -> datetime:
        return self.to_utc(node, path, self.local_time(node, path))

    # -- sections --------------------------------------------------------------------------

    def scenario(self, root: yaml.Node) -> Scenario:
        top = self.mapping(root, "")
        for required in ("tenant", "start", "end"):
            if required not in top:
                self.fail(root, required, "this required key is missing")

        tenant = self.mapping(top["tenant"][1], "tenant")
        for required in ("customer_key", "timezone"):
            if required not in tenant:
                self.fail(top["tenant"][1], f"tenant.{required}", "this required key is missing")
        customer_key = self.ident(tenant["customer_key"][1], "tenant.customer_key")
        tz_node = tenant["timezone"][1]
        tz_name = self.text(tz_node, "tenant.timezone", "an IANA time zone name")
        try:
            self.tz = ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError):
            self.fail(
                tz_node, "tenant.timezone", f"unknown time zone {tz_name!r}; expected an IANA name"
            )

        start_lt = self.local_time(top["start"][1], "start")
        if not start_lt.has_date:
            self.fail(top["start"][1], "start", "expected a full local date-time")
        start = self.to_utc(top["start"][1], "start", start_lt)
        self.start_date = start_lt.naive.date()
        end_node = top["end"][1]
        end_lt = self.local_time(end_node, "end")
        end = self.to_utc(end_node, "end", end_lt)
        if end <= start:
            self.fail(end_node, "end", "expected a time after start")

        name = self.text(top["name"][1], "name") if "name" in top else Path(self.source).stem

        cadence_us, cadence_q = DEFAULT_CADENCE_USER_STATES, DEFAULT_CADENCE_QUEUES
        if "cadence" in top and not _is_null(top["cadence"][1]):
            cad = self.mapping(top["cadence"][1], "cadence")
            if "user_states" in cad:
                cadence_us = self.positive(cad["user_states"][1], "cadence.user_states")
            if "queues" in cad:
                cadence_q = self.positive(cad["queues"][1], "cadence.queues")

        rules = self.rules(top["rules"][1]) if "rules" in top else {}
        activities = self.activities(top["activities"][1]) if "activities" in top else {}
        activity_names = set(DEFAULT_ACTIVITIES) | set(activities)
        agents = self.agents(top["agents"][1], activity_names) if "agents" in top else ()
        queues = self.queues(top["queues"][1]) if "queues" in top else ()
        expect = None
        if "expect" in top and not _is_null(top["expect"][1]):
            expect = self.expect(top["expect"][1])
        extra = {k: self.value(v) for k, (_, v) in top.items() if k not in _KNOWN_TOP_LEVEL}
        return Scenario(
            name=name,
            source=self.source,
            customer_key=customer_key,
            timezone=self.tz,
            start=start,
            end=end,
            cadence_user_states=cadence_us,
            cadence_queues=cadence_q,
            rules=rules,
            activities=activities,
            agents=agents,
            queues=queues,
            expect=expect,
            extra=extra,
        )

    def positive(self, node: yaml.Node, path: str) -> timedelta:
        d = self.duration(node, path)
        if d <= timedelta(0):
            self.fail(node, path, "expected a duration greater than zero")
        return d

    def rules(self, node: yaml.Node) -> dict[str, dict[str, Any]]:
        if _is_null(node):
            return {}
        out: dict[str, dict[str, Any]] = {}
        valid = ", ".join(r.value for r in RuleName)
        for name, (key_node, value_node) in self.mapping(node, "rules").items():
            path = f"rules.{name}"
            try:
                rule = RuleName(name)
            except ValueError:
                self.fail(key_node, path, f"unknown rule {name!r}; expected one of: {valid}")
            params = {} if _is_null(value_node) else self.mapping(value_node, path)
            if "after" in params:
                self.duration(params["after"][1], f"{path}.after")
            if "threshold" in params:
                self.number(params["threshold"][1], f"{path}.threshold")
            elif rule in _THRESHOLD_RULES:
                self.fail(value_node, f"{path}.threshold", "this rule needs a threshold")
            if "pause_type" in params and not _is_null(params["pause_type"][1]):
                self.text(params["pause_type"][1], f"{path}.pause_type", "a pause type name")
            out[name] = {k: self.value(v) for k, (_, v) in params.items()}
        return out

    def activities(self, node: yaml.Node) -> dict[str, dict[str, Any]]:
        if _is_null(node):
            return {}
        out: dict[str, dict[str, Any]] = {}
        for name, (_, value_node) in self.mapping(node, "activities").items():
            path = f"activities.{name}"
            spec = {} if _is_null(value_node) else self.mapping(value_node, path)
            if "allowed" in spec:
                for i, item in enumerate(self.sequence(spec["allowed"][1], f"{path}.allowed")):
                    self.state_pattern(item, f"{path}.allowed[{i}]")
            elif name not in DEFAULT_ACTIVITIES:
                self.fail(value_node, f"{path}.allowed", "a new activity needs an allowed list")
            if "neutral" in spec and not isinstance(self.value(spec["neutral"][1]), bool):
                self.fail(spec["neutral"][1], f"{path}.neutral", "expected true or false")
            out[name] = {k: self.value(v) for k, (_, v) in spec.items()}
        return out

    def state_pattern(self, node: yaml.Node, path: str) -> None:
        pattern = self.text(node, path, "a state or 'pause:Name'")
        kind, _, pause_type = pattern.partition(":")
        try:
            AgentState.parse(kind, pause_type or None)
        except ValueError as exc:
            self.fail(node, path, str(exc))

    def agents(self, node: yaml.Node, activity_names: set[str]) -> tuple[ScenarioAgent, ...]:
        if _is_null(node):
            return ()
        seen: set[str] = set()
        agents = []
        for i, agent_node in enumerate(self.sequence(node, "agents")):
            path = f"agents[{i}]"
            spec = self.mapping(agent_node, path)
            if "id" not in spec:
                self.fail(agent_node, f"{path}.id", "this required key is missing")
            agent_id = self.ident(spec["id"][1], f"{path}.id")
            if agent_id in seen:
                self.fail(spec["id"][1], f"{path}.id", f"agent {agent_id} appears twice")
            seen.add(agent_id)
            name = self.text(spec["name"][1], f"{path}.name") if "name" in spec else agent_id
            group = self.text(spec["group"][1], f"{path}.group") if "group" in spec else "Default"
            segments: tuple[Segment, ...] = ()
            if "schedule" in spec and not _is_null(spec["schedule"][1]):
                segments = self.schedule(
                    spec["schedule"][1], f"{path}.schedule", agent_id, activity_names
                )
            states: tuple[tuple[datetime, AgentState], ...] = ()
            if "states" in spec and not _is_null(spec["states"][1]):
                states = self.states(spec["states"][1], f"{path}.states")
            agents.append(ScenarioAgent(agent_id, name, group, segments, states))
        return tuple(agents)

    def schedule(
        self, node: yaml.Node, path: str, agent_id: str, activity_names: set[str]
    ) -> tuple[Segment, ...]:
        entries: list[tuple[Segment, yaml.Node, str]] = []
        for i, item in enumerate(self.sequence(node, path)):
            p = f"{path}[{i}]"
            parts = self.sequence(item, p)
            if len(parts) != 3:
                self.fail(item, p, f"expected [start, end, activity], got {len(parts)} items")
            start_lt = self.local_time(parts[0], f"{p}[0]")
            end_lt = self.local_time(parts[1], f"{p}[1]")
            if not end_lt.has_date:
                # a bare clock time belongs to the segment's start day, or the next one if earlier
                end_naive = datetime.combine(start_lt.naive.date(), end_lt.naive.time()) + (
                    end_lt.naive.date() - self.start_date  # one day for 24:00
                )
                if end_naive < start_lt.naive:
                    end_naive += timedelta(days=1)
                end_lt = _LocalTime(end_naive, None, has_date=False)
            start = self.to_utc(parts[0], f"{p}[0]", start_lt)
            end = self.to_utc(parts[1], f"{p}[1]", end_lt)
            if end <= start:
                self.fail(parts[1], f"{p}[1]", "expected a segment end after its start")
            activity = self.text(parts[2], f"{p}[2]", "an activity name")
            if activity not in activity_names:
                known = ", ".join(sorted(activity_names))
                self.fail(
                    parts[2], f"{p}[2]", f"unknown activity {activity!r}; expected one of: {known}"
                )
            entries.append((Segment(start, end, agent_id, activity), item, p))
        entries.sort(key=lambda e: (e[0].start, e[0].end))
        for (prev, _, prev_path), (seg, item, p) in itertools.pairwise(entries):
            if seg.start < prev.end:
                self.fail(
                    item,
                    p,
                    f"segment overlaps {prev_path} ({self.hhmm(prev.start)}-{self.hhmm(prev.end)}"
                    f" {prev.activity}); expected non-overlapping segments",
                )
        return tuple(e[0] for e in entries)

    def hhmm(self, t: datetime) -> str:
        return t.astimezone(self.tz).strftime("%H:%M:%S")

    def states(self, node: yaml.Node, path: str) -> tuple[tuple[datetime, AgentState], ...]:
        entries: list[tuple[datetime, AgentState, yaml.Node, str]] = []
        for i, item in enumerate(self.sequence(node, path)):
            p = f"{path}[{i}]"
            parts = self.sequence(item, p)
            if len(parts) not in (2, 3):
                self.fail(
                    item, p, f"expected [time, state] or [time, pause, PauseType], got {parts!r}"
                )
            at = self.time(parts[0], f"{p}[0]")
            state_text = self.text(parts[1], f"{p}[1]", "a state")
            pause_type = self.text(parts[2], f"{p}[2]", "a pause type") if len(parts) == 3 else None
            if pause_type is None and ":" in state_text:
                # `pause:Break`, the notation of `allowed` lists, is accepted here too
                state_text, _, pause_type = state_text.partition(":")
            try:
                state = AgentState.parse(state_text, pause_type or None)
            except ValueError as exc:
                self.fail(parts[1], f"{p}[1]", str(exc))
            entries.append((at, state, item, p))
        entries.sort(key=lambda e: e[0])
        for prev, cur in itertools.pairwise(entries):
            if cur[0] == prev[0]:
                self.fail(cur[2], cur[3], f"two states at the same time as {prev[3]}")
        return tuple((at, state) for at, state, _, _ in entries)

    def queues(self, node: yaml.Node) -> tuple[ScenarioQueue, ...]:
        if _is_null(node):
            return ()
        seen: set[str] = set()
        queues = []
        for i, queue_node in enumerate(self.sequence(node, "queues")):
            path = f"queues[{i}]"
            spec = self.mapping(queue_node, path)
            if "id" not in spec:
                self.fail(queue_node, f"{path}.id", "this required key is missing")
            queue_id = self.ident(spec["id"][1], f"{path}.id")
            if queue_id in seen:
                self.fail(spec["id"][1], f"{path}.id", f"queue {queue_id} appears twice")
            seen.add(queue_id)
            description = (
                self.text(spec["description"][1], f"{path}.description")
                if "description" in spec
                else f"Queue {queue_id}"
            )
            entries: list[tuple[datetime, dict[str, float], yaml.Node, str]] = []
            if "states" in spec and not _is_null(spec["states"][1]):
                for j, item in enumerate(self.sequence(spec["states"][1], f"{path}.states")):
                    p = f"{path}.states[{j}]"
                    parts = self.sequence(item, p)
                    if len(parts) != 2:
                        self.fail(item, p, "expected [time, {field: value, ...}]")
                    at = self.time(parts[0], f"{p}[0]")
                    fields = {
                        k: self.number(v, f"{p}[1].{k}")
                        for k, (_, v) in self.mapping(parts[1], f"{p}[1]").items()
                    }
                    entries.append((at, fields, item, p))
            entries.sort(key=lambda e: e[0])
            for prev, cur in itertools.pairwise(entries):
                if cur[0] == prev[0]:
                    self.fail(cur[2], cur[3], f"two queue states at the same time as {prev[3]}")
            queues.append(
                ScenarioQueue(queue_id, description, tuple((at, f) for at, f, _, _ in entries))
            )
        return tuple(queues)

    def expect(self, node: yaml.Node) -> Expect:
        spec = self.mapping(node, "expect")
        alerts: list[ExpectedAlert] = []
        if "alerts" in spec and not _is_null(spec["alerts"][1]):
            valid = ", ".join(r.value for r in RuleName)
            for i, item in enumerate(self.sequence(spec["alerts"][1], "expect.alerts")):
                p = f"expect.alerts[{i}]"
                a = self.mapping(item, p)
                for required in ("rule", "at"):
                    if required not in a:
                        self.fail(item, f"{p}.{required}", "this required key is missing")
                rule = self.text(a["rule"][1], f"{p}.rule", "a rule name")
                if rule not in {r.value for r in RuleName}:
                    self.fail(
                        a["rule"][1], f"{p}.rule", f"unknown rule {rule!r}; expected: {valid}"
                    )
                agent = self.ident(a["agent"][1], f"{p}.agent") if "agent" in a else None
                queue = self.ident(a["queue"][1], f"{p}.queue") if "queue" in a else None
                if agent is not None and queue is not None:
                    self.fail(item, p, "expected either agent or queue, not both")
                at = self.time(a["at"][1], f"{p}.at")
                resolved = None
                if "resolved" in a and not _is_null(a["resolved"][1]):
                    resolved = self.time(a["resolved"][1], f"{p}.resolved")
                    if resolved < at:
                        self.fail(a["resolved"][1], f"{p}.resolved", "expected a time after 'at'")
                alerts.append(ExpectedAlert(rule, agent, queue, at, resolved))
        adherence: dict[str, ExpectedAdherence] = {}
        if "adherence" in spec and not _is_null(spec["adherence"][1]):
            for agent_id, (_, value_node) in self.mapping(
                spec["adherence"][1], "expect.adherence"
            ).items():
                p = f"expect.adherence.{agent_id}"
                figures = self.mapping(value_node, p)
                if "adherence" not in figures:
                    self.fail(value_node, f"{p}.adherence", "this required key is missing")
                value = self.number(figures["adherence"][1], f"{p}.adherence")
                if not 0.0 <= value <= 1.0:
                    self.fail(figures["adherence"][1], f"{p}.adherence", "expected 0..1")
                conformance = None
                if "conformance" in figures and not _is_null(figures["conformance"][1]):
                    conformance = self.number(figures["conformance"][1], f"{p}.conformance")
                    if conformance < 0:
                        self.fail(figures["conformance"][1], f"{p}.conformance", "expected >= 0")
                adherence[agent_id] = ExpectedAdherence(value, conformance)
        return Expect(tuple(alerts), adherence)


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _offset(text: str) -> timedelta:
    if text in ("Z", "z"):
        return timedelta(0)
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    return sign * timedelta(hours=hours, minutes=minutes)


def _format_offset(offset: timedelta) -> str:
    total = int(offset.total_seconds())
    sign = "-" if total < 0 else "+"
    h, m = divmod(abs(total) // 60, 60)
    return f"{sign}{h:02d}:{m:02d}"


__all__ = [
    "QUEUE_FIELDS",
    "QUEUE_FIELD_DEFAULTS",
    "Expect",
    "ExpectedAdherence",
    "ExpectedAlert",
    "Scenario",
    "ScenarioAgent",
    "ScenarioError",
    "ScenarioQueue",
    "load_scenario",
    "parse_scenario",
]
