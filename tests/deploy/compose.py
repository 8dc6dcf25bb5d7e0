"""docker-compose.yml as data for tests: services, bind mounts, a temp layout mirroring them."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.promql import ROOT

COMPOSE_FILE = ROOT / "docker-compose.yml"


def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return doc


def compose_services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = compose()["services"]
    return services


def volumes(service: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(source, container path, is a bind mount) for each volume of a service (short syntax)."""
    out = []
    for spec in service.get("volumes", []):
        source, target, *_ = str(spec).split(":")
        out.append((source, target, source.startswith((".", "/"))))
    return out


def bind_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host path, for the bind mounts of a service."""
    return {target: (ROOT / src).resolve() for src, target, bind in volumes(service) if bind}


def mount_layout(service: dict[str, Any], root: Path) -> None:
    """Copy a service's bind-mounted files and directories under `root` at their container paths."""
    for target, source in bind_mounts(service).items():
        dest = root / target.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, dest)
        else:
            shutil.copy(source, dest)


def scrape_targets(job: dict[str, Any]) -> list[str]:
    """`host:port` of a Prometheus job's static targets and DNS-discovered (A record) names."""
    targets = [t for sc in job.get("static_configs", []) for t in sc["targets"]]
    for sd in job.get("dns_sd_configs", []):
        assert sd.get("type", "SRV") == "A", "SRV records carry their own ports"
        targets += [f"{name}:{sd['port']}" for name in sd["names"]]
    return targets
