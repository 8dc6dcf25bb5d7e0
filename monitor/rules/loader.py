"""Rule and activity definitions: the built-in defaults, the operator's `rules/` files and a
scenario's `rules:`/`activities:` blocks, all validated into one `RuleSet`.

Errors name the file, the key path (`rules.queue_sla_below.threshold`), the line where the
YAML parser can tell, and what was expected. Nothing is half-loaded: either the whole ruleset
is valid or `RulesError` is raised.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from monitor.core.durations import format_duration, parse_duration
from monitor.core.exits import EXIT_CONFIG, EXIT_OK
from monitor.core.states import StateKind
from monitor.engine.model import Activity, RuleConfig, RuleName, RuleSet
from monitor.rules.yaml_reader import YamlProblem, read_yaml

ACTIVITIES_FILE = "activities.yaml"
RULES_FILE = "rules.yaml"
SEVERITIES = ("info", "warning", "critical")
THRESHOLD_RULES = frozenset(
    {RuleName.QUEUE_SLA_BELOW, RuleName.QUEUE_WAIT_ABOVE, RuleName.TEAM_ADHERENCE_BELOW}
)
_RULE_KEYS = frozenset(
    {
        "after",
        "threshold",
        "pause_type",
        "severity",
        "enabled",
        "escalate_after",
        "window",
        "labels",
        "runbook_url",
    }
)
_ACTIVITY_KEYS = frozenset({"allowed", "neutral"})
_STATE_PATTERNS = "a state (" + ", ".join(k.value for k in StateKind) + "), 'pause' or 'pause:Name'"

# scenario-format.md's default activities
_PHONE_STATES = ("available", "connecting", "connected", "busy", "wrap_up", "no_answer")
DEFAULT_ACTIVITIES: dict[str, Activity] = {
    "phone": Activity("phone", frozenset(_PHONE_STATES)),
    "break": Activity("break", frozenset({"pause"})),
    "lunch": Activity("lunch", frozenset({"pause"})),
    "meeting": Activity("meeting", frozenset({"pause", "logged_off"})),
    "training": Activity("training", frozenset({"pause", "logged_off"})),
    "off": Activity("off", frozenset({"logged_off"})),
}


def _m(minutes: float) -> timedelta:
    return timedelta(minutes=minutes)


# Day-one defaults; rules/rules.yaml ships the same values (a test keeps them in step).
DEFAULT_RULES: dict[RuleName, RuleConfig] = {
    r.name: r
    for r in (
        RuleConfig(RuleName.OUT_OF_ADHERENCE, after=_m(5), escalate_after=_m(15)),
        RuleConfig(RuleName.LATE_LOGIN, after=_m(2)),
        RuleConfig(RuleName.EARLY_LOGOFF, after=_m(2)),
        RuleConfig(RuleName.BREAK_OVERRUN, after=_m(2), escalate_after=_m(10)),
        RuleConfig(RuleName.LONG_WRAP_UP, after=_m(3)),
        RuleConfig(RuleName.LONG_PAUSE, after=_m(45)),
        RuleConfig(RuleName.UNSCHEDULED_LOGIN, after=_m(10), severity="info"),
        RuleConfig(
            RuleName.QUEUE_SLA_BELOW,
            after=_m(5),
            threshold=80.0,
            severity="critical",
        ),
        RuleConfig(RuleName.QUEUE_WAIT_ABOVE, after=_m(1), threshold=120.0, severity="critical"),
        RuleConfig(RuleName.QUEUE_NO_AGENTS_READY, after=_m(1), severity="critical"),
        RuleConfig(
            RuleName.TEAM_ADHERENCE_BELOW,
            after=_m(15),
            threshold=0.85,
            window=_m(30),
        ),
        RuleConfig(RuleName.STALE_DATA, after=_m(2), severity="critical"),
        RuleConfig(RuleName.UNMAPPED_STATE, after=_m(1), severity="info"),
        RuleConfig(RuleName.UNKNOWN_AGENT, after=_m(5), severity="info"),
    )
}


class RulesError(ValueError):
    """A rule or activity definition that cannot be used."""

    def __init__(self, source: str, path: str, message: str, line: int | None = None) -> None:
        self.source = source
        self.path = path
        self.line = line
        self.detail = message
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {path}: {message}" if path else f"{where}: {message}")


def default_ruleset() -> RuleSet:
    """The contract's default activities and every rule at its day-one default."""
    return RuleSet(activities=dict(DEFAULT_ACTIVITIES), rules=dict(DEFAULT_RULES))


