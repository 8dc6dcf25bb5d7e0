"""docker-compose.yml, the Dockerfile and deploy/monitor.compose.yaml, checked statically: files
exist, images are pinned, and every host name, port and path agrees across the files."""

from __future__ import annotations

import re
import shlex
import tomllib
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.deploy.compose import (
    bind_mounts,
    compose,
    compose_services,
    scrape_targets,
    volumes,
)
from tests.deploy.dashboards import DATASOURCE_FILE, PROVIDER_FILE, dashboard_files
from tests.deploy.promql import ROOT

SERVICES = compose_services()
DOCKERFILE = ROOT / "Dockerfile"
MONITOR_CONFIG = ROOT / "deploy" / "monitor.compose.yaml"
EXPECTED = {"redis", "monitor", "simulator", "schedules", "prometheus", "alertmanager", "grafana"}
API_TOKEN_FILE = ROOT / "deploy" / "secrets" / "api_token"


def _published(service: dict[str, Any]) -> set[int]:
    """Container ports a service publishes or exposes."""
    ports = {int(str(p).rsplit(":", 1)[-1].split("/")[0]) for p in service.get("ports", [])}
    return ports | {int(p) for p in service.get("expose", [])}


def _command(service: dict[str, Any]) -> list[str]:
    cmd = service["command"]
    return cmd.split() if isinstance(cmd, str) else [str(c) for c in cmd]


def _flag(args: list[str], name: str) -> str:
    for i, arg in enumerate(args):
        if arg == name:
            return args[i + 1]
        if arg.startswith(f"{name}="):
            return arg.split("=", 1)[1]
    raise AssertionError(f"{name} not in {args}")


def _monitor_config_yaml() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(MONITOR_CONFIG.read_text(encoding="utf-8"))
    return doc


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname, url
    assert parts.port, url
    return parts.hostname, parts.port


def test_compose_defines_the_whole_stack() -> None:
    """The stack is redis, monitor, simulator, prometheus, alertmanager and grafana."""
    assert set(SERVICES) == EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_images_are_pinned(name: str) -> None:
    """Every image has an explicit tag that is not `latest`."""
    image = SERVICES[name]["image"]
    m = re.fullmatch(r"[\w./-]+:([\w.-]+)", image)
    assert m, f"{name}: image {image!r} has no tag"
    assert m.group(1) != "latest"


def test_the_monitor_image_is_built_here_and_tagged_with_the_package_version() -> None:
    """monitor, simulator and schedules build this repository's Dockerfile, tagged with
    pyproject's version."""
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for name in ("monitor", "simulator", "schedules"):
        assert SERVICES[name]["build"] == "."
        assert SERVICES[name]["image"] == f"puzzel-monitor:{version}"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_bind_mounted_host_path_exists(name: str) -> None:
    """Each host file or directory a service mounts is in the repository, mounted read-only."""
    for source, target, bind in volumes(SERVICES[name]):
        if bind:
            assert (ROOT / source).exists(), f"{name}: {source} does not exist"
            assert any(
                str(v).endswith(":ro")
                for v in SERVICES[name]["volumes"]
                if str(v).startswith(source)
            )
        assert target.startswith("/")


def test_named_volumes_are_declared_and_used() -> None:
    """Named volumes used by services are exactly those declared at the top level."""
    used = {src for s in SERVICES.values() for src, _, bind in volumes(s) if not bind}
    assert used == set(compose()["volumes"])
    assert {"redis-data", "prometheus-data", "grafana-data"} <= used


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_service_has_a_healthcheck(name: str) -> None:
    """Every service declares a healthcheck command."""
    test = SERVICES[name]["healthcheck"]["test"]
    assert test[0] in ("CMD", "CMD-SHELL")
    assert len(test) > 1


