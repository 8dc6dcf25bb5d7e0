"""deploy/kubernetes/, checked offline: every manifest is valid against the Kubernetes schemas
(kubernetes-validate bundles them), and the manifests agree with the monitor and the image: the
probes ask real routes, the ports are the configured exporter port, the image and command are the
Dockerfile's, the configuration loads with the real loader, and every secret file it names is a
key of the mounted Secret."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer

from monitor.app.config import Config, load_config
from monitor.http.metrics import Exporter, build_http_app
from monitor.ingest.pollers import LatestSnapshots
from tests.deploy.promql import ROOT

kubernetes_validate = pytest.importorskip(
    "kubernetes_validate.utils", reason="kubernetes-validate is a dev extra: make deps installs it"
)

K8S = ROOT / "deploy" / "kubernetes"
# the oldest Kubernetes still commonly run, and the newest the bundled schemas know
VERSIONS = ["1.27.0", kubernetes_validate.latest_version()]
SECRETS_AT = "/run/secrets/puzzel-monitor"


def documents() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc is not None:
                out.append((path.name, doc))
    return out


def resources() -> list[tuple[str, dict[str, Any]]]:
    return [(name, d) for name, d in documents() if d["kind"] != "Kustomization"]


def one(kind: str) -> dict[str, Any]:
    found = [d for _, d in resources() if d["kind"] == kind]
    assert len(found) == 1, kind
    return found[0]


def container() -> dict[str, Any]:
    containers = one("Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    c: dict[str, Any] = containers[0]
    return c


def pod_spec() -> dict[str, Any]:
    spec: dict[str, Any] = one("Deployment")["spec"]["template"]["spec"]
    return spec


def mounts() -> dict[str, dict[str, Any]]:
    """mountPath -> the pod volume mounted there."""
    volumes = {v["name"]: v for v in pod_spec()["volumes"]}
    return {m["mountPath"]: volumes[m["name"]] for m in container()["volumeMounts"]}


def dockerfile() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    steps = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            ins, _, args = line.strip().partition(" ")
            steps.append((ins.upper(), args.strip()))
    return steps


def config_text() -> str:
    text: str = one("ConfigMap")["data"]["config.yaml"]
    return text


def loaded_config(tmp_path: Path) -> Config:
    """The ConfigMap's configuration through the real loader, its secret files laid out under
    tmp_path as the Secret's keys (with the Secret's placeholder values)."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for key, value in one("Secret")["stringData"].items():
        (secrets / key).write_text(value + "\n")
    path = tmp_path / "config.yaml"
    path.write_text(config_text().replace(SECRETS_AT, str(secrets)), encoding="utf-8")
    return load_config(path, environ={})


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("name", "doc"), resources(), ids=[n for n, _ in resources()])
def test_every_manifest_is_valid_against_the_kubernetes_schemas(
    name: str, doc: dict[str, Any], version: str
) -> None:
    """Strict: an unknown or misspelt field is an error, as `kubectl apply --validate` does."""
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as e:
        pytest.fail(f"{name}: {doc['kind']} is invalid for Kubernetes {version}: {e.message}")


def test_the_schema_check_catches_a_misspelt_field() -> None:
    """The check above can fail: a typo in a probe is refused."""
    doc = json.loads(json.dumps(one("Deployment")))
    probe = doc["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]
    probe["httpGett"] = probe.pop("httpGet")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, VERSIONS[-1], strict=True)


def test_the_kustomization_lists_exactly_the_manifests() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Kustomization"
    listed = kustomization["resources"]
    assert sorted(listed) == sorted(p.name for p in K8S.glob("*.yaml") if p.stem != "kustomization")
    kinds = {d["kind"] for _, d in resources()}
    assert kinds == {"ConfigMap", "Secret", "Deployment", "Service", "PodDisruptionBudget"}


def test_the_replicas_share_the_tenants(tmp_path: Path) -> None:
    """Two pods with `replicas.enabled` off would each poll and evaluate every tenant."""
    config = loaded_config(tmp_path)
    assert config.replicas.enabled
    assert config.replicas.id is None  # the default: the pod's host name and the process id