# --- validation ------------------------------------------------------------------------------


class _Ctx:
    """Where we are: the source name and the YAML node tree (for line numbers), if any."""

    def __init__(self, source: str, root: yaml.Node | None = None, prefix: str = "") -> None:
        self.source = source
        self.root = root
        self.prefix = prefix

    def error(self, path: str, message: str) -> RulesError:
        full = f"{self.prefix}.{path}" if self.prefix and path else (self.prefix or path)
        return RulesError(self.source, full, message, _line_of(self.root, full))


def _line_of(root: yaml.Node | None, path: str) -> int | None:
    node = root
    line = None if root is None else root.start_mark.line + 1
    for part in path.split(".") if path else []:
        if not isinstance(node, yaml.MappingNode):
            break
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and str(k.value) == part:
                node, line = v, k.start_mark.line + 1
                break
        else:
            break
    return line


def _duration(ctx: _Ctx, path: str, value: Any) -> timedelta:
    try:
        return parse_duration(value)
    except (ValueError, TypeError) as e:
        raise ctx.error(path, f"{e}") from None


def _number(ctx: _Ctx, path: str, value: Any, expected: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ctx.error(path, f"expected {expected}, got {value!r}")
    try:
        return float(str(value).strip().rstrip("%"))
    except ValueError:
        raise ctx.error(path, f"expected {expected}, got {value!r}") from None


def _check_pattern(ctx: _Ctx, path: str, pattern: Any) -> str:
    if not isinstance(pattern, str) or not pattern.strip():
        raise ctx.error(path, f"expected {_STATE_PATTERNS}, got {pattern!r}")
    text = pattern.strip()
    kind, sep, name = text.partition(":")
    if sep:
        if kind.strip().lower() != "pause" or not name.strip():
            raise ctx.error(path, f"expected {_STATE_PATTERNS}, got {pattern!r}")
        return f"pause:{name.strip()}"
    try:
        return StateKind(text.lower()).value
    except ValueError:
        raise ctx.error(path, f"unknown state {pattern!r}; expected {_STATE_PATTERNS}") from None


def _activity(ctx: _Ctx, name: Any, spec: Any) -> Activity:
    if not isinstance(name, str) or not name.strip():
        raise ctx.error("", f"activity names are non-empty strings, got {name!r}")
    path = name
    if not isinstance(spec, Mapping):
        raise ctx.error(path, f"expected a mapping with 'allowed' (and 'neutral'), got {spec!r}")
    unknown = sorted(str(k) for k in spec if k not in _ACTIVITY_KEYS)
    if unknown:
        raise ctx.error(f"{path}.{unknown[0]}", "unknown key; expected 'allowed' or 'neutral'")
    allowed = spec.get("allowed")
    if allowed is None:
        allowed = []
    if isinstance(allowed, str):
        allowed = [allowed]
    if not isinstance(allowed, list):
        raise ctx.error(f"{path}.allowed", f"expected a list of {_STATE_PATTERNS}")
    patterns = frozenset(
        _check_pattern(ctx, f"{path}.allowed", p) for p in allowed
    )  # the list index is not a key path; the line of `allowed` is close enough
    neutral = spec.get("neutral", False)
    if not isinstance(neutral, bool):
        raise ctx.error(f"{path}.neutral", f"expected true or false, got {neutral!r}")
    if not patterns and not neutral:
        raise ctx.error(f"{path}.allowed", "an activity that is not neutral needs allowed states")
    return Activity(name.strip(), patterns, neutral)


def _rule(ctx: _Ctx, name: Any, spec: Any, base: RuleConfig | None, *, strict: bool) -> RuleConfig:
    try:
        rule = RuleName(str(name))
    except ValueError:
        known = ", ".join(r.value for r in RuleName)
        raise ctx.error(str(name), f"unknown rule; expected one of: {known}") from None
    if spec is None:
        spec = {}
    if not isinstance(spec, Mapping):
        raise ctx.error(rule.value, f"expected a mapping like {{after: 2m}}, got {spec!r}")
    if strict:
        unknown = sorted(str(k) for k in spec if k not in _RULE_KEYS)
        if unknown:
            keys = ", ".join(sorted(_RULE_KEYS))
            raise ctx.error(f"{rule.value}.{unknown[0]}", f"unknown key; expected one of: {keys}")
    cfg = base if base is not None else DEFAULT_RULES[rule]
    path = rule.value
    changes: dict[str, Any] = {"enabled": True}
    if "after" in spec:
        changes["after"] = _duration(ctx, f"{path}.after", spec["after"])
    if "escalate_after" in spec:
        v = spec["escalate_after"]
        changes["escalate_after"] = (
            None if v is None else _duration(ctx, f"{path}.escalate_after", v)
        )
    if "window" in spec:
        changes["window"] = _duration(ctx, f"{path}.window", spec["window"])
    if "enabled" in spec:
        if not isinstance(spec["enabled"], bool):
            raise ctx.error(f"{path}.enabled", f"expected true or false, got {spec['enabled']!r}")
        changes["enabled"] = spec["enabled"]
    if "severity" in spec:
        sev = spec["severity"]
        if sev not in SEVERITIES:
            raise ctx.error(
                f"{path}.severity", f"expected one of {', '.join(SEVERITIES)}, got {sev!r}"
            )
        changes["severity"] = sev
    if "pause_type" in spec:
        pt = spec["pause_type"]
        if rule is not RuleName.LONG_PAUSE:
            raise ctx.error(f"{path}.pause_type", "only long_pause takes a pause_type")
        if pt is not None and (not isinstance(pt, str) or not pt.strip()):
            raise ctx.error(f"{path}.pause_type", f"expected a pause type name, got {pt!r}")
        changes["pause_type"] = pt.strip() if isinstance(pt, str) else None
    if "labels" in spec:
        labels = spec["labels"]
        if not isinstance(labels, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str | int | float) for k, v in labels.items()
        ):
            raise ctx.error(f"{path}.labels", "expected a mapping of label names to strings")
        changes["labels"] = {str(k): str(v) for k, v in labels.items()}
    if "runbook_url" in spec:
        url = spec["runbook_url"]
        if url is not None and not isinstance(url, str):
            raise ctx.error(f"{path}.runbook_url", f"expected a URL string, got {url!r}")
        changes["runbook_url"] = url
    if "threshold" in spec:
        if rule not in THRESHOLD_RULES:
            raise ctx.error(f"{path}.threshold", f"{rule.value} takes no threshold")
        changes["threshold"] = _threshold(ctx, rule, spec["threshold"])
    elif rule in THRESHOLD_RULES:
        # a rule named in a file or scenario must say its threshold: there is no safe guess
        raise ctx.error(f"{path}.threshold", f"{rule.value} needs a threshold ({_UNITS[rule]})")
    out = replace(cfg, **changes)
    if out.escalate_after is not None and out.escalate_after <= out.after:
        raise ctx.error(f"{path}.escalate_after", "expected a duration longer than 'after'")
    if rule is RuleName.STALE_DATA and out.after <= timedelta(0):
        raise ctx.error(f"{path}.after", "stale_data needs a positive 'after' (> poll cadence)")
    if out.window is not None and out.window <= timedelta(0):
        raise ctx.error(f"{path}.window", "expected a positive duration")
    return out


