"""Pollers: one per tenant and endpoint kind, run by `monitor.ingest.cadence` on their cadences.

Endpoint kinds (the `endpoint` label of the poll-health metrics, and the config's cadence keys):

- `user_states`: for each watched user group, ONE `user_group_state_information` call per cycle
  (concurrently, throttled by the client's rate limiter); the tracker turns the answers into
  `AgentSnapshot`s (one per group) with state-entry times, which are published together as one
  cycle. Then, for agents whose state changed this cycle (logged-on ones first), up to
  `user_state_budget` per-user `user_state_information` calls make those entry times exact.
  A cycle in which some groups failed publishes the groups that answered (a team missing from
  a cycle is *unknown*, not empty) and counts as a failed poll.
- `queues`: one `visual_queue_state_information("All")` call -> `QueueSnapshot`, filtered to the
  watched queues.
- `agent_stats`, `queue_ticker`, `access_points`: today-tickers -> `TickerSnapshot` with kinds
  `agent_stats`, `visual_queue_ticker`, `access_point_tickers`. Row `values` keys:
  agent_stats (key = agent id, description = team): `requests_offered`, `requests_answered`,
  `logged_on_seconds`, `in_pause_seconds`; visual_queue_ticker (key = queue id):
  `calls_offered`, `calls_answered`, `calls_abandoned`, `calls_answered_within_sla`,
  `calls_abandoned_within_sla`, `ciqs_offered`, `ciqs_answered`, `surveys_answered`;
  access_point_tickers (key = access point): `requests_offered`, `requests_answered`.

Pause type ids become names through `pause_types()` (cached, refreshed hourly, or sooner when an
unknown id shows up) unless the rows carry `pauseTypeName`.

Poll health per tenant and kind (`PollHealth`): a failure is logged once on the ok -> failed
transition and the recovery once; a `PuzzelRateLimited` postpones that job by its Retry-After.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import compress, count
from operator import is_not
from typing import Literal, Protocol, TypeVar

import structlog

from monitor.core.clock import Clock
from monitor.core.snapshots import (
    AgentSnapshot,
    QueueObservation,
    QueueSnapshot,
    TickerRow,
    TickerSnapshot,
)
from monitor.core.states import AgentState, StateKind
from monitor.ingest.cadence import Scheduler
from monitor.ingest.tracker import AgentRow, GroupPoll, StateTracker
from monitor.puzzel.exceptions import PuzzelError, PuzzelNotFound, PuzzelRateLimited
from monitor.puzzel.models import (
    AccessPointTicker,
    AgentStats,
    PauseType,
    User,
    UserGroup,
    UserGroupAgentState,
    UserStateInformation,
    VisualQueueState,
    VisualQueueTicker,
)

log = structlog.get_logger("monitor.ingest.pollers")

T = TypeVar("T")

# poll_duration_seconds histogram buckets
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# each poll kind and the endpoint it calls (a kind is registered only if its endpoint is on)
POLL_ENDPOINTS = {
    "user_states": "user_group_state_information",
    "queues": "visual_queue_state_information",
    "agent_stats": "agent_stats",
    "queue_ticker": "visual_queue_ticker",
    "access_points": "access_point_tickers",
}
# agents need this one: a 404 there is a failure to report, not an endpoint to do without
ESSENTIAL_KIND = "user_states"
REPROBE_INTERVAL = 3600.0  # how often an endpoint the tenant lacks is asked again
NO_TEAM = "unassigned"  # team of a row without userGroupName in the combined call
PAUSE_TYPES_TTL = 3600.0
USER_GROUPS_TTL = 3600.0
UNKNOWN_PAUSE_RETRY = 300.0


class CadenceSettings(Protocol):
    @property
    def jitter(self) -> float: ...

    def enabled(self) -> dict[str, float]: ...


class PollSettings(Protocol):
    """The polling part of a tenant's configuration (`monitor.app.config.TenantConfig` has it):
    the pollers take only this, not the tenant's alert routing and the rest."""

    @property
    def customer_key(self) -> str: ...

    @property
    def user_groups(self) -> Literal["all"] | list[str]: ...

    @property
    def visual_queues(self) -> Literal["all"] | list[str]: ...

    @property
    def cadences(self) -> CadenceSettings: ...

    @property
    def user_state_budget(self) -> int: ...

    @property
    def combined_state_call(self) -> bool: ...

    @property
    def pause_types(self) -> Mapping[str, str]: ...


