"""`docker compose up --scale monitor=3`, checked statically: nothing in docker-compose.yml pins the
monitor to one container (a container_name, a hostname, a single host port, a volume it writes),
and Prometheus scrapes every replica rather than whichever one the service name resolves to."""

from __future__ import annotations

from typing import Any

import yaml

from monitor.app.config import load_config
from tests.deploy.compose import compose_services, scrape_targets, volumes
from tests.deploy.promql import ROOT

SCALE = 3  # the replicas the docs show
MONITOR = compose_services()["monitor"]


def host_ports(spec: str) -> tuple[str | None, int]:
    """(host side, container port) of a short-syntax `ports:` entry (no host side: None)."""
    parts = str(spec).split(":")
    return (":".join(parts[:-1]) or None), int(parts[-1].split("/")[0])


def host_range(host: str) -> range:
    port = host.rsplit(":", 1)[-1] if host.count(":") else host  # an `ip:` prefix is allowed
    first, _, last = port.partition("-")
    return range(int(first), int(last or first) + 1)


def test_the_monitor_has_no_fixed_container_name_or_hostname() -> None:
    assert "container_name" not in MONITOR
    assert "hostname" not in MONITOR
    assert "deploy" not in MONITOR or "replicas" not in MONITOR["deploy"]


def test_every_published_monitor_port_leaves_room_for_the_replicas() -> None:
    """A single host port fails the second replica ("port is already allocated"); a range of at
    least SCALE ports starting at the documented 8912 does not."""
    specs = [host_ports(p) for p in MONITOR.get("ports", [])]
    assert specs, "the monitor publishes its port for /metrics and /api/v1"
    for host, container in specs:
        assert container == 8912
        if host is not None:
            ports = host_range(host)
            assert len(ports) >= SCALE, f"host side {host!r} fits fewer than {SCALE} replicas"
            assert ports[0] == 8912  # one replica alone keeps the documented address


def test_the_check_above_refuses_a_single_host_port() -> None:
    assert len(host_range(host_ports("8912:8912")[0] or "")) == 1
    assert len(host_range(host_ports("127.0.0.1:8912-8914:8912")[0] or "")) == 3


def test_the_monitor_only_reads_its_mounts() -> None:
    """Replicas share nothing on disk: every volume is a read-only bind mount (state is Redis)."""
    for source, target, bind in volumes(MONITOR):
        assert bind, f"named volume {source} at {target} would be shared by the replicas"
    for spec in MONITOR.get("volumes", []):
        assert str(spec).endswith(":ro"), spec


def test_prometheus_scrapes_every_replica_by_dns() -> None:
    prom = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text(encoding="utf-8"))
    job: dict[str, Any] = next(
        j for j in prom["scrape_configs"] if j["job_name"] == "puzzel-monitor"
    )
    assert "static_configs" not in job  # a static name is one replica at a time
    (sd,) = job["dns_sd_configs"]
    assert sd["type"] == "A"  # one address per container of the service
    config = load_config(
        ROOT / "deploy" / "monitor.compose.yaml",
        environ={"PUZZEL_MONITOR_API__TOKEN_FILE": str(ROOT / "deploy" / "secrets" / "api_token")},
    )
    assert scrape_targets(job) == [f"monitor:{config.exporter.port}"]


def test_the_replicas_share_the_tenants() -> None:
    """Scaled replicas split the tenants through leases (each id defaults to the container's host
    name and pid), rather than each polling every tenant."""
    config = load_config(
        ROOT / "deploy" / "monitor.compose.yaml",
        environ={"PUZZEL_MONITOR_API__TOKEN_FILE": str(ROOT / "deploy" / "secrets" / "api_token")},
    )
    assert config.replicas.enabled
    assert config.replicas.id is None
    assert "PUZZEL_MONITOR_REPLICAS__ID" not in str(MONITOR.get("environment", ""))