_UNITS = {
    RuleName.QUEUE_SLA_BELOW: "a percentage 0-100",
    RuleName.QUEUE_WAIT_ABOVE: "seconds, >= 0",
    RuleName.TEAM_ADHERENCE_BELOW: "a ratio between 0 and 1, e.g. 0.85",
}


def _threshold(ctx: _Ctx, rule: RuleName, value: Any) -> float:
    path = f"{rule.value}.threshold"
    if rule is RuleName.QUEUE_WAIT_ABOVE and isinstance(value, str) and not _is_number(value):
        return _duration(ctx, path, value).total_seconds()
    v = _number(ctx, path, value, _UNITS[rule])
    if rule is RuleName.QUEUE_SLA_BELOW and not 0 <= v <= 100:
        raise ctx.error(path, f"expected {_UNITS[rule]}, got {value!r}")
    if rule is RuleName.QUEUE_WAIT_ABOVE and v < 0:
        raise ctx.error(path, f"expected {_UNITS[rule]}, got {value!r}")
    if rule is RuleName.TEAM_ADHERENCE_BELOW and not 0 <= v <= 1:
        raise ctx.error(path, f"expected {_UNITS[rule]}, got {value!r}")
    return v


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _activities(ctx: _Ctx, spec: Any, base: Mapping[str, Activity]) -> dict[str, Activity]:
    """Activities from `spec` over `base` (a named activity replaces the base one)."""
    if spec is None:
        return dict(base)
    if not isinstance(spec, Mapping):
        raise ctx.error("", "expected a mapping of activity name to {allowed: [...]}")
    out = dict(base)
    for name, aspec in spec.items():
        out[str(name)] = _activity(ctx, name, aspec)
    return out