class PuzzelApi(Protocol):
    """The part of `monitor.puzzel.client.PuzzelClient` the pollers use."""

    def enabled(self, name: str) -> bool: ...

    async def user(self, user_id: int | str) -> User: ...

    async def user_groups(self) -> list[UserGroup]: ...

    async def user_group_state_information(
        self,
        ticker_period_window: str = "Today",
        user_group_name: str | None = None,
        user_id: int | str | None = None,
    ) -> list[UserGroupAgentState]: ...

    async def user_state_information(self, user_id: int | str) -> UserStateInformation: ...

    async def visual_queue_state_information(
        self,
        result: str = "All",
        user_id: int | str | None = None,
        visual_queue_id: int | None = None,
    ) -> list[VisualQueueState]: ...

    async def agent_stats(self, ticker_period_window: str = "Today") -> list[AgentStats]: ...

    async def visual_queue_ticker(
        self, ticker_period_window: str = "Today"
    ) -> list[VisualQueueTicker]: ...

    async def access_point_tickers(
        self, ticker_period_window: str = "Today"
    ) -> list[AccessPointTicker]: ...

    async def pause_types(self) -> list[PauseType]: ...


class SnapshotSink(Protocol):
    """Where the pollers publish what they saw (the engine pipeline implements this)."""

    async def on_agent_cycle(self, tenant: str, snapshots: Sequence[AgentSnapshot]) -> None: ...

    async def on_queues(self, tenant: str, snapshot: QueueSnapshot) -> None: ...

    async def on_ticker(self, tenant: str, snapshot: TickerSnapshot) -> None: ...


class LatestSnapshots:
    """The newest snapshot of each kind, per tenant: what the exporter reads.

    The pollers write here first, then publish to the pipeline's `SnapshotSink` (if any)."""

    def __init__(self) -> None:
        self.agents: dict[str, dict[str, AgentSnapshot]] = {}
        self.queues: dict[str, QueueSnapshot] = {}
        self.tickers: dict[str, dict[str, TickerSnapshot]] = {}

    def put_agents(self, tenant: str, snapshots: Sequence[AgentSnapshot]) -> None:
        teams = self.agents.setdefault(tenant, {})
        for snap in snapshots:
            teams[snap.team] = snap

    def put_queues(self, tenant: str, snapshot: QueueSnapshot) -> None:
        self.queues[tenant] = snapshot

    def put_ticker(self, tenant: str, snapshot: TickerSnapshot) -> None:
        self.tickers.setdefault(tenant, {})[snapshot.kind] = snapshot

    # the SnapshotSink protocol, so the store can stand in for a pipeline
    async def on_agent_cycle(self, tenant: str, snapshots: Sequence[AgentSnapshot]) -> None:
        self.put_agents(tenant, snapshots)

    async def on_queues(self, tenant: str, snapshot: QueueSnapshot) -> None:
        self.put_queues(tenant, snapshot)

    async def on_ticker(self, tenant: str, snapshot: TickerSnapshot) -> None:
        self.put_ticker(tenant, snapshot)

    def keep_teams(self, tenant: str, teams: Sequence[str]) -> None:
        """Forget teams no longer watched."""
        current = self.agents.get(tenant, {})
        for team in [t for t in current if t not in teams]:
            del current[team]

    def forget(self, tenant: str) -> None:
        """Drop everything about a tenant (no longer polled here)."""
        self.agents.pop(tenant, None)
        self.queues.pop(tenant, None)
        self.tickers.pop(tenant, None)

    def agent_snapshots(self, tenant: str) -> list[AgentSnapshot]:
        return list(self.agents.get(tenant, {}).values())

    def tenants(self) -> list[str]:
        return sorted({*self.agents, *self.queues, *self.tickers})


@dataclass(slots=True)
class PollHealth:
    """Health of one tenant's poller of one endpoint kind."""

    tenant: str
    endpoint: str
    up: bool = False
    last_success: datetime | None = None
    last_duration: float | None = None
    polls: int = 0
    failures: int = 0
    overruns: int = 0
    last_error: str | None = None
    supported: bool | None = None  # False after a 404/405: the tenant lacks this endpoint
    duration_sum: float = 0.0
    duration_count: int = 0  # completed polls (those in flight are not in the histogram yet)
    duration_buckets: list[int] = field(default_factory=lambda: [0] * len(DURATION_BUCKETS))

    def observe_duration(self, seconds: float) -> None:
        self.last_duration = seconds
        self.duration_sum += seconds
        self.duration_count += 1
        for i, bound in enumerate(DURATION_BUCKETS):
            if seconds <= bound:
                self.duration_buckets[i] += 1


