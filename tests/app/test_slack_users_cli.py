"""`puzzel-monitor slack-users import|show` against the private redis-server, in-process."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from monitor.cli import main
from tests.redis_server import RedisServer, free_port

CONFIG = """tenants:
  - id: "12345"
    credentials: {method: password, user_name: u, password: pw}
redis:
  url: REDIS
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["slack-users", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def config(tmp_path: Path, redis_server: RedisServer) -> str:
    if redis_server.proc is None:
        redis_server.start()
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.replace("REDIS", redis_server.url))
    redis.Redis.from_url(redis_server.url).flushall()
    return str(path)


def test_import_then_show(
    tmp_path: Path, config: str, redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    mapping = tmp_path / "agents.yaml"
    mapping.write_text("agents:\n  1001: U0ANNA\n  1002: Bo@Example.com\n")
    code, out, err = run(capsys, "import", str(mapping), "--tenant", "12345", "-c", config)
    assert code == 0, err
    assert out == (
        f"{mapping}: imported 2 agent(s), 1 by e-mail into tenant 12345: 2 added, "
        "0 changed, 0 removed; 2 mapped\n"
    )
    sync = redis.Redis.from_url(redis_server.url, decode_responses=True)
    assert sync.hgetall("pzm:12345:slack-users") == {"1001": "U0ANNA", "1002": "bo@example.com"}
    sync.set("pzm:slack-email:bo@example.com", "U0BO")
    code, out, _ = run(capsys, "show", "--tenant", "12345", "-c", config)
    assert code == 0
    assert out.splitlines() == [
        "tenant 12345: 2 agent(s) mapped",
        "  1001         U0ANNA",
        "  1002         bo@example.com  -> U0BO",
    ]


def test_a_bad_file_exits_2_naming_file_line_and_field_and_writes_nothing(
    tmp_path: Path, config: str, redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "agents.csv"
    bad.write_text("puzzel_user_id,email\n1001,anna@example.com\n1002,not an address\n")
    code, out, err = run(capsys, "import", str(bad), "--tenant", "12345", "-c", config)
    assert code == 2
    assert f"error: {bad}: line 3: slack: expected a Slack user id" in err
    assert "1 problem(s); nothing was imported" in err
    assert out == ""
    assert redis.Redis.from_url(redis_server.url).exists("pzm:12345:slack-users") == 0
    wrong = tmp_path / "agents.txt"
    wrong.write_text("x")
    assert run(capsys, "import", str(wrong), "--tenant", "12345", "-c", config)[0] == 2
    code, _, err = run(capsys, "import", str(bad), "--tenant", "999", "-c", config, "--dry-run")
    assert code == 2  # the file is checked first: still its problem that is reported
    assert "line 3" in err


def test_an_unknown_tenant_exits_2_and_an_unreachable_redis_exits_3(
    tmp_path: Path, config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "agents.csv"
    good.write_text("puzzel_user_id,slack_user_id\n1001,U0ANNA\n")
    code, _, err = run(capsys, "import", str(good), "--tenant", "999", "-c", config)
    assert code == 2
    assert "--tenant='999': not a configured tenant (configured: 12345)" in err
    dead = f"redis://127.0.0.1:{free_port()}/0"
    code, _, err = run(capsys, "import", str(good), "--tenant", "12345", "--redis-url", dead)
    assert code == 3
    assert "cannot reach Redis" in err
    code, out, _ = run(capsys, "import", str(good), "--tenant", "12345", "--dry-run")
    assert code == 0
    assert "valid: 1 agent(s), 0 by e-mail (dry run, nothing written)" in out
