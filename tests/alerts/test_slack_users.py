"""The Puzzel→Slack user mapping: file formats, every problem named by line and field, atomic
writes, and the API under /api/v1 behind the same bearer token as the schedule API."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from monitor.alerts.slack_users import SlackUsersError, SlackUserStore, parse_slack_users
from monitor.alerts.slack_users_api import slack_user_routes
from monitor.http.auth import bearer_middleware

CSV = """puzzel_user_id,slack_user_id,email
1001,U0ANNA,
1002,,Bo@Example.com

1003,W0KARI,kari@example.com
"""
YAML = """# who gets their own alerts in Slack
agents:
  1001: U0ANNA
  "1002": bo@example.com
"""


def test_csv_yaml_and_json_read_the_same_mapping() -> None:
    csv = parse_slack_users(CSV, fmt="csv", source="agents.csv")
    assert csv == {"1001": "U0ANNA", "1002": "bo@example.com", "1003": "W0KARI"}
    yaml = parse_slack_users(YAML, fmt="yaml", source="agents.yaml")
    json = parse_slack_users(
        b'{"agents": {"1001": "U0ANNA", "1002": "bo@example.com"}}', fmt="yaml", source="x.json"
    )
    assert yaml == json == {"1001": "U0ANNA", "1002": "bo@example.com"}
    alone = parse_slack_users("puzzel_user_id,slack\n7,bo@example.com\n", fmt="csv", source="s")
    assert alone == {"7": "bo@example.com"}


@pytest.mark.parametrize(
    ("fmt", "text", "expected"),
    [
        (
            "csv",
            "puzzel_user_id,slack_user_id\n1001,U0ANNA\n1002,bob\n,U0X\n1001,U0OTHER\n1004,\n",
            [
                "agents.csv: line 3: slack: expected a Slack user id like U0123ABCD or an e-mail "
                "address, got 'bob'",
                "agents.csv: line 4: puzzel_user_id: expected a Puzzel user id without spaces, "
                "got ''",
                "agents.csv: line 5: Puzzel user 1001 is mapped twice (first at line 2)",
                "agents.csv: line 6: slack: expected a Slack user id (U…) or an e-mail address, "
                "got ''",
            ],
        ),
        (
            "csv",
            "user,who\n1,U0A\n",
            [
                "agents.csv: line 1: expected a header with puzzel_user_id and slack_user_id or "
                "email, got 'user,who'"
            ],
        ),
        (
            "yaml",
            "agents:\n  1001: U0ANNA\n  1002: [U0BO]\n  1003: not-an-id\n",
            [
                "agents.csv: line 3: slack: expected a Slack user id (U…) or an e-mail address, "
                "got a list",
                "agents.csv: line 4: slack: expected a Slack user id like U0123ABCD or an e-mail "
                "address, got 'not-an-id'",
            ],
        ),
        ("yaml", "agents: [1, 2]\n", ["agents.csv: expected a mapping of Puzzel user id to"]),
        ("yaml", "agents:\n  1001: U0A\n   bad: [\n", ["agents.csv: line 3: not YAML/JSON"]),
    ],
)
def test_every_problem_is_named_by_file_line_and_field(
    fmt: Any, text: str, expected: list[str]
) -> None:
    with pytest.raises(SlackUsersError) as err:
        parse_slack_users(text, fmt=fmt, source="agents.csv")
    got = [str(i) for i in err.value.issues]
    assert len(got) == len(expected)
    assert all(g.startswith(e) for g, e in zip(got, expected, strict=True)), got


async def test_apply_merges_or_replaces_in_one_transaction(redis_client: aioredis.Redis) -> None:
    store = SlackUserStore(redis_client)
    first = await store.apply("12345", {"1001": "U0ANNA", "1002": "U0BO"}, replace=False)
    assert first.as_dict() == {"added": 2, "changed": 0, "removed": 0, "total": 2}
    merged = await store.apply("12345", {"1002": "bo@example.com", "1003": "U0C"}, replace=False)
    assert merged.as_dict() == {"added": 1, "changed": 1, "removed": 0, "total": 3}
    replaced = await store.apply("12345", {"1003": "U0C"}, replace=True)
    assert replaced.as_dict() == {"added": 0, "changed": 0, "removed": 2, "total": 1}
    assert await store.all("12345") == {"1003": "U0C"}
    assert await store.all("other") == {}
    assert await redis_client.exists("pzm:12345:slack-users")


API_TOKEN = "api-s3cret"


async def client_for(redis: aioredis.Redis) -> TestClient[Any, Any]:
    app = web.Application(middlewares=[bearer_middleware(SecretStr(API_TOKEN))])
    app.add_routes(slack_user_routes(SlackUserStore(redis), tenants=["12345"]))
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    return client


async def test_the_api_validates_then_writes_lists_and_unmaps(redis_client: aioredis.Redis) -> None:
    client = await client_for(redis_client)
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    url = "/api/v1/tenants/12345/slack-users"
    try:
        denied = await client.put(url, data=CSV, headers={"Content-Type": "text/csv"})
        assert denied.status == 401  # the schedule API's token, the same middleware
        bad = await client.put(
            url,
            data="puzzel_user_id,slack\n1,nobody\n",
            headers={**auth, "Content-Type": "text/csv"},
        )
        assert bad.status == 400
        issues = (await bad.json())["issues"]
        assert issues[0]["where"] == "line 2: slack"
        assert await SlackUserStore(redis_client).all("12345") == {}  # nothing written
        dry = await client.put(
            f"{url}?dry_run=1", data=CSV, headers={**auth, "Content-Type": "text/csv"}
        )
        assert await dry.json() == {"tenant": "12345", "dry_run": True, "valid": 3}
        assert await SlackUserStore(redis_client).all("12345") == {}
        put = await client.put(url, data=CSV, headers={**auth, "Content-Type": "text/csv"})
        assert (await put.json())["added"] == 3
        await SlackUserStore(redis_client).cache_email("bo@example.com", None, 60)
        listed = await (await client.get(url, headers=auth)).json()
        assert listed["count"] == 3
        assert listed["unresolvable"] == 1
        assert listed["agents"][1] == {
            "puzzel_user_id": "1002",
            "email": "bo@example.com",
            "resolved": "",
        }
        replaced = await client.put(
            f"{url}?replace=1",
            json={"agents": {"1001": "U0ANNA"}},
            headers=auth,
        )
        assert (await replaced.json())["removed"] == 2
        gone = await client.delete(f"{url}/1001", headers=auth)
        assert (await gone.json())["removed"] is True
        again = await client.delete(f"{url}/1001", headers=auth)
        assert again.status == 404
        other = await client.get("/api/v1/tenants/999/slack-users", headers=auth)
        assert other.status == 404
        ics = await client.put(url, data="x", headers={**auth, "Content-Type": "text/calendar"})
        assert ics.status == 415
    finally:
        await client.close()