class PollFailed(Exception):
    """A poll that got some answers but not all (e.g. one user group failed)."""


class TenantPollers:
    """The pollers of one tenant: register them with a scheduler, read their health."""

    def __init__(
        self,
        tenant: PollSettings,
        client: PuzzelApi,
        clock: Clock,
        store: LatestSnapshots,
        sink: SnapshotSink | None = None,
        *,
        tracker: StateTracker | None = None,
    ) -> None:
        self.config = tenant
        self.tenant = tenant.customer_key
        self.client = client
        self.clock = clock
        self.store = store
        self.sink = sink
        self.tracker = tracker if tracker is not None else StateTracker(self.tenant)
        self.health = {kind: PollHealth(self.tenant, kind) for kind in self.kinds()}
        self.scheduler: Scheduler | None = None
        self._pause_names: dict[int, str] = {}
        self._pause_fetched: float | None = None
        self._groups: list[str] | None = None
        self._groups_fetched: float | None = None
        self.last_cycle_requests = 0  # group + per-user calls made by the latest state cycle
        self._missing: dict[str, float] = {}  # per-user endpoint -> when it last answered 404
        self._pause_checked: dict[str, float] = {}  # paused agent -> when users/{id} was asked
        # supported or not, for the endpoints called on the side (per-user calls, pause types)
        self.aux_supported: dict[str, bool] = {}
        # the previous cycle's rows per group (as the client handed them and as AgentRows),
        # and the pause-name maps they were made with: see _polls
        self._made: dict[str, _GroupRows] = {}
        self._made_with: tuple[object, object] = (None, None)
        self._split: _Split | None = None  # the previous combined answer, split by group

    # --- registration -----------------------------------------------------------------------

    def job_name(self, kind: str) -> str:
        return f"{self.tenant}:{kind}"

    def kinds(self) -> dict[str, float]:
        """Kind -> interval for the kinds whose cadence is on and whose endpoint is enabled."""
        return {
            kind: interval
            for kind, interval in self.config.cadences.enabled().items()
            if self.client.enabled(POLL_ENDPOINTS[kind])
        }

    def register(self, scheduler: Scheduler, *, stagger: float = 0.0) -> None:
        """Add this tenant's enabled pollers to `scheduler`, all due `stagger` seconds from now."""
        self.scheduler = scheduler
        polls: dict[str, Callable[[], Awaitable[None]]] = {
            "user_states": self.poll_user_states,
            "queues": self.poll_queues,
            "agent_stats": self.poll_agent_stats,
            "queue_ticker": self.poll_queue_ticker,
            "access_points": self.poll_access_points,
        }
        for kind, interval in self.kinds().items():
            scheduler.add(
                self.job_name(kind),
                self._guarded(kind, polls[kind]),
                interval,
                jitter=self.config.cadences.jitter,
                first_run_in=stagger,
                max_interval=2 * interval,  # recover within two cadences of the cause
            )

    @property
    def ready(self) -> bool:
        """The first agent-state poll has succeeded."""
        health = self.health.get("user_states")
        return health is not None and health.last_success is not None

    def supported(self) -> dict[str, bool]:
        """Endpoint -> whether the tenant answers it (poll kinds, then per-user lookups), for
        the endpoints that have answered at least once."""
        out = {k: h.supported for k, h in self.health.items() if h.supported is not None}
        return {**out, **self.aux_supported}

    def unsupported(self) -> set[str]:
        """Poll kinds whose endpoint the tenant lacks (no staleness for them)."""
        return {k for k, h in self.health.items() if h.supported is False}

    def refresh_overruns(self) -> None:
        """Copy the scheduler's overrun counts into the health records."""
        for kind, n in self.overruns().items():
            self.health[kind].overruns = n

    def overruns(self) -> dict[str, int]:
        """Runs skipped per kind because the previous one was still running (read-only: a
        scrape reads this without touching the health records)."""
        jobs = self.scheduler.jobs if self.scheduler is not None else {}
        out = {}
        for kind, health in self.health.items():
            job = jobs.get(self.job_name(kind))
            out[kind] = job.stats.overruns if job is not None else health.overruns
        return out

    # --- the poll wrapper -------------------------------------------------------------------

    def _guarded(
        self, kind: str, body: Callable[[], Awaitable[None]]
    ) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            await self.run_poll(kind, body)

        return run

    async def run_poll(self, kind: str, body: Callable[[], Awaitable[None]]) -> None:
        """Run one poll, keeping its health; re-raises so the scheduler can back off."""
        health = self.health.setdefault(kind, PollHealth(self.tenant, kind))
        health.polls += 1
        started = self.clock.monotonic()
        try:
            await body()
        except asyncio.CancelledError:
            raise
        except PuzzelNotFound as e:
            health.observe_duration(self.clock.monotonic() - started)
            if kind == ESSENTIAL_KIND:
                self._failed(health, e)
                raise
            self._unsupported(health, e)
            return
        except Exception as e:
            health.observe_duration(self.clock.monotonic() - started)
            self._failed(health, e)
            if isinstance(e, PuzzelRateLimited) and self.scheduler is not None:
                self.scheduler.postpone(self.job_name(kind), e.retry_after)
            raise
        health.observe_duration(self.clock.monotonic() - started)
        if health.supported is False:
            log.info("endpoint supported again", tenant=self.tenant, endpoint=kind)
        elif not health.up and health.last_error is not None:
            log.info("poll recovered", tenant=self.tenant, endpoint=kind)
        health.supported = True
        health.up = True
        health.last_success = self.clock.now()
        health.last_error = None
        self.refresh_overruns()

    def _unsupported(self, health: PollHealth, error: PuzzelNotFound) -> None:
        """The tenant does not have this endpoint: not a failure, not stale; ask again hourly."""
        if health.supported is not False:
            self._warn_unsupported(health.endpoint, error)
        health.supported = False
        health.up = False
        health.last_error = str(error)
        if self.scheduler is not None:
            self.scheduler.postpone(self.job_name(health.endpoint), REPROBE_INTERVAL)

    def _failed(self, health: PollHealth, error: Exception) -> None:
        health.failures += 1
        message = str(error) if isinstance(error, PuzzelError) else f"{type(error).__name__}"
        first_failure = health.up or health.last_error is None
        health.up = False
        health.last_error = message
        if first_failure:
            if isinstance(error, PuzzelError | PollFailed):
                log.warning(
                    "poll failed", tenant=self.tenant, endpoint=health.endpoint, error=message
                )
            else:  # a bug rather than Puzzel trouble: keep the traceback
                log.error(
                    "poll failed",
                    tenant=self.tenant,
                    endpoint=health.endpoint,
                    error=message,
                    exc_info=error,
                )
        self.refresh_overruns()

    # --- user states ------------------------------------------------------------------------

    async def watched_groups(self) -> list[str]:
        """The configured group names, or every group (listed at most hourly) for `all`."""
        if self.config.user_groups != "all":
            return list(self.config.user_groups)
        now = self.clock.monotonic()
        if (
            self._groups is None
            or self._groups_fetched is None
            or now - self._groups_fetched >= USER_GROUPS_TTL
        ):
            groups = await self.client.user_groups()
            self._groups = sorted({g.name for g in groups})
            self._groups_fetched = now
        return list(self._groups)

    async def _combined_state_call(
        self, groups: list[str]
    ) -> tuple[list[str], list[tuple[str, datetime, list[UserGroupAgentState]]]]:
        """Every group's agents from one unfiltered call, split by their user group."""
        rows = await self.client.user_group_state_information("Today")
        now = self.clock.now()
        split = self._split
        by_group = None if split is None or split.groups != groups else split.reuse(rows)
        if split is None or by_group is None:
            split = _Split.of(groups, rows)
        else:
            split = _Split(split.groups, rows, by_group, split.where)
        self._split = split
        return list(split.by_group), [(g, now, r) for g, r in split.by_group.items()]

    async def poll_user_states(self) -> None:
        groups = await self.watched_groups()
        failed: list[tuple[str, BaseException]] = []
        if self.config.user_groups == "all" and self.config.combined_state_call:
            groups, raw = await self._combined_state_call(groups)
            requests = 1
        else:
            raw, failed = await self._per_group_state_calls(groups)
            requests = len(groups)
        changes = {group: self._changes(group, rows) for group, _, rows in raw}
        unnamed = self._unnamed_pauses(raw, changes)
        if self.client.enabled("pause_types"):
            await self._ensure_pause_names(unnamed)
        polls = self._polls(raw, changes, unnamed)
        for team in list(self.tracker.teams() - set(groups)):
            self.tracker.forget_team(team)
        self.store.keep_teams(self.tenant, groups)
        result = self.tracker.observe_cycle(polls)
        requests += await self._fetch_exact(result.changed)
        self.last_cycle_requests = requests
        snapshots = tuple(self.tracker.snapshot(p.team, p.taken_at) for p in polls)
        if snapshots:
            self.store.put_agents(self.tenant, snapshots)
            if self.sink is not None:
                await self.sink.on_agent_cycle(self.tenant, snapshots)
        if failed:
            if len(failed) == len(groups) and isinstance(failed[0][1], Exception):
                raise failed[0][1]
            names = ", ".join(g for g, _ in failed)
            raise PollFailed(f"{len(failed)} of {len(groups)} user groups failed: {names}")

    async def _per_group_state_calls(
        self, groups: list[str]
    ) -> tuple[
        list[tuple[str, datetime, list[UserGroupAgentState]]], list[tuple[str, BaseException]]
    ]:
        """One state call per group, concurrently: the answers, and the groups that failed."""
        answers = await asyncio.gather(
            *(self.client.user_group_state_information("Today", user_group_name=g) for g in groups),
            return_exceptions=True,
        )
        now = self.clock.now()
        raw: list[tuple[str, datetime, list[UserGroupAgentState]]] = []
        failed: list[tuple[str, BaseException]] = []
        for group, answer in zip(groups, answers, strict=True):
            if isinstance(answer, asyncio.CancelledError):
                raise answer
            if isinstance(answer, BaseException):
                failed.append((group, answer))
            else:
                raw.append((group, now, answer))
        return raw, failed

    def pause_name(self, pause_type_id: int | None, name: str | None = None) -> str | None:
        """A pause type's name: as sent, from the tenant's `pause_types` map, from the pause
        types endpoint, or else the id itself (so rules can still match it)."""
        if name or not pause_type_id:
            return name or None
        known = self.config.pause_types.get(str(pause_type_id))
        return known or self._pause_names.get(pause_type_id) or str(pause_type_id)

    def _changes(self, group: str, rows: list[UserGroupAgentState]) -> list[int] | None:
        """Positions of `rows` that are not the very object of the group's previous answer
        there (the client hands back the same object for a row whose bytes did not change);
        None when there is no previous answer of that length."""
        before = self._made.get(group)
        if before is None or len(before.raw) != len(rows):
            return None
        return list(compress(count(), map(is_not, rows, before.raw)))  # no Python per row

    def _unnamed_pauses(
        self, raw: _Answers, changes: Mapping[str, list[int] | None]
    ) -> dict[str, dict[int, int]]:
        """Per group, position -> pause type id of the rows paused with an id and no name."""
        out = {}
        for group, _, rows in raw:
            where, before = changes[group], self._made.get(group)
            if where is None or before is None:
                ids, where = {}, list(range(len(rows)))
            else:
                ids = dict(before.unnamed)
            for i in where:
                r = rows[i]
                if r.pause_type_id and not r.pause_type_name:
                    ids[i] = r.pause_type_id
                else:
                    ids.pop(i, None)
            out[group] = ids
        return out

    def _polls(
        self,
        raw: _Answers,
        changes: Mapping[str, list[int] | None] | None = None,
        unnamed: dict[str, dict[int, int]] | None = None,
    ) -> list[GroupPoll]:
        """The group answers as the tracker reads them. An AgentRow depends only on its
        Puzzel row, its group and the pause-name maps (unless it is a pause without a type,
        which reads the tracker: made afresh every cycle): only the rows that are not the
        very objects of the group's previous answer are made again, the others kept."""
        names = (self.config.pause_types, self._pause_names)
        if names[0] is not self._made_with[0] or names[1] is not self._made_with[1]:
            self._made, self._made_with = {}, names  # (`changes` stay right: they are rows)
        if changes is None:
            changes = {group: self._changes(group, rows) for group, _, rows in raw}
        if unnamed is None:
            unnamed = self._unnamed_pauses(raw, changes)
        made = {}
        polls = []
        for group, at, rows in raw:
            out, again = self._group_rows(group, rows, changes[group])
            made[group] = _GroupRows(rows, out, again, unnamed[group])
            polls.append(GroupPoll(group, at, out))
        self._made = made
        return polls

    def _group_rows(
        self, group: str, rows: list[UserGroupAgentState], where: list[int] | None
    ) -> tuple[list[AgentRow], tuple[int, ...]]:
        """A group's AgentRows (the previous ones where the row is the same object), and the
        positions to make afresh next cycle."""
        before = self._made.get(group)
        if where is None or before is None:
            made = [self._row(group, r) for r in rows]
            return [row for row, _ in made], tuple(i for i, (_, k) in enumerate(made) if not k)
        out = list(before.rows)
        again = []
        for i in sorted({*where, *before.untyped}) if before.untyped else where:
            out[i], keep = self._row(group, rows[i])
            if not keep:
                again.append(i)
        return out, tuple(again)

    def _row(self, group: str, r: UserGroupAgentState) -> tuple[AgentRow, bool]:
        """The row as the tracker reads it, and whether it depends on the row alone (a pause
        without a type reads the tracker: not to be kept)."""
        agent_id = str(r.user_id)
        pause_name = self.pause_name(r.pause_type_id, r.pause_type_name)
        state = AgentState.from_puzzel(r.contact_centre_status, r.user_status, pause_name)
        untyped = state.kind is StateKind.PAUSE and state.pause_type is None
        if untyped:
            # rows without a pause type: keep the type a per-user call found for this pause
            known = self.tracker.get(agent_id)
            if known is not None and known.state.kind is StateKind.PAUSE:
                state = known.state
        return AgentRow(
            agent_id=agent_id,
            name=r.name,
            team=group,
            state=state,
            calls_offered=r.calls_offered or 0,
            calls_answered=r.calls_answered or 0,
            status_duration_seconds=r.status_duration_seconds,
        ), not untyped

    async def _ensure_pause_names(self, unnamed: Mapping[str, Mapping[int, int]]) -> None:
        """Fetch the pause type names when they are old, or when a row paused with an id and
        no name shows an id not among them (`unnamed`: per group, position -> that id)."""
        now = self.clock.monotonic()
        age = None if self._pause_fetched is None else now - self._pause_fetched
        ids = {i for by_pos in unnamed.values() for i in by_pos.values()}
        unknown = any(i not in self._pause_names for i in ids)
        stale = age is None or age >= PAUSE_TYPES_TTL
        if not ids or not (stale or (unknown and age is not None and age >= UNKNOWN_PAUSE_RETRY)):
            return
        await self.refresh_pause_types()

    async def refresh_pause_types(self) -> None:
        """Fetch the pause type names; on failure keep the old ones (states keep no name)."""
        self._pause_fetched = self.clock.monotonic()
        try:
            types_ = await self.client.pause_types()
        except PuzzelNotFound as e:
            self._note_missing("pause_types", e)
            return
        except PuzzelError as e:
            log.warning("pause types unavailable", tenant=self.tenant, error=str(e))
            return
        self._found("pause_types")
        self._pause_names = {t.id: t.description for t in types_ if t.description}

    async def _fetch_exact(self, changed: Sequence[str]) -> int:
        """Per-user calls for changed agents, within the budget. Returns the number of calls.

        With the per-user state endpoint on (unverified; a tenant turns it on), it makes entry
        times exact. Otherwise the confirmed `users/{userId}` names the pause type of paused
        agents whose rows carry none."""
        budget = self.config.user_state_budget
        if budget <= 0:
            return 0
        if self.client.enabled("user_state_information") and self._endpoint_usable(
            "user_state_information"
        ):
            return await self._fetch_durations(changed, budget) if changed else 0
        if self.client.enabled("user") and self._endpoint_usable("user"):
            return await self._fetch_pause_types(changed, budget)
        return 0

    def _endpoint_usable(self, name: str) -> bool:
        """False for an endpoint that answered 404 within the last re-probe interval."""
        since = self._missing.get(name)
        return since is None or self.clock.monotonic() - since >= REPROBE_INTERVAL

    def _warn_unsupported(self, endpoint: str, error: PuzzelNotFound) -> None:
        log.warning(
            "endpoint not supported by this tenant; asking again hourly",
            tenant=self.tenant,
            endpoint=endpoint,
            http_status=error.http_status,
        )

    def _note_missing(self, name: str, error: PuzzelNotFound) -> None:
        if name not in self._missing:
            self._warn_unsupported(name, error)
        self._missing[name] = self.clock.monotonic()
        self.aux_supported[name] = False

    async def _ask(self, name: str, call: Awaitable[T]) -> T | None:
        """One per-user call: its answer, or None after a 404 (the endpoint noted missing) or
        another Puzzel error (logged at debug: a per-user call is a refinement, not a poll)."""
        try:
            answer = await call
        except PuzzelNotFound as e:
            self._note_missing(name, e)
            return None
        except PuzzelError as e:
            log.debug("per-user call failed", tenant=self.tenant, endpoint=name, error=str(e))
            return None
        self._found(name)
        return answer

    async def _fetch_durations(self, changed: Sequence[str], budget: int) -> int:
        candidates = [self.tracker.get(a) for a in changed]
        # logged-on agents first: their entry times drive the rules
        chosen = sorted(
            (o for o in candidates if o is not None and not o.since_exact),
            key=lambda o: o.state.kind is StateKind.LOGGED_OFF,
        )[:budget]

        async def one(agent_id: str) -> None:
            call = self.client.user_state_information(agent_id)
            info = await self._ask("user_state_information", call)
            if info is None:
                return
            fetched_at = self.clock.now()
            pause_name = self.pause_name(info.pause_type_id, info.pause_type_name)
            state = AgentState.from_puzzel(info.contact_centre_status, info.user_status, pause_name)
            if info.status_duration_seconds is not None:
                self.tracker.correct(agent_id, state, info.status_duration_seconds, fetched_at)
            if state.pause_type is not None:
                self.tracker.name_pause(agent_id, state.pause_type, fetched_at)

        await asyncio.gather(*(one(o.agent_id) for o in chosen))
        return len(chosen)

    async def _fetch_pause_types(self, changed: Sequence[str], budget: int) -> int:
        """Name new pauses first; spend what is left of the budget re-checking the pauses
        checked longest ago, since rows cannot show one pause type turning into another."""
        paused = {o.agent_id: o for o in self.tracker.agents() if o.state.kind is StateKind.PAUSE}
        fresh = set(changed)
        untyped = [a for a, o in paused.items() if o.state.pause_type is None and a in fresh]
        first = set(untyped)
        rest = sorted(
            (a for a in paused if a not in first),
            key=lambda a: self._pause_checked.get(a, float("-inf")),
        )
        chosen = [*untyped, *rest][:budget]
        self._pause_checked = {a: t for a, t in self._pause_checked.items() if a in paused}

        async def one(agent_id: str) -> None:
            user = await self._ask("user", self.client.user(agent_id))
            if user is None:
                return
            self._pause_checked[agent_id] = self.clock.monotonic()
            name = self.pause_name(user.pause_type_id, user.pause_type_name)
            if name is not None:
                self.tracker.name_pause(agent_id, name, self.clock.now())

        await asyncio.gather(*(one(a) for a in chosen))
        return len(chosen)

    def _found(self, name: str) -> None:
        if self._missing.pop(name, None) is not None:
            log.info("endpoint supported again", tenant=self.tenant, endpoint=name)
        self.aux_supported[name] = True

    # --- queues and tickers -----------------------------------------------------------------

    def _watched_queue(self, queue_id: str) -> bool:
        watched = self.config.visual_queues
        return watched == "all" or queue_id in watched

    async def poll_queues(self) -> None:
        rows = await self.client.visual_queue_state_information("All")
        taken_at = self.clock.now()
        queues = tuple(_queue(q) for q in rows if self._watched_queue(str(q.id)))
        snapshot = QueueSnapshot(self.tenant, taken_at, queues)
        self.store.put_queues(self.tenant, snapshot)
        if self.sink is not None:
            await self.sink.on_queues(self.tenant, snapshot)

    async def poll_agent_stats(self) -> None:
        rows = await self.client.agent_stats("Today")
        taken_at = self.clock.now()
        out = []
        for r in rows:
            team = r.user_group_name
            if team is None:
                known = self.tracker.get(str(r.user_id))
                team = known.team if known is not None else ""
            out.append(
                TickerRow(
                    key=str(r.user_id),
                    description=team,
                    values=_values(r.overview, AGENT_STATS_FIELDS),
                )
            )
        await self._publish_ticker("agent_stats", taken_at, out)

    async def poll_queue_ticker(self) -> None:
        rows = await self.client.visual_queue_ticker("Today")
        taken_at = self.clock.now()
        out = [
            TickerRow(
                key=str(r.id),
                description=r.description or "",
                values=_values(r, QUEUE_TICKER_FIELDS),
            )
            for r in rows
            if self._watched_queue(str(r.id))
        ]
        await self._publish_ticker("visual_queue_ticker", taken_at, out)

    async def poll_access_points(self) -> None:
        rows = await self.client.access_point_tickers("Today")
        taken_at = self.clock.now()
        out = [
            TickerRow(
                key=r.accesspoint,
                description=r.description or "",
                values=_values(r, ACCESS_POINT_FIELDS),
            )
            for r in rows
        ]
        await self._publish_ticker("access_point_tickers", taken_at, out)

    async def _publish_ticker(self, kind: str, taken_at: datetime, rows: list[TickerRow]) -> None:
        snapshot = TickerSnapshot(self.tenant, kind, taken_at, tuple(rows))
        self.store.put_ticker(self.tenant, snapshot)
        if self.sink is not None:
            await self.sink.on_ticker(self.tenant, snapshot)


