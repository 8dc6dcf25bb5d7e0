"""Fixtures for the doctor tests: a simulator (either profile) served over real loopback HTTP,
a configuration file pointing at it, and a way to run `doctor` as the command line does."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml
from aiohttp.test_utils import TestServer
from pydantic import SecretStr

from monitor.app.doctor import doctor_command
from monitor.core.clock import VirtualClock
from monitor.puzzel.endpoints import ENDPOINTS
from monitor.simulator.app import create_app, tenant_settings
from monitor.simulator.simulator import Simulator

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # 10:00 in Oslo, agents at work
AGENTS = 30


@dataclass
class Doctored:
    """What one `doctor` run printed and returned."""

    code: int
    out: str
    err: str

    def table(self) -> dict[str, list[str]]:
        """The table's rows by endpoint: [path, http, code, rows, missing, unknown, ms, verdict]."""
        rows: dict[str, list[str]] = {}
        for line in self.out.splitlines():
            cols = line.split()
            if len(cols) >= 9 and cols[0] in ENDPOINTS:
                rows[cols[0]] = [*cols[1:8], " ".join(cols[8:])]
        return rows


@dataclass
class SimSite:
    sim: Simulator
    root: str
    tmp: Path

    def tenant(self, **overrides: Any) -> dict[str, Any]:
        """A `tenants[]` entry for this simulator (secrets as plain strings, as in YAML)."""
        data = tenant_settings(self.sim, self.root)
        creds = dict(data["credentials"])
        secret = creds["client_secret"]
        creds["client_secret"] = (
            secret.get_secret_value() if isinstance(secret, SecretStr) else secret
        )
        data["credentials"] = creds
        data.update(overrides)
        return data

    def config(self, *tenants: dict[str, Any], name: str = "config.yaml") -> Path:
        path = self.tmp / name
        doc = {"tenants": list(tenants) or [self.tenant()]}
        path.write_text(yaml.safe_dump(doc), encoding="utf-8")
        return path

    async def doctor(
        self, config: Path, *, tenant: str | None = None, record: Path | None = None
    ) -> Doctored:
        """Run `doctor_command` in a worker thread (it runs its own event loop) while this
        loop keeps serving the simulator."""
        args = argparse.Namespace(
            config=str(config),
            tenant=tenant,
            record=str(record) if record else None,
            log_level="info",
        )
        out, err = io.StringIO(), io.StringIO()

        def run() -> int:
            with contextlib.redirect_stderr(err):
                return doctor_command(args, out)

        code = await asyncio.to_thread(run)
        return Doctored(code, out.getvalue(), err.getvalue())


SiteFactory = Callable[[str], Awaitable[SimSite]]


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """`doctor_command` configures logging, as the command does: undo it for the next tests."""
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    access = logging.getLogger("aiohttp.access").level
    yield
    structlog.configure(**saved)
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(access)


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[SiteFactory]:
    """A factory: `await site("public")` serves a random-mode simulator of that profile."""
    servers: list[TestServer] = []

    async def start(profile: str) -> SimSite:
        clock = VirtualClock(T0)
        sim = Simulator.random(
            agents=AGENTS, groups=3, queues=3, clock=clock, seed=3, profile=profile
        )
        server = TestServer(create_app(sim), host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return SimSite(sim, str(server.make_url("")).rstrip("/"), tmp_path)

    yield start
    for server in servers:
        await server.close()