@pytest.mark.parametrize(
    ("name", "probe"),
    [
        ("redis", "ping"),
        ("monitor", "/healthz"),
        ("prometheus", "/-/healthy"),
        ("alertmanager", "/-/healthy"),
        ("grafana", "/api/health"),
    ],
)
def test_healthchecks_probe_the_right_endpoint(name: str, probe: str) -> None:
    """Each healthcheck asks the service's own health endpoint on its own port."""
    text = " ".join(SERVICES[name]["healthcheck"]["test"])
    assert probe in text
    ports = _published(SERVICES[name]) or {6379}
    assert name == "redis" or any(f":{p}" in text for p in ports)


def test_published_ports() -> None:
    """monitor 8912, prometheus 9090, alertmanager 9093 and grafana 3000 are published."""
    assert _published(SERVICES["monitor"]) == {8912}
    assert _published(SERVICES["prometheus"]) == {9090}
    assert _published(SERVICES["alertmanager"]) == {9093}
    assert _published(SERVICES["grafana"]) == {3000}


def test_redis_is_pinned_persistent_and_awaited() -> None:
    """Redis keeps its data in a named volume and the monitor waits until it is healthy."""
    assert any(t == "/data" and not bind for _, t, bind in volumes(SERVICES["redis"]))
    assert SERVICES["monitor"]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_monitor_runs_the_mounted_config_and_rules() -> None:
    """The monitor runs `puzzel-monitor run -c` on the mounted deploy/monitor.compose.yaml and
    the config's rules_path is where rules/ is mounted."""
    args = _command(SERVICES["monitor"])
    assert args[:2] == ["puzzel-monitor", "run"]
    mounts = bind_mounts(SERVICES["monitor"])
    assert mounts[_flag(args, "-c")] == MONITOR_CONFIG
    assert mounts[_monitor_config_yaml()["rules_path"]] == ROOT / "rules"


def test_simulator_is_a_demo_profile_service_on_the_configured_port() -> None:
    """The simulator runs in the `demo` profile, listens on all interfaces, on the port the
    monitor's config points at, with 200 agents in 5 groups."""
    sim = SERVICES["simulator"]
    assert sim["profiles"] == ["demo"]
    args = _command(sim)
    assert args[:2] == ["puzzel-monitor", "simulate"]
    assert _flag(args, "--host") == "0.0.0.0"
    assert (_flag(args, "--agents"), _flag(args, "--groups")) == ("200", "5")
    port = int(_flag(args, "--port"))
    assert port in _published(sim)
    # optional dependency: without the demo profile the monitor still starts
    assert SERVICES["monitor"]["depends_on"]["simulator"]["required"] is False
    from monitor.cli import build_parser

    parsed = build_parser().parse_args(args[1:])
    assert parsed.port == port


def test_monitor_config_points_at_the_compose_services() -> None:
    """deploy/monitor.compose.yaml talks to the simulator, redis and alertmanager services on the
    ports they listen on, and exports on the port Prometheus scrapes."""
    conf = _monitor_config_yaml()
    sim_port = int(_flag(_command(SERVICES["simulator"]), "--port"))
    (tenant,) = conf["tenants"]
    assert tenant["api_base_url"] == f"http://simulator:{sim_port}/ContactCentre5"
    assert tenant["auth_base_url"] == f"http://simulator:{sim_port}/auth"
    assert tenant["id_base_url"] == f"http://simulator:{sim_port}"
    assert conf["redis"]["url"] == "redis://redis:6379/0"
    assert conf["exporter"]["port"] in _published(SERVICES["monitor"])
    am = conf["alerting"]["sinks"]["alertmanager"]["url"]
    host, port = _host_port(am)
    assert host in SERVICES
    assert port in _published(SERVICES[host])
    prom = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    job = next(j for j in prom["scrape_configs"] if j["job_name"] == "puzzel-monitor")
    assert scrape_targets(job) == [f"monitor:{conf['exporter']['port']}"]


