from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis

from monitor.schedules.store import ScheduleStore

DATA = Path(__file__).parent / "data"
OSLO = ZoneInfo("Europe/Oslo")


async def dump_all(client: aioredis.Redis) -> dict[bytes, tuple[bytes | None, int]]:
    """Every key with its serialized value and TTL: equal dumps mean an unchanged database."""
    out: dict[bytes, tuple[bytes | None, int]] = {}
    for key in await client.keys("*"):
        out[key] = (await client.dump(key), await client.ttl(key))
    return out


@pytest.fixture
def store(redis_client: aioredis.Redis) -> ScheduleStore:
    return ScheduleStore(redis_client)