_Answers = list[tuple[str, datetime, list[UserGroupAgentState]]]  # (group, taken at, rows)


@dataclass(frozen=True, slots=True)
class _GroupRows:
    """One group's previous answer: the client's rows, the AgentRows made of them, the
    positions made afresh every cycle (pauses without a type) and the unnamed pauses' ids."""

    raw: list[UserGroupAgentState]
    rows: list[AgentRow]
    untyped: tuple[int, ...]
    unnamed: dict[int, int]


@dataclass(frozen=True, slots=True)
class _Split:
    """A combined answer split by user group, and where each row went."""

    groups: list[str]  # the watched groups it was split for
    rows: list[UserGroupAgentState]
    by_group: dict[str, list[UserGroupAgentState]]
    where: list[tuple[str, int]]  # per row: its group and its place there

    @classmethod
    def of(cls, groups: list[str], rows: list[UserGroupAgentState]) -> _Split:
        by_group: dict[str, list[UserGroupAgentState]] = {g: [] for g in groups}
        where = []
        for row in rows:
            group = row.user_group_name or NO_TEAM
            into = by_group.setdefault(group, [])
            where.append((group, len(into)))
            into.append(row)
        return cls(list(groups), rows, by_group, where)

    def reuse(self, rows: list[UserGroupAgentState]) -> dict[str, list[UserGroupAgentState]] | None:
        """The split of the next answer when only rows at the same places changed and stay in
        their groups (the groups' order and sizes then stay too); else None."""
        if len(rows) != len(self.rows):
            return None
        changed = list(compress(count(), map(is_not, rows, self.rows)))
        for i in changed:
            if (rows[i].user_group_name or NO_TEAM) != self.where[i][0]:
                return None
        by_group = {g: list(r) for g, r in self.by_group.items()}  # the previous stay as they were
        for i in changed:
            group, at = self.where[i]
            by_group[group][at] = rows[i]
        return by_group