def test_monitor_config_loads_with_the_real_loader() -> None:
    """monitor.app.config.load_config accepts deploy/monitor.compose.yaml unchanged."""
    config_module = pytest.importorskip(
        "monitor.app.config", reason="monitor.app.config not written yet"
    )
    # the token file is where Compose mounts the secret; here it is the repository's file
    env = {"PUZZEL_MONITOR_API__TOKEN_FILE": str(API_TOKEN_FILE)}
    config = config_module.load_config(MONITOR_CONFIG, environ=env)
    (tenant,) = config.tenants
    assert tenant.api_base_url.startswith("http://simulator:")
    assert config.redis.url == "redis://redis:6379/0"
    assert config.exporter.port == 8912
    assert config.api.token is not None
    assert config.api.token.get_secret_value() == API_TOKEN_FILE.read_text().strip()


def test_the_api_token_is_a_compose_secret_file() -> None:
    """The config reads api.token from the file where Compose mounts the `api_token` secret,
    which the monitor and the schedules service get and which exists in the repository."""
    token_file = _monitor_config_yaml()["api"]["token_file"]
    assert token_file == "/run/secrets/api_token"
    secret = compose()["secrets"]["api_token"]
    assert (ROOT / secret["file"]).resolve() == API_TOKEN_FILE
    assert len(API_TOKEN_FILE.read_text().strip()) >= 32
    for name in ("monitor", "schedules"):
        assert "api_token" in SERVICES[name]["secrets"], name


def _shell_invocations(service: dict[str, Any]) -> list[list[str]]:
    """The `puzzel-monitor ...` commands in a service's `sh -c` script."""
    assert service["entrypoint"] == ["sh", "-c"]
    (script,) = service["command"]
    steps = re.split(r"&&|;|\b(?:do|done|if|then|else|fi)\b", script)
    return [shlex.split(s) for s in steps if s.strip().startswith("puzzel-monitor")]


def test_the_schedules_service_imports_the_simulators_schedules() -> None:
    """In the demo profile the `schedules` service writes the schedules of the simulator's
    centre (same agents, groups, seed and time zone) and imports that file into the configured
    tenant through the mounted configuration, after Redis is healthy."""
    from monitor.cli import build_parser

    svc = SERVICES["schedules"]
    assert svc["profiles"] == ["demo"]
    assert svc["depends_on"]["redis"]["condition"] == "service_healthy"
    publish, load = (build_parser().parse_args(a[1:]) for a in _shell_invocations(svc))
    served = build_parser().parse_args(_command(SERVICES["simulator"])[1:])
    assert publish.command == "simulate"
    assert publish.schedules_out
    assert publish.scenario is None
    for arg in ("agents", "groups", "seed", "timezone"):
        assert getattr(publish, arg) == getattr(served, arg), arg
    assert (load.command, load.schedules_command) == ("schedules", "import")
    assert load.file == publish.schedules_out
    assert load.dry_run is False
    (tenant,) = _monitor_config_yaml()["tenants"]
    assert load.tenant == str(tenant["id"])
    assert tenant["timezone"] == publish.timezone
    mounts = bind_mounts(svc)
    assert mounts[load.config] == MONITOR_CONFIG
    assert mounts[_monitor_config_yaml()["rules_path"]] == ROOT / "rules"


def test_monitor_config_uses_the_simulators_credentials() -> None:
    """The compose config logs in with the simulator's throw-away credentials and customer key."""
    auth = pytest.importorskip("monitor.simulator.auth", reason="simulator not written yet")
    sim = auth.Credentials()
    (tenant,) = _monitor_config_yaml()["tenants"]
    assert str(tenant["id"]) == sim.customer_key
    creds = tenant["credentials"]
    assert creds["method"] == "puzzel_id"
    assert creds["client_id"] == sim.client_id
    assert creds["client_secret"] == sim.client_secret.get_secret_value()
    assert str(creds["user_id"]) == str(sim.user_id)


def test_prometheus_and_alertmanager_targets_are_compose_services() -> None:
    """Every static target in deploy/prometheus.yml is a compose service on a port it publishes
    (or Prometheus itself)."""
    prom = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    targets = [t for j in prom["scrape_configs"] for t in scrape_targets(j)]
    targets += [
        t
        for a in prom["alerting"]["alertmanagers"]
        for sc in a["static_configs"]
        for t in sc["targets"]
    ]
    for target in targets:
        host, port = target.rsplit(":", 1)
        if host == "localhost":
            assert int(port) in _published(SERVICES["prometheus"])
            continue
        assert host in SERVICES, target
        assert int(port) in _published(SERVICES[host]), target


