"""Configuration loading: the example, environment overrides, secrets, and error messages."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import structlog

from monitor.alerts.config import SlackSinkConfig
from monitor.app.config import (
    ConfigError,
    PasswordCredentialsConfig,
    PuzzelIdCredentialsConfig,
    iter_secrets,
    load_config,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config.example.yaml"

MINIMAL = """\
tenants:
  - id: 12345
    timezone: Europe/Oslo
    credentials:
      method: puzzel_id
      client_id: cid
      client_secret: top-secret-value
      user_id: 100001
"""


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def error_of(path: Path, environ: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path, environ=environ or {})
    return info.value


def test_example_config_loads() -> None:
    """The shipped config.example.yaml is valid and has the documented defaults."""
    config = load_config(EXAMPLE, environ={})
    tenant = config.tenants[0]
    assert tenant.customer_key == "12345"
    assert isinstance(tenant.credentials, PuzzelIdCredentialsConfig)
    assert tenant.cadences.enabled() == {
        "user_states": 5.0,
        "queues": 15.0,
        "agent_stats": 60.0,
        "queue_ticker": 60.0,
        "access_points": 60.0,
    }
    assert tenant.user_state_budget == 10
    assert (config.exporter.host, config.exporter.port) == ("0.0.0.0", 8912)
    assert config.exporter.per_agent_series is True
    assert config.api.token is None
    assert "console" in config.alerting.sinks


def test_minimal_config_gets_production_urls_and_defaults(tmp_path: Path) -> None:
    """Base URLs default to Puzzel production and lists default to 'all'."""
    config = load_config(write(tmp_path, MINIMAL), environ={})
    tenant = config.tenants[0]
    assert tenant.api_base_url == "https://api.puzzel.com/ContactCentre5"
    assert tenant.auth_base_url == "https://auth.puzzel.com"
    assert tenant.id_base_url == "https://app.puzzel.com"
    assert tenant.user_groups == "all"
    assert tenant.visual_queues == "all"
    assert config.redis.url.startswith("redis://")


def test_environment_overrides_nested_and_list_keys(tmp_path: Path) -> None:
    """PUZZEL_MONITOR_ variables override nested keys, list items included."""
    env = {
        "PUZZEL_MONITOR_EXPORTER__PORT": "9100",
        "PUZZEL_MONITOR_EXPORTER__PER_AGENT_SERIES": "false",
        "PUZZEL_MONITOR_TENANTS__0__CADENCES__USER_STATES": "10s",
        "PUZZEL_MONITOR_TENANTS__0__USER_GROUPS": "[Support, Sales]",
        "PUZZEL_MONITOR_TENANTS__0__CREDENTIALS__CLIENT_SECRET": "from-env-secret",
        "PUZZEL_MONITOR_API__TOKEN": "api-token-123",
        "UNRELATED": "x",
    }
    config = load_config(write(tmp_path, MINIMAL), environ=env)
    tenant = config.tenants[0]
    assert config.exporter.port == 9100
    assert config.exporter.per_agent_series is False
    assert tenant.cadences.user_states == 10.0
    assert tenant.user_groups == ["Support", "Sales"]
    assert isinstance(tenant.credentials, PuzzelIdCredentialsConfig)
    assert tenant.credentials.client_secret.get_secret_value() == "from-env-secret"
    assert config.api.token is not None
    assert config.api.token.get_secret_value() == "api-token-123"


def test_secret_files_and_secrets_dir(tmp_path: Path) -> None:
    """`x_file` keys and a secrets directory supply secrets, minus one trailing newline."""
    (tmp_path / "pw").write_text("file-password\n")
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "api__token").write_text("dir-token\n")
    path = write(
        tmp_path,
        f"""\
        tenants:
          - id: 1
            credentials:
              method: password
              user_name: api.monitor
              password_file: {tmp_path / "pw"}
        alerting:
          sinks:
            slack:
              type: slack
              webhook_url_file: {tmp_path / "hook"}
        """,
    )
    (tmp_path / "hook").write_text("https://hooks.example/T/B/c\n")
    config = load_config(path, environ={}, secrets_dir=secrets)
    creds = config.tenants[0].credentials
    assert isinstance(creds, PasswordCredentialsConfig)
    assert creds.password.get_secret_value() == "file-password"
    slack = config.alerting.sinks["slack"]
    assert isinstance(slack, SlackSinkConfig)
    assert slack.webhook_url.get_secret_value() == "https://hooks.example/T/B/c"
    assert config.api.token is not None
    assert config.api.token.get_secret_value() == "dir-token"


def test_missing_secret_file_names_the_key(tmp_path: Path) -> None:
    """An unreadable secret file is an error naming the `_file` key."""
    path = write(
        tmp_path,
        """\
        tenants:
          - id: 1
            credentials:
              user_name: u
              password_file: /nonexistent/pw
        """,
    )
    assert "tenants[0].credentials.password_file" in str(error_of(path))


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        (MINIMAL.replace("Europe/Oslo", "Mars/Base"), "tenants[0].timezone", "IANA time zone"),
        (MINIMAL.replace("      client_secret: top-secret-value\n", ""),
         "tenants[0].credentials.client_secret", "required"),
        (MINIMAL + "exporter:\n  port: lots\n", "exporter.port", "integer"),
        (MINIMAL + "exporter:\n  prot: 1\n", "exporter.prot", "unknown key"),
        (MINIMAL.replace("    timezone", "    cadences: {queues: soon}\n    timezone"),
         "tenants[0].cadences.queues", "duration"),
        (MINIMAL + "log:\n  format: xml\n", "log.format", "'auto', 'json' or 'console'"),
        ("tenants: []\n", "tenants", "at least 1"),
        (MINIMAL.replace("method: puzzel_id", "method: magic"),
         "tenants[0].credentials", "method: puzzel_id"),
    ],
)  # fmt: skip
def test_bad_values_name_the_key(tmp_path: Path, text: str, key: str, expected: str) -> None:
    """Each kind of mistake gives one line naming the key path and what was expected."""
    error = error_of(write(tmp_path, text))
    message = str(error)
    assert "\n" not in message
    assert f": {key}: " in message
    assert expected in message
    assert error.key == key


def test_error_points_at_the_line(tmp_path: Path) -> None:
    """An error in the file names the file and the line of the offending key."""
    error = error_of(write(tmp_path, MINIMAL.replace("Europe/Oslo", "Nowhere")))
    assert error.line == 3
    assert str(error).startswith(f"{tmp_path / 'config.yaml'}:3: tenants[0].timezone")


def test_error_from_environment_names_the_variable(tmp_path: Path) -> None:
    """A bad value from the environment is blamed on the variable, not a file line."""
    error = error_of(write(tmp_path, MINIMAL), {"PUZZEL_MONITOR_EXPORTER__PORT": "x"})
    assert "environment PUZZEL_MONITOR_EXPORTER__PORT: exporter.port" in str(error)


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    """Unparsable YAML and a missing file are ConfigErrors too."""
    assert "not valid YAML" in str(error_of(write(tmp_path, "tenants: [\n")))
    assert "cannot read" in str(error_of(tmp_path / "nope.yaml"))


def test_secrets_stay_out_of_repr_json_and_logs(tmp_path: Path) -> None:
    """Secrets never show in repr, model_dump_json, or log output."""
    from monitor.app.logging import configure_logging

    env = {
        "PUZZEL_MONITOR_API__TOKEN": "api-token-xyz",
        "PUZZEL_MONITOR_ALERTING__SINKS__SLACK__TYPE": "slack",
        "PUZZEL_MONITOR_ALERTING__SINKS__SLACK__WEBHOOK_URL": "https://hooks.example/T0/B0/xyz",
    }
    config = load_config(write(tmp_path, MINIMAL), environ=env)
    secrets = list(iter_secrets(config))
    assert secrets == ["top-secret-value", "api-token-xyz", "https://hooks.example/T0/B0/xyz"]
    stream = io.StringIO()
    configure_logging("debug", "json", stream=stream, secrets=secrets)
    try:
        log = structlog.get_logger("test")
        log.info("config loaded", config=repr(config), token=config.api.token)
        log.info("oops top-secret-value in a message", detail="url?token=api-token-xyz")
        logging.getLogger("stdlib").warning("stdlib says top-secret-value")
    finally:
        structlog.reset_defaults()
        configure_logging("info", "json", stream=io.StringIO())
    output = stream.getvalue()
    lines = [json.loads(line) for line in output.splitlines()]
    assert len(lines) == 3
    for text in (repr(config), config.model_dump_json(), str(config.model_dump()), output):
        for secret in secrets:
            assert secret not in text


def test_run_with_bad_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    """`puzzel-monitor run -c bad.yaml` exits 2 with one stderr line naming the key."""
    path = write(tmp_path, MINIMAL.replace("Europe/Oslo", "Mars/Base"), "bad.yaml")
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert proc.returncode == 2
    assert "tenants[0].timezone" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


ENDPOINTS_AT = "    timezone: Europe/Oslo\n"


@pytest.mark.parametrize(
    ("endpoints", "expected"),
    [
        ("{agentstats: true}", "unknown endpoint 'agentstats'"),
        ("{login: true}", "unknown endpoint 'login'"),
        ("{agent_stats: users/stats}", "a path starting with '/'"),
        ("{user: '/{customerKey}/people/{personId}'}", "unknown placeholder {personId}"),
    ],
)
def test_bad_endpoint_settings_name_the_key(tmp_path: Path, endpoints: str, expected: str) -> None:
    """An unknown endpoint, a path not starting with / or a placeholder the endpoint does not
    have is refused at load, naming tenants[0].endpoints."""
    text = MINIMAL.replace(ENDPOINTS_AT, f"{ENDPOINTS_AT}    endpoints: {endpoints}\n")
    message = str(error_of(write(tmp_path, text)))
    assert "tenants[0].endpoints" in message
    assert expected in message


def test_endpoint_settings_and_pause_types_load(tmp_path: Path) -> None:
    """`true`, `false`, a path, env text `on`, and pause type names by id."""
    text = MINIMAL.replace(
        ENDPOINTS_AT,
        ENDPOINTS_AT + "    endpoints: {pause_types: true, users: false,"
        " agent_stats: '/{customerKey}/stats/{tickerPeriodWindow}'}\n"
        "    pause_types: {4812: Lunch}\n",
    )
    env = {"PUZZEL_MONITOR_TENANTS__0__ENDPOINTS__ACCESS_POINT_TICKERS": "on"}
    (tenant,) = load_config(write(tmp_path, text), environ=env).tenants
    assert tenant.endpoints == {
        "pause_types": True,
        "users": False,
        "agent_stats": "/{customerKey}/stats/{tickerPeriodWindow}",
        "access_point_tickers": True,
    }
    assert tenant.pause_types == {"4812": "Lunch"}


def test_replicas_section_defaults_and_a_bad_replica_id(tmp_path: Path) -> None:
    """Replicas are off by default; an id that would break a lease value is refused by name."""
    config = load_config(write(tmp_path, MINIMAL), environ={})
    assert config.replicas.enabled is False
    assert config.replicas.id is None
    assert config.replicas.lease_ttl is None
    path = write(tmp_path, MINIMAL + "replicas:\n  enabled: true\n  id: 7\n  lease_ttl: 20s\n")
    config = load_config(path, environ={})
    assert (config.replicas.id, config.replicas.lease_ttl) == ("7", 20.0)
    error = error_of(path, environ={"PUZZEL_MONITOR_REPLICAS__ID": "host:1"})
    assert str(error) == (
        "environment PUZZEL_MONITOR_REPLICAS__ID: replicas.id: expected a name of 1-100 "
        "characters without ':' or spaces, got 'host:1'"
    )


def test_a_tenant_named_like_the_delivery_lease_is_refused_with_replicas(tmp_path: Path) -> None:
    text = MINIMAL.replace("id: 12345", "id: outbox") + "replicas: {enabled: true}\n"
    assert "'outbox'" in str(error_of(write(tmp_path, text)))
    assert load_config(write(tmp_path, MINIMAL.replace("id: 12345", "id: outbox")), environ={})
