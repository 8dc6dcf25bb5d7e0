"""Secrets stay out of messages: a configuration error about a secret names the key and the
type it got, not the value; the schedules command never shows a password from a Redis URL."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.app.config import ConfigError, load_config
from monitor.app.schedules_cli import redact_url

TENANT = """tenants:
  - id: "12345"
    credentials: {method: password, user_name: u, password: pw}
"""


@pytest.mark.parametrize(
    ("extra", "key", "secret"),
    [
        ("api:\n  token: 98765432\n", "api.token", "98765432"),
        ("api:\n  token: [s3cr3t-v4lue]\n", "api.token", "s3cr3t-v4lue"),
    ],
)
def test_a_secret_of_the_wrong_type_is_not_echoed(
    tmp_path: Path, extra: str, key: str, secret: str
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(TENANT + extra)
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    message = str(err.value)
    assert key in message
    assert secret not in message
    assert "not shown" in message


def test_a_non_secret_value_is_still_echoed(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(TENANT.replace('id: "12345"', 'id: "12345"\n    timezone: Mars/Base'))
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    assert "Mars/Base" in str(err.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:hunter22@redis.internal:6379/0", "redis://:***@redis.internal:6379/0"),
        ("redis://app:hunter22@10.0.0.5/2", "redis://app:***@10.0.0.5/2"),
        ("redis://redis.internal:6379/0", "redis://redis.internal:6379/0"),
    ],
)
def test_redis_url_password_is_redacted(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_schedules_import_does_not_print_the_redis_password(tmp_path: Path) -> None:
    """`schedules import` against an unreachable Redis names it without the password."""
    import os
    import subprocess
    import sys

    from tests.redis_server import free_port
    from tests.schedules.conftest import DATA

    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUZZEL_MONITOR_")}
    url = f"redis://:hunter22-secret@127.0.0.1:{free_port()}/0"  # nothing listens there
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "schedules", "import", str(DATA / "night.csv"),
         "--timezone", "Europe/Oslo", "--tenant", "t1", "--redis-url", url],
        cwd=root, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 3
    assert "127.0.0.1" in done.stderr
    assert "hunter22-secret" not in done.stdout + done.stderr
