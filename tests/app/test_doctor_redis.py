"""`doctor` says which Redis form is configured and whether it answers; through Sentinel, which
primary the Sentinels named. Redis does not change doctor's exit code (that is about Puzzel)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.core.exits import EXIT_OK
from tests.app.conftest import SimSite, SiteFactory
from tests.faults.sentinel import SERVICE, SentinelCluster, sentinel_command
from tests.redis_server import RedisServer, free_port


def config(s: SimSite, redis: dict[str, Any]) -> Path:
    path = s.tmp / "config.yaml"
    path.write_text(yaml.safe_dump({"tenants": [s.tenant()], "redis": redis}), encoding="utf-8")
    return path


def redis_line(out: str) -> str:
    lines = [line for line in out.splitlines() if line.startswith("redis (")]
    assert len(lines) == 1, out
    return lines[0]


async def test_doctor_reports_a_reachable_url(site: SiteFactory, redis_server: RedisServer) -> None:
    s = await site("full")
    result = await s.doctor(config(s, {"url": redis_server.url}))
    assert redis_line(result.out) == f"redis (url) {redis_server.url}: ok"
    assert result.code == EXIT_OK


async def test_doctor_reports_an_unreachable_url_without_its_password(site: SiteFactory) -> None:
    s = await site("full")
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    result = await s.doctor(config(s, {"url": url}))
    line = redis_line(result.out)
    assert "NOT reachable: ConnectionError" in line
    assert "hunter2" not in result.out + result.err
    assert result.code == EXIT_OK  # Puzzel answered: Redis is reported, not judged


@pytest.mark.skipif(
    shutil.which("redis-server") is None or sentinel_command(Path("s.conf")) is None,
    reason="redis-server is not installed (make test installs redis-server and redis-sentinel)",
)
async def test_doctor_names_the_primary_sentinel_found(site: SiteFactory) -> None:
    cluster = SentinelCluster()
    await asyncio.to_thread(cluster.start)
    try:
        s = await site("full")
        redis = {"sentinels": cluster.sentinels, "service_name": SERVICE}
        result = await s.doctor(config(s, redis))
    finally:
        await asyncio.to_thread(cluster.cleanup)
    where = ", ".join(cluster.sentinels)
    assert redis_line(result.out) == (
        f"redis (sentinel) {SERVICE} via {where}: ok, primary 127.0.0.1:{cluster.primary_port}"
    )
