"""Configuration rough edges a new user hit (issue 15): one Redis URL variable for every command,
day and week durations, messages that blame the right place and say what was given, webhook URLs
refused at load."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from monitor.alerts.api import alert_routes
from monitor.alerts.outbox import Outbox
from monitor.alerts.snooze import SnoozeStore
from monitor.app.config import ConfigError, load_config
from monitor.core.clock import VirtualClock
from monitor.core.durations import parse_duration
from monitor.http.auth import bearer_middleware
from tests.alerts.helpers import T0

MINIMAL = """\
tenants:
  - id: 12345
    credentials:
      method: puzzel_id
      client_id: cid
      client_secret: top-secret-value
      user_id: 100001
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def error_of(path: Path, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, environ=environ or {})
    return str(info.value)


@pytest.mark.parametrize("name", ["PUZZEL_MONITOR_REDIS_URL", "PUZZEL_MONITOR_REDIS__URL"])
def test_either_redis_url_variable_sets_redis_url(tmp_path: Path, name: str) -> None:
    """$PUZZEL_MONITOR_REDIS_URL (the schedules command's spelling) is the configuration's
    redis.url too, like $PUZZEL_MONITOR_REDIS__URL."""
    config = load_config(write(tmp_path, MINIMAL), environ={name: "redis://cache:6380/2"})
    assert config.redis.url == "redis://cache:6380/2"


def test_two_different_redis_url_variables_are_refused(tmp_path: Path) -> None:
    """Both spellings with different values is an error naming both, not a silent pick."""
    message = error_of(
        write(tmp_path, MINIMAL),
        {"PUZZEL_MONITOR_REDIS_URL": "redis://a:1/0", "PUZZEL_MONITOR_REDIS__URL": "redis://b:1/0"},
    )
    assert "PUZZEL_MONITOR_REDIS_URL and PUZZEL_MONITOR_REDIS__URL" in message


def test_env_typo_in_a_top_level_key_is_blamed_on_the_variable(tmp_path: Path) -> None:
    """A misspelt top-level key from the environment names the variable, not line 1."""
    message = error_of(write(tmp_path, MINIMAL), {"PUZZEL_MONITOR_EXPORTR__PORT": "9000"})
    assert message.startswith("environment PUZZEL_MONITOR_EXPORTR__PORT: exportr: unknown key")
    assert ":1:" not in message


def test_user_states_cadence_cannot_be_turned_off(tmp_path: Path) -> None:
    """`user_states: off` says it cannot be turned off, rather than "got False"."""
    text = MINIMAL.replace("    credentials:", "    cadences: {user_states: off}\n    credentials:")
    message = error_of(write(tmp_path, text))
    assert "tenants[0].cadences.user_states: cannot be turned off" in message
    assert "False" not in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2d", timedelta(days=2)), ("1w", timedelta(weeks=1)), ("1d12h", timedelta(hours=36))],
)
def test_day_and_week_units(text: str, expected: timedelta) -> None:
    """Durations take `d` and `w` as well as `h`, `m`, `s` and `ms`."""
    assert parse_duration(text) == expected


def test_documented_idempotency_ttl_of_2d_loads(tmp_path: Path) -> None:
    """The documented default `alerting.idempotency_ttl: 2d` is accepted as written."""
    config = load_config(
        write(tmp_path, MINIMAL + "alerting:\n  idempotency_ttl: 2d\n"), environ={}
    )
    assert config.alerting.idempotency_ttl == timedelta(days=2)


@pytest.mark.parametrize(
    ("sink", "key"),
    [
        ("{type: webhook, url: 'hxxp://hooks.example/x?token=abc'}", "url"),
        ("{type: slack, webhook_url: 'hxxp://hooks.slack.example/T/B/abc'}", "webhook_url"),
        ("{type: alertmanager, url: 'alertmanager:9093'}", "url"),
    ],
)
def test_a_sink_url_that_is_not_http_is_refused_at_load(
    tmp_path: Path, sink: str, key: str
) -> None:
    """A sink URL without http(s):// fails validation with the line and key, and the rest of
    the URL (often a credential) is not echoed."""
    path = write(tmp_path, MINIMAL + f"alerting:\n  sinks:\n    hook: {sink}\n")
    message = error_of(path)
    assert f"config.yaml:10: alerting.sinks.hook.{key}: expected an http:// or https:// URL" in (
        message
    )
    assert "abc" not in message
    assert "hooks" not in message


async def test_a_snooze_of_2d_is_accepted(redis_client: aioredis.Redis) -> None:
    """POST .../snooze {"duration": "2d"} mutes the agent for two days (the limit is 30)."""
    clock = VirtualClock(T0)
    app = web.Application(middlewares=[bearer_middleware(SecretStr("s3cret"))])  # type: ignore[list-item]
    app.add_routes(
        alert_routes(Outbox(redis_client, sinks=["console"], clock=clock).store,
                     SnoozeStore(redis_client, clock=clock), clock=clock)
    )  # fmt: skip
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    try:
        resp = await client.post(
            "/api/v1/tenants/12345/agents/1002/snooze",
            headers={"Authorization": "Bearer s3cret"},
            json={"duration": "2d"},
        )
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["until"] == "2026-03-04T09:00:00.000Z"
    finally:
        await client.close()