def test_two_replicas_and_a_disruption_budget_of_one() -> None:
    deployment = one("Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    pdb = one("PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = one("Service")
    assert service["spec"]["selector"].items() <= labels.items()


async def test_the_probes_ask_routes_the_monitor_serves() -> None:
    """Each probe's path is served by the exporter's real application on the probed port:
    /healthz answers 200 at once, /readyz is there (503 until the first polls)."""
    c = container()
    named = {p["name"]: p["containerPort"] for p in c["ports"]}
    app = build_http_app(Exporter(LatestSnapshots()))
    async with TestClient(TestServer(app)) as client:
        for kind, expected in (
            ("startupProbe", {200}),
            ("livenessProbe", {200}),
            ("readinessProbe", {200, 503}),
        ):
            get = c[kind]["httpGet"]
            assert named[get["port"]] == 8912, kind
            resp = await client.get(get["path"])
            assert resp.status in expected, (kind, get["path"], resp.status)
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_the_ports_are_the_configured_exporter_port(tmp_path: Path) -> None:
    config = loaded_config(tmp_path)
    assert config.exporter.host == "0.0.0.0"  # reachable from the kubelet and Prometheus
    ports = {p["name"]: p["containerPort"] for p in container()["ports"]}
    assert ports == {"http": config.exporter.port}
    service_ports = one("Service")["spec"]["ports"]
    assert [(p["port"], p["targetPort"]) for p in service_ports] == [(config.exporter.port, "http")]


def test_the_configuration_loads_and_reads_its_secrets_from_the_secret(tmp_path: Path) -> None:
    """Every `*_file` in the ConfigMap is a key of the Secret at its mount path, and every key of
    the Secret is used; the loaded configuration holds the Secret's values."""
    files = re.findall(r"^\s*(\w+)_file:\s*(\S+)\s*$", config_text(), flags=re.MULTILINE)
    assert files
    keys = set(one("Secret")["stringData"])
    used = set()
    for field, path in files:
        directory, _, key = path.rpartition("/")
        assert directory == SECRETS_AT, (field, path)
        assert key in keys, (field, path)
        used.add(key)
    assert used == keys
    assert mounts()[SECRETS_AT]["secret"]["secretName"] == one("Secret")["metadata"]["name"]
    config = loaded_config(tmp_path)
    values = one("Secret")["stringData"]
    assert config.api.token is not None
    assert config.api.token.get_secret_value() == values["api_token"]
    assert config.redis.uses_sentinel  # the Kubernetes example is the Redis that survives a node
    assert config.replicas.enabled  # the two pods share the tenants instead of doubling them
    assert config.replicas.id is None  # each pod names itself (host name and process id)
    assert config.redis.password is not None
    assert config.redis.password.get_secret_value() == values["redis_password"]


def test_image_command_user_and_rules_match_the_dockerfile() -> None:
    steps = dockerfile()
    c = container()
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert c["image"] == f"puzzel-monitor:{version}"
    cmd = json.loads(next(args for ins, args in reversed(steps) if ins == "CMD"))
    assert c["command"] == cmd
    config_path = cmd[cmd.index("-c") + 1]
    directory, _, key = config_path.rpartition("/")
    assert mounts()[directory]["configMap"]["name"] == one("ConfigMap")["metadata"]["name"]
    assert key in one("ConfigMap")["data"]
    uid, _, gid = next(args for ins, args in reversed(steps) if ins == "USER").partition(":")
    security = pod_spec()["securityContext"]
    assert (str(security["runAsUser"]), str(security["runAsGroup"])) == (uid, gid)
    assert ("EXPOSE", str(c["ports"][0]["containerPort"])) in steps
    # rules_path is the image's copy of rules/ (WORKDIR /app, COPY rules ./rules)
    assert ("WORKDIR", "/app") in steps
    assert ("COPY", "rules ./rules") in steps
    assert yaml.safe_load(config_text())["rules_path"] == "/app/rules"


def test_non_root_read_only_and_without_privileges() -> None:
    pod = pod_spec()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False
    security = container()["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert all(m.get("readOnly") for m in container()["volumeMounts"] if m["mountPath"] != "/tmp")
    resources = container()["resources"]
    assert {"cpu", "memory"} <= resources["requests"].keys()
    assert "memory" in resources["limits"]