def ruleset_from_mapping(
    rules: Mapping[str, Mapping[str, Any]] | None,
    activities: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    base: RuleSet | None = None,
    only_listed: bool = True,
    source: str = "<scenario>",
    strict: bool = False,
) -> RuleSet:
    """A ruleset from a scenario's (or a file's) `rules:` and `activities:` blocks.

    With `only_listed` (scenarios) only the rules named are enabled; otherwise the named rules
    override `base` and the others keep their `base` settings. A named rule's missing keys come
    from `base` (default: `default_ruleset()`). `strict` rejects unknown keys inside a rule
    (operator files); scenarios may carry extra keys, which are ignored.
    """
    base = base or default_ruleset()
    acts = _activities(_Ctx(source, prefix="activities"), activities, base.activities)
    ctx = _Ctx(source, prefix="rules")
    if rules is None:
        rules = {}
    if not isinstance(rules, Mapping):
        raise ctx.error("", "expected a mapping of rule name to its settings")
    out: dict[RuleName, RuleConfig] = {}
    if not only_listed:
        out.update(base.rules)
    for name, spec in rules.items():
        rule_base = base.rules.get(RuleName(name)) if str(name) in _RULE_NAMES else None
        cfg = _rule(ctx, name, spec, rule_base, strict=strict)
        out[cfg.name] = cfg
    ruleset = replace(base, activities=acts, rules=out)
    _check_ruleset(_Ctx(source), ruleset)
    return ruleset


_RULE_NAMES = frozenset(r.value for r in RuleName)


def _check_ruleset(ctx: _Ctx, ruleset: RuleSet) -> None:
    if ruleset.productive_activity not in ruleset.activities:
        raise ctx.error(
            "productive_activity",
            f"{ruleset.productive_activity!r} is not a defined activity",
        )
    for name in sorted(ruleset.break_activities):
        if name not in ruleset.activities:
            raise ctx.error("break_activities", f"{name!r} is not a defined activity")


# --- files -----------------------------------------------------------------------------------


def _read_yaml(path: Path) -> tuple[Any, yaml.Node | None]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise RulesError(str(path), "", f"cannot read: {e.strerror or e}") from None
    try:
        return read_yaml(text)
    except YamlProblem as e:
        raise RulesError(str(path), "", str(e), e.line) from None


