"""Which Slack user is which agent: the mapping the direct-message sink reads.

Per tenant, Puzzel user id -> a Slack user id (`U...`/`W...`) or an e-mail address (resolved
with `users.lookupByEmail` when first needed, the answer cached). Maintained like schedules: a
file (CSV, YAML or JSON) or the API, validated in full (every problem named by file, line and
field) and then applied in one Redis transaction. Formats in docs/alerting.md.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import redis.asyncio as aioredis
import yaml

from monitor.core.keys import RedisKeys
from monitor.schedules.errors import ImportIssue

Format = Literal["csv", "yaml"]  # JSON is read as YAML (a subset of it)

SLACK_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_BAD_AGENT = re.compile(r"[\s|]")
_AGENT_COLUMNS = ("puzzel_user_id", "user_id", "agent_id", "agent")
_TARGET_COLUMNS = ("slack_user_id", "email", "slack")
_SUFFIXES: Mapping[str, Format] = {".csv": "csv", ".yaml": "yaml", ".yml": "yaml", ".json": "yaml"}


class SlackUsersError(ValueError):
    """A mapping was rejected; `issues` lists every problem (nothing was written)."""

    def __init__(self, issues: list[ImportIssue]) -> None:
        self.issues = issues
        shown = "\n".join(f"  {i}" for i in issues[:20])
        more = f"\n  ... and {len(issues) - 20} more" if len(issues) > 20 else ""
        super().__init__(f"Slack user mapping rejected, {len(issues)} issue(s):\n{shown}{more}")


def is_email(target: str) -> bool:
    return "@" in target


def normal_target(value: str) -> str:
    """A target as stored: trimmed, an e-mail lower-cased (Slack matches them case-blind)."""
    text = value.strip()
    return text.lower() if is_email(text) else text


def check_target(value: object) -> str | None:
    """Why `value` is not a Slack user id or an e-mail address (None: it is one)."""
    if not isinstance(value, str) or not value.strip():
        return f"expected a Slack user id (U…) or an e-mail address, got {value!r}"
    text = value.strip()
    if SLACK_ID.match(text) or EMAIL.match(text):
        return None
    return f"expected a Slack user id like U0123ABCD or an e-mail address, got {text!r}"


def _check_agent(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return f"expected a Puzzel user id, got {value!r}"
    text = str(value).strip()
    if not text or _BAD_AGENT.search(text):
        return f"expected a Puzzel user id without spaces, got {str(value)!r}"
    return None


@dataclass
class _Collector:
    """The entries read so far and every problem found, with where each entry came from."""

    source: str
    entries: dict[str, str]
    seen_at: dict[str, str]
    issues: list[ImportIssue]

    def add(self, where: str, agent: object, target: object) -> None:
        problems = [(f"{where}: puzzel_user_id", _check_agent(agent))]
        problems.append((f"{where}: slack", check_target(target)))
        bad = [ImportIssue(self.source, w, m) for w, m in problems if m is not None]
        if bad:
            self.issues.extend(bad)
            return
        key = str(agent).strip()
        if key in self.seen_at:
            message = f"Puzzel user {key} is mapped twice (first at {self.seen_at[key]})"
            self.issues.append(ImportIssue(self.source, where, message))
            return
        self.seen_at[key] = where
        self.entries[key] = normal_target(str(target))


def parse_slack_users(data: bytes | str, *, fmt: Format, source: str) -> dict[str, str]:
    """Puzzel user id -> Slack user id or e-mail (lower-cased), or `SlackUsersError`."""
    text = data.decode("utf-8-sig", errors="replace") if isinstance(data, bytes) else data
    found = _Collector(source, {}, {}, [])
    if fmt == "csv":
        _read_csv(text, found)
    else:
        _read_yaml(text, found)
    if found.issues:
        raise SlackUsersError(found.issues)
    return found.entries


def _read_csv(text: str, found: _Collector) -> None:
    rows = csv.reader(io.StringIO(text))
    header = [h.strip().lower() for h in next(rows, [])]
    agent_col = next((header.index(c) for c in _AGENT_COLUMNS if c in header), None)
    target_cols = [header.index(c) for c in _TARGET_COLUMNS if c in header]
    if agent_col is None or not target_cols:
        message = (
            f"line 1: expected a header with puzzel_user_id and slack_user_id or email, "
            f"got {','.join(header)!r}"
        )
        found.issues.append(ImportIssue(found.source, "", message))
        return
    for line, row in enumerate(rows, start=2):
        cells = [c.strip() for c in row]
        if not any(cells):
            continue  # blank lines are nobody
        agent = cells[agent_col] if agent_col < len(cells) else ""
        target = next((cells[i] for i in target_cols if i < len(cells) and cells[i]), "")
        found.add(f"line {line}", agent, target)


def _read_yaml(text: str, found: _Collector) -> None:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        found.issues.append(ImportIssue(found.source, where, f"not YAML/JSON: {e}"))
        return
    node = root
    if isinstance(node, yaml.MappingNode):
        agents = [v for k, v in node.value if k.value == "agents"]
        node = agents[0] if agents else node
    if not isinstance(node, yaml.MappingNode):
        message = "expected a mapping of Puzzel user id to Slack user id or e-mail, under agents:"
        found.issues.append(ImportIssue(found.source, "", message))
        return
    for key, value in node.value:
        where = f"line {key.start_mark.line + 1}"
        target: Any = value.value if isinstance(value, yaml.ScalarNode) else _Shape(value)
        found.add(where, key.value, target)


class _Shape:
    """Stands for a YAML value that is not a scalar, in messages: `got a list`."""

    def __init__(self, node: yaml.Node) -> None:
        self.kind = "a list" if isinstance(node, yaml.SequenceNode) else "a mapping"

    def __repr__(self) -> str:
        return self.kind


def format_for(path: Path) -> Format:
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise SlackUsersError(
            [ImportIssue(str(path), "", "expected a .csv, .yaml, .yml or .json file")]
        )
    return fmt


@dataclass(frozen=True, slots=True)
class Applied:
    added: int
    changed: int
    removed: int
    total: int

    def as_dict(self) -> dict[str, int]:
        return {
            "added": self.added,
            "changed": self.changed,
            "removed": self.removed,
            "total": self.total,
        }


class SlackUserStore:
    """The mapping in Redis (`{p}:{t}:slack-users`) and the e-mail cache (`{p}:slack-email:*`)."""

    def __init__(self, redis: aioredis.Redis, *, key_prefix: str = "pzm") -> None:
        self.redis = redis
        self.keys = RedisKeys(key_prefix)

    async def apply(self, tenant: str, entries: Mapping[str, str], *, replace: bool) -> Applied:
        """Write `entries` in one transaction; `replace` drops everyone not in them."""
        key = self.keys.slack_users(tenant)
        before = await self.all(tenant)
        async with self.redis.pipeline(transaction=True) as pipe:
            if replace:
                pipe.delete(key)
            if entries:
                # redis-py's mapping type is invariant, hence Any
                fields: dict[Any, Any] = {a: normal_target(t) for a, t in entries.items()}
                pipe.hset(key, mapping=fields)
            await pipe.execute()
        removed = len(set(before) - set(entries)) if replace else 0
        changed = sum(1 for a, t in entries.items() if a in before and before[a] != t)
        added = sum(1 for a in entries if a not in before)
        return Applied(added, changed, removed, await self.redis.hlen(key))

    async def all(self, tenant: str) -> dict[str, str]:
        raw = await self.redis.hgetall(self.keys.slack_users(tenant))
        return {_text(k): _text(v) for k, v in raw.items()}

    async def get(self, tenant: str, agent: str) -> str | None:
        raw = await self.redis.hget(self.keys.slack_users(tenant), agent)
        return None if raw is None else _text(raw)

    async def remove(self, tenant: str, agent: str) -> bool:
        return bool(await self.redis.hdel(self.keys.slack_users(tenant), agent))

    async def cached_email(self, email: str) -> str | None:
        """The cached user id of `email`, "" if Slack knew no such user, None if not cached."""
        raw = await self.redis.get(self.keys.slack_email(email))
        return None if raw is None else _text(raw)

    async def cache_email(self, email: str, user_id: str | None, ttl_s: float) -> None:
        await self.redis.set(self.keys.slack_email(email), user_id or "", ex=max(1, int(ttl_s)))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def describe(store: SlackUserStore, tenant: str) -> dict[str, Any]:
    """The tenant's mapping as the API and `slack-users show` report it: per agent its target
    and, for an e-mail, what Slack answered (`resolved`: a user id, "" unknown to Slack, None
    not asked yet); with the count of e-mails Slack could not resolve."""
    entries = await store.all(tenant)
    agents: list[dict[str, Any]] = []
    unresolvable = 0
    for agent in sorted(entries, key=lambda a: (len(a), a)):
        target = entries[agent]
        row: dict[str, Any] = {"puzzel_user_id": agent}
        if is_email(target):
            resolved = await store.cached_email(target)
            unresolvable += resolved == ""
            row |= {"email": target, "resolved": resolved}
        else:
            row["slack_user_id"] = target
        agents.append(row)
    return {"tenant": tenant, "count": len(agents), "unresolvable": unresolvable, "agents": agents}