AGENT_STATS_FIELDS = (
    "requests_offered",
    "requests_answered",
    "logged_on_seconds",
    "in_pause_seconds",
)
QUEUE_TICKER_FIELDS = (
    "calls_offered",
    "calls_answered",
    "calls_abandoned",
    "calls_answered_within_sla",
    "calls_abandoned_within_sla",
    "ciqs_offered",
    "ciqs_answered",
    "surveys_answered",
)
ACCESS_POINT_FIELDS = ("requests_offered", "requests_answered")


def _values(row: object, names: Sequence[str]) -> dict[str, float]:
    """The ticker values a row carries; a field Puzzel left out is left out here too."""
    out: dict[str, float] = {}
    for name in names:
        value = getattr(row, name)
        if value is not None:
            out[name] = float(value)
    return out


def _queue(q: VisualQueueState) -> QueueObservation:
    def num(value: float | None) -> float | None:
        return None if value is None else float(value)

    return QueueObservation(
        queue_id=str(q.id),
        description=q.description or "",
        queue_size=q.queue_size,
        wait_time_max_seconds=num(q.wait_time_max_seconds),
        wait_time_average_seconds=num(q.wait_time_average_seconds),
        agents_logged_on=q.agents_logged_on,
        agents_ready=q.agents_ready,
        agents_in_pause=q.agents_in_pause,
        agents_unavailable=q.agents_unavailable,
        calls_offered_today=q.calls_offered_today,
        calls_answered_today=q.calls_answered_today,
        calls_abandoned_today=q.calls_abandoned_today,
        calls_answered_within_sla=q.calls_answered_within_sla,
        sla_percent=num(q.sla),
        alarm=bool(q.alarm_flag),
    )