def _top(ctx: _Ctx, data: Any, allowed: set[str]) -> Mapping[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ctx.error("", f"expected a mapping with keys: {', '.join(sorted(allowed))}")
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        raise ctx.error(unknown[0], f"unknown key; expected one of: {', '.join(sorted(allowed))}")
    return data


def load_rules(path: Path = Path("rules")) -> RuleSet:
    """The operator's ruleset from `path/activities.yaml` and `path/rules.yaml`.

    A missing file means the built-in defaults for its half; a missing directory is an error.
    Rules not named in rules.yaml keep their defaults; set `enabled: false` to turn one off.
    """
    path = Path(path)
    if not path.is_dir():
        raise RulesError(str(path), "", "no such directory (expected activities.yaml, rules.yaml)")
    base = default_ruleset()
    acts_path, rules_path = path / ACTIVITIES_FILE, path / RULES_FILE

    activities = base.activities
    productive = base.productive_activity
    breaks = base.break_activities
    if acts_path.exists():
        data, node = _read_yaml(acts_path)
        ctx = _Ctx(str(acts_path), node)
        top = _top(ctx, data, {"activities", "productive_activity", "break_activities"})
        activities = _activities(
            _Ctx(str(acts_path), node, "activities"), top.get("activities"), base.activities
        )
        if "productive_activity" in top:
            p = top["productive_activity"]
            if not isinstance(p, str):
                raise ctx.error("productive_activity", "expected an activity name")
            productive = p
        if "break_activities" in top:
            b = top["break_activities"]
            if not isinstance(b, list) or not all(isinstance(x, str) for x in b):
                raise ctx.error("break_activities", "expected a list of activity names")
            breaks = frozenset(b)
        ruleset = replace(
            base, activities=activities, productive_activity=productive, break_activities=breaks
        )
        _check_ruleset(ctx, ruleset)
        base = ruleset

    if rules_path.exists():
        data, node = _read_yaml(rules_path)
        ctx = _Ctx(str(rules_path), node)
        top = _top(ctx, data, {"rules"})
        rules = top.get("rules")
        rctx = _Ctx(str(rules_path), node, "rules")
        if rules is not None and not isinstance(rules, Mapping):
            raise rctx.error("", "expected a mapping of rule name to its settings")
        out = dict(base.rules)
        for name, spec in (rules or {}).items():
            cfg = _rule(rctx, name, spec, None, strict=True)
            out[cfg.name] = cfg
        base = replace(base, rules=out)
    return base


# --- CLI -------------------------------------------------------------------------------------


def summary(ruleset: RuleSet) -> str:
    """A human summary of a ruleset (what `rules check` prints)."""
    lines = [f"{len(ruleset.activities)} activities:"]
    for a in sorted(ruleset.activities.values(), key=lambda a: a.name):
        flag = " (neutral)" if a.neutral else ""
        lines.append(f"  {a.name}{flag}: {', '.join(sorted(a.allowed)) or '-'}")
    enabled = [r for r in ruleset.rules.values() if r.enabled]
    lines.append(f"{len(enabled)} rules enabled:")
    for r in sorted(ruleset.rules.values(), key=lambda r: r.name.value):
        parts = [f"after {format_duration(r.after)}", r.severity]
        if r.threshold is not None:
            parts.append(f"threshold {r.threshold:g}")
        if r.pause_type:
            parts.append(f"pause_type {r.pause_type}")
        if r.escalate_after is not None:
            parts.append(f"escalate after {format_duration(r.escalate_after)}")
        state = "" if r.enabled else " (disabled)"
        lines.append(f"  {r.name.value}{state}: {', '.join(parts)}")
    lines.append(f"productive activity: {ruleset.productive_activity}")
    return "\n".join(lines)


def stale_data_conflicts(
    ruleset: RuleSet, cadences: Mapping[str, tuple[Mapping[str, float], float]]
) -> list[str]:
    """Why `stale_data` would flap with these cadences (tenant -> (kind -> seconds, jitter)):
    its `after` must be longer than an endpoint's cadence plus jitter, or it fires between two
    good polls."""
    rule = ruleset.rules.get(RuleName.STALE_DATA)
    if rule is None or not rule.enabled:
        return []
    after = rule.after.total_seconds()
    problems = []
    for tenant, (kinds, jitter) in cadences.items():
        for kind, every in sorted(kinds.items()):
            if after <= every + jitter:
                need = format_duration(timedelta(seconds=2 * every))
                problems.append(
                    f"rules.stale_data.after: {format_duration(rule.after)} is not longer than "
                    f"tenant {tenant}'s {kind} cadence ({format_duration(timedelta(seconds=every))}"
                    f" + jitter), so it would fire between two good polls; use at least {need}"
                )
    return problems


def check_command(
    args: argparse.Namespace,
    cadences: Mapping[str, tuple[Mapping[str, float], float]] | None = None,
) -> int:
    """`puzzel-monitor rules check [path]`: 0 and a summary, or 2 and the error. With
    `cadences` (from a configuration, see `monitor.app.rules_cli`), `stale_data` is also checked
    against them."""
    path = Path(getattr(args, "path", "rules") or "rules")
    try:
        ruleset = load_rules(path)
    except RulesError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    problems = stale_data_conflicts(ruleset, cadences or {})
    for problem in problems:
        print(f"error: {path}: {problem}", file=sys.stderr)
    if problems:
        return EXIT_CONFIG
    print(f"{path}: ok")
    print(summary(ruleset))
    return EXIT_OK