def test_prometheus_and_alertmanager_read_their_mounted_configs() -> None:
    """--config.file of prometheus and alertmanager is where compose mounts deploy/*.yml, and the
    rules directory is mounted next to prometheus.yml where its rule_files glob looks."""
    prom = SERVICES["prometheus"]
    mounts = bind_mounts(prom)
    config_path = _flag(_command(prom), "--config.file")
    assert mounts[config_path] == ROOT / "deploy" / "prometheus.yml"
    rule_globs = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())["rule_files"]
    config_dir = config_path.rsplit("/", 1)[0]
    for pattern in rule_globs:
        directory = f"{config_dir}/{pattern.rsplit('/', 1)[0]}"
        assert mounts[directory] == ROOT / "rules" / "prometheus"
    am = SERVICES["alertmanager"]
    assert (
        bind_mounts(am)[_flag(_command(am), "--config.file")]
        == ROOT / "deploy" / "alertmanager.yml"
    )


def test_grafana_mounts_provisioning_and_dashboards_where_the_provider_looks() -> None:
    """Grafana gets grafana/provisioning at /etc/grafana/provisioning and grafana/dashboards at the
    provider's path; its data source URL is the prometheus service's port."""
    mounts = bind_mounts(SERVICES["grafana"])
    assert mounts["/etc/grafana/provisioning"] == ROOT / "grafana" / "provisioning"
    provider = yaml.safe_load(PROVIDER_FILE.read_text())["providers"][0]
    assert mounts[provider["options"]["path"]] == ROOT / "grafana" / "dashboards"
    ds = yaml.safe_load(DATASOURCE_FILE.read_text())["datasources"][0]
    host, port = _host_port(ds["url"])
    assert host == "prometheus"
    assert port in _published(SERVICES["prometheus"])
    home = SERVICES["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.rsplit("/", 1)[1] in {p.name for p in dashboard_files()}


# --- Dockerfile ---------------------------------------------------------------------------------


def _dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            instruction, _, rest = line.partition(" ")
            out.append((instruction.upper(), rest.strip()))
    return out


def test_dockerfile_base_image_is_a_pinned_python_311_slim() -> None:
    """The image builds FROM a python:3.11.x slim tag."""
    froms = [args for ins, args in _dockerfile() if ins == "FROM"]
    assert len(froms) == 1
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", froms[0])


def test_dockerfile_installs_the_package_and_runs_as_a_non_root_user() -> None:
    """pip installs the project, the last USER is not root, 8912 is exposed, a HEALTHCHECK set."""
    steps = _dockerfile()
    assert any(ins == "RUN" and "pip install ." in args for ins, args in steps)
    users = [args for ins, args in steps if ins == "USER"]
    assert users
    assert users[-1].split(":")[0] not in ("root", "0")
    assert ("EXPOSE", "8912") in steps
    health = [args for ins, args in steps if ins == "HEALTHCHECK"]
    assert len(health) == 1
    assert "/healthz" in health[0]
    assert ":8912" in health[0]
    cmd = next(args for ins, args in reversed(steps) if ins == "CMD")
    assert "puzzel-monitor" in cmd


def test_dockerfile_copies_only_what_exists_and_dockerignore_lets_through() -> None:
    """Every COPY source exists in the repository and is not excluded by .dockerignore."""
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    ignore = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert ignore[0] == "*", "the .dockerignore is an allow-list"
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for ins, args in _dockerfile():
        if ins == "COPY":
            *sources, _dest = args.split()
            for source in sources:
                assert (ROOT / source).exists(), f"COPY source {source} is missing"
                assert source.rstrip("/") in allowed, f"COPY source {source} is dockerignored"
    # what pip needs to build the package must be let through
    readme = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["readme"]
    assert {"pyproject.toml", "monitor", readme} <= allowed
