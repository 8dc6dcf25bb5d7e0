"""`redis:` as one URL or as Redis Sentinel (`sentinels` + `service_name`): exactly one form, a
clear error otherwise, secrets from files, and the one client factory built from it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from monitor.app.config import DEFAULT_REDIS_URL, RedisConfig, iter_secrets, load_config
from monitor.app.redis_client import SentinelRedis, check_reach, describe_target, redis_client
from tests.app.test_config import MINIMAL, ROOT, error_of, write
from tests.redis_server import RedisServer, free_port

SENTINEL = (
    MINIMAL
    + """\
redis:
  sentinels: [10.0.0.1:26379, "sentinel-b:26380", "[::1]:26381", sentinel-c]
  service_name: pzm-primary
"""
)


def test_no_redis_section_is_the_local_default_url(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL), environ={})
    assert config.redis.url == DEFAULT_REDIS_URL
    assert config.redis.sentinels is None
    assert not config.redis.uses_sentinel


def test_sentinel_form_reads_addresses_with_and_without_ports(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, SENTINEL), environ={})
    assert config.redis.url is None
    assert config.redis.uses_sentinel
    assert config.redis.service_name == "pzm-primary"
    assert config.redis.sentinels == [
        ("10.0.0.1", 26379),
        ("sentinel-b", 26380),
        ("::1", 26381),
        ("sentinel-c", 26379),
    ]
    assert describe_target(config.redis) == (
        "sentinel",
        "pzm-primary via 10.0.0.1:26379, sentinel-b:26380, ::1:26381, sentinel-c:26379",
    )


def test_sentinels_from_one_environment_variable(tmp_path: Path) -> None:
    env = {
        "PUZZEL_MONITOR_REDIS__SENTINELS": "s1:26379,s2:26379",
        "PUZZEL_MONITOR_REDIS__SERVICE_NAME": "mymaster",
        "PUZZEL_MONITOR_REDIS__SENTINEL_PASSWORD": "0123",  # a secret is not read as YAML
    }
    config = load_config(write(tmp_path, MINIMAL), environ=env)
    assert config.redis.sentinels == [("s1", 26379), ("s2", 26379)]
    assert config.redis.service_name == "mymaster"
    assert config.redis.sentinel_password is not None
    assert config.redis.sentinel_password.get_secret_value() == "0123"


def test_url_and_sentinels_together_are_refused_with_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, SENTINEL.replace("redis:\n", "redis:\n  url: redis://r:6379/0\n"))
    error = error_of(path)
    text = str(error)
    assert text.startswith(f"{path}:")
    assert "redis:" in text
    assert "give either url or sentinels with service_name, not both" in text
    assert "got url and sentinels and service_name" in text


def test_a_url_variable_over_a_sentinel_file_is_refused(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, SENTINEL), {"PUZZEL_MONITOR_REDIS_URL": "redis://x:1/0"})
    assert "not both" in str(error)


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        ("  sentinels: [a:26379]\n", "service_name is missing"),
        ("  service_name: pzm\n", "sentinels is missing"),
        ("  sentinel_password: x\n", "sentinels is missing"),
        ("  sentinels: []\n  service_name: pzm\n", "at least one Sentinel address"),
        ("  sentinels: [a:notaport]\n  service_name: pzm\n", "got 'a:notaport'"),
        ("  sentinels: [a:70000]\n  service_name: pzm\n", "got 'a:70000'"),
        ("  url: redis://r/0\n  db: 2\n", "db is for the Sentinel form"),
    ],
)
def test_incomplete_or_bad_sentinel_settings_name_the_field(
    tmp_path: Path, block: str, expected: str
) -> None:
    text = str(error_of(write(tmp_path, MINIMAL + "redis:\n" + block)))
    assert expected in text
    assert "redis" in text


def test_sentinel_password_comes_from_a_file_and_stays_secret(tmp_path: Path) -> None:
    secret = tmp_path / "sentinel_password"
    secret.write_text("s3ntinel-pw\n")
    body = SENTINEL + f"  sentinel_password_file: {secret}\n  password: data-pw\n"
    config = load_config(write(tmp_path, body), environ={})
    assert config.redis.sentinel_password is not None
    assert config.redis.sentinel_password.get_secret_value() == "s3ntinel-pw"
    assert {"s3ntinel-pw", "data-pw"} <= set(iter_secrets(config))
    for shown in (repr(config), config.model_dump_json(), str(describe_target(config.redis))):
        assert "s3ntinel-pw" not in shown
        assert "data-pw" not in shown


def test_run_exits_2_on_both_forms(tmp_path: Path) -> None:
    path = write(tmp_path, SENTINEL.replace("redis:\n", "redis:\n  url: redis://r:6379/0\n"))
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "not both" in proc.stderr
    assert "Traceback" not in proc.stderr


async def test_the_factory_builds_a_sentinel_client_for_the_primary() -> None:
    config = RedisConfig.model_validate(
        {
            "sentinels": ["127.0.0.1:1", "127.0.0.1:2"],
            "service_name": "pzm",
            "password": "data-pw",
            "sentinel_password": "s-pw",
            "db": 3,
        }
    )
    client = redis_client(config)
    try:
        assert isinstance(client, SentinelRedis)
        assert client.sentinels is not None
        pool = client.connection_pool
        assert pool.connection_kwargs["password"] == "data-pw"
        assert pool.connection_kwargs["db"] == 3
        assert [
            s.connection_pool.connection_kwargs["port"] for s in client.sentinels.sentinels
        ] == [
            1,
            2,
        ]
        assert all(
            s.connection_pool.connection_kwargs["password"] == "s-pw"
            for s in client.sentinels.sentinels
        )
    finally:
        await client.aclose()


async def test_a_command_line_url_wins_over_the_sentinel_form() -> None:
    config = RedisConfig.model_validate({"sentinels": ["127.0.0.1:1"], "service_name": "pzm"})
    client = redis_client(config, url="redis://127.0.0.1:7/5")
    try:
        assert not isinstance(client, SentinelRedis)
        assert client.connection_pool.connection_kwargs["port"] == 7
    finally:
        await client.aclose()


async def test_reach_names_a_sentinel_form_that_does_not_answer() -> None:
    port = free_port()  # nothing listens there
    config = RedisConfig.model_validate({"sentinels": [f"127.0.0.1:{port}"], "service_name": "p"})
    reach = await check_reach(config)
    assert not reach.ok
    assert reach.form == "sentinel"
    assert "MasterNotFoundError" in reach.describe()
    assert f"p via 127.0.0.1:{port}: NOT reachable" in reach.describe()


async def test_reach_of_a_url(redis_client: aioredis.Redis, redis_server: RedisServer) -> None:
    url = f"redis://:pw-in-url@127.0.0.1:{redis_server.port}/0"
    reach = await check_reach(RedisConfig(url=url))
    # the test server has no password: a password it does not expect is an error in Redis 6+
    shown = reach.describe()
    assert "pw-in-url" not in shown
    assert shown.startswith(f"redis (url) redis://:***@127.0.0.1:{redis_server.port}/0: ")
    good = await check_reach(RedisConfig(url=redis_server.url))
    assert good.ok
    assert good.describe() == f"redis (url) {redis_server.url}: ok"


def test_run_exits_3_naming_the_sentinels_when_none_answers(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    body = MINIMAL + f"redis:\n  sentinels: ['127.0.0.1:{port}']\n  service_name: pzm\n"
    body += "exporter: {host: 127.0.0.1, port: 0}\n"
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "-c", str(write(tmp_path, body))],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert proc.returncode == 3, proc.stderr
    assert (
        f"cannot reach Redis at pzm via 127.0.0.1:{port}: MasterNotFoundError: No master found "
        "for 'pzm' (no Sentinel answered, or none monitors that service_name)"
    ) in proc.stdout + proc.stderr
    assert "ConnectionPool" not in proc.stdout + proc.stderr  # not redis-py's repr
