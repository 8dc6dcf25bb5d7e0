"""`puzzel-monitor schedules import|show` against the private redis-server, as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import redis.asyncio as aioredis

from tests.redis_server import RedisServer
from tests.schedules.conftest import DATA, dump_all

ROOT = Path(__file__).resolve().parents[2]


def cli(server: RedisServer | None, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the command; with a server, its URL comes from $PUZZEL_MONITOR_REDIS_URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUZZEL_MONITOR_")}
    if server is not None:
        env["PUZZEL_MONITOR_REDIS_URL"] = server.url
    return subprocess.run(
        [sys.executable, "-m", "monitor", "schedules", *args, "--tenant", "t1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_import_then_show_a_night_shift(
    redis_server: RedisServer, redis_client: aioredis.Redis
) -> None:
    """A good file imports (exit 0) and `show` prints local times on both dates."""
    done = cli(redis_server, "import", str(DATA / "night.csv"), "--timezone", "Europe/Oslo")
    assert done.returncode == 0, done.stderr
    assert "imported 3 segment(s) for 1 agent(s)" in done.stdout
    assert await redis_client.get("pzm:t1:sched:version") == b"1"
    show = cli(
        redis_server, "show", "--agent", "1003", "--date", "2026-03-03", "--timezone", "Europe/Oslo"
    )
    assert show.returncode == 0, show.stderr
    lines = show.stdout.splitlines()
    assert "2026-03-03" in lines[0]
    assert lines[2].split() == ["22:00", "(-1d)", "02:00", "phone", "4h00m"]
    assert lines[3].split() == ["02:00", "02:30", "break", "0h30m"]
    assert "scheduled 8h00m" in show.stdout
    monday = cli(
        redis_server, "show", "--agent", "1003", "--date", "2026-03-02", "--timezone", "Europe/Oslo"
    )
    assert monday.stdout.splitlines()[2].split() == ["22:00", "02:00", "(+1d)", "phone", "4h00m"]


async def test_bad_file_exits_2_and_writes_nothing(
    redis_server: RedisServer, redis_client: aioredis.Redis
) -> None:
    """A rejected file exits 2, names file and line on stderr, and leaves Redis as it was."""
    ok = cli(redis_server, "import", str(DATA / "week.csv"), "--timezone", "Europe/Oslo")
    assert ok.returncode == 0, ok.stderr
    before = await dump_all(redis_client)
    bad = cli(redis_server, "import", str(DATA / "bad_dst.csv"), "--timezone", "Europe/Oslo")
    assert bad.returncode == 2
    assert (
        f"{DATA / 'bad_dst.csv'}: line 2: start: 2026-03-29 02:30:00 does not exist" in bad.stderr
    )
    assert "nothing was imported" in bad.stderr
    assert await dump_all(redis_client) == before


async def test_dry_run_and_missing_time_zone(
    redis_server: RedisServer, redis_client: aioredis.Redis
) -> None:
    """--dry-run validates without writing; no time zone at all is a usage error (exit 2)."""
    dry = cli(
        redis_server, "import", str(DATA / "team.ics"), "--timezone", "Europe/Oslo", "--dry-run"
    )
    assert dry.returncode == 0, dry.stderr
    assert "valid: 5 segment(s)" in dry.stdout
    assert await redis_client.keys("*") == []
    nozone = cli(redis_server, "import", str(DATA / "week.csv"))
    assert nozone.returncode == 2
    assert "no time zone" in nozone.stderr


async def test_config_supplies_zone_and_redis(
    redis_server: RedisServer, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    """With -c the tenant's time zone and the Redis URL come from the configuration file."""
    config = tmp_path / "config.yaml"
    config.write_text(
        "tenants:\n"
        "  - customer_key: t1\n"
        "    timezone: America/New_York\n"
        "    credentials: {user_name: u, password: p}\n"
        f"redis: {{url: '{redis_server.url}'}}\n"
    )
    done = cli(None, "import", str(DATA / "week.csv"), "-c", str(config))
    assert done.returncode == 0, done.stderr
    # 08:00 New York (EST, UTC-5) on 2026-03-02 is 13:00 UTC
    first = await redis_client.zrange("pzm:t1:sched:seg:1001:2026-03-02", 0, 0, withscores=True)
    assert first[0][1] == 1772456400


async def test_rules_directory_supplies_the_known_activities(tmp_path: Path) -> None:
    """An activity defined in --rules is accepted; without those rules it is an error."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "activities.yaml").write_text("activities:\n  coaching: {allowed: [pause]}\n")
    sched = tmp_path / "c.csv"
    sched.write_text("agent,date,start,end,activity\n1,2026-03-02,08:00,09:00,coaching\n")
    args = ("import", str(sched), "--timezone", "Europe/Oslo", "--dry-run")
    with_rules = cli(None, *args, "--rules", str(rules))
    assert with_rules.returncode == 0, with_rules.stderr
    without = cli(None, *args)
    assert without.returncode == 2
    assert f"{sched}: line 2: unknown activity 'coaching'" in without.stderr


async def test_the_redis_url_variable_works_with_a_config(
    redis_server: RedisServer, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    """$PUZZEL_MONITOR_REDIS_URL with -c: the configuration loads and the variable wins over
    its redis.url (it used to fail with `redis_url: unknown key`)."""
    config = tmp_path / "config.yaml"
    config.write_text(
        "tenants:\n"
        "  - customer_key: t1\n"
        "    timezone: Europe/Oslo\n"
        "    credentials: {user_name: u, password: p}\n"
        "redis: {url: 'redis://127.0.0.1:1/0'}\n"
    )
    done = cli(redis_server, "import", str(DATA / "week.csv"), "-c", str(config))
    assert done.returncode == 0, done.stderr
    assert await redis_client.get("pzm:t1:sched:version") == b"1"


async def test_header_only_csv_exits_2_and_keeps_the_version(
    redis_server: RedisServer, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    """A header-only CSV exits 2 naming the file, and the schedule version is not bumped."""
    ok = cli(redis_server, "import", str(DATA / "week.csv"), "--timezone", "Europe/Oslo")
    assert ok.returncode == 0, ok.stderr
    empty = tmp_path / "empty.csv"
    empty.write_text("agent,start,end,activity\n")
    done = cli(redis_server, "import", str(empty), "--timezone", "Europe/Oslo")
    assert done.returncode == 2
    assert f"{empty}: line 1 (header only): no segments: nothing to import" in done.stderr
    assert await redis_client.get("pzm:t1:sched:version") == b"1"


async def test_dry_run_refuses_a_non_numeric_agent(tmp_path: Path) -> None:
    """--dry-run of a file with agent `abc` exits 2 with the usual message."""
    sched = tmp_path / "a.csv"
    sched.write_text("agent,date,start,end,activity\nabc,2026-03-02,08:00,09:00,phone\n")
    done = cli(None, "import", str(sched), "--timezone", "Europe/Oslo", "--dry-run")
    assert done.returncode == 2
    assert f"{sched}: line 2: agent: expected a Puzzel user id (digits only), got 'abc'" in (
        done.stderr
    )
