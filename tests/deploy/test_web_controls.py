"""Every way the APIs are started hides uvicorn's banner; the ingress adds the global rate limit (issue 12)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from shared.config import REPO_ROOT
from tests.deploy import kustomize
from tests.deploy.settings_env import PORTS, SERVICES

K8S_BASE = REPO_ROOT / "deploy" / "k8s" / "base"
FLAG = "--no-server-header"


def test_every_api_entrypoint_switches_the_server_banner_off() -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    resources = kustomize.render(K8S_BASE)
    for svc in SERVICES:
        cmd = re.search(rf'CMD \["uvicorn", "{svc}\.main:create_app".*\]', dockerfile)
        assert cmd is not None and f'"{FLAG}"' in cmd.group(0), svc
        assert FLAG in compose["services"][f"{svc}-api"]["command"], svc
        api = kustomize.find(resources, "Deployment", f"{svc}-api")
        (container,) = [c for c in kustomize.containers(api) if c["name"] == "api"]
        assert FLAG in container["command"], svc
    assert f"--factory {FLAG}" in (REPO_ROOT / "scripts" / "services.sh").read_text()
    assert f'"{FLAG}"' in (REPO_ROOT / "tests" / "e2e" / "stack.py").read_text()


@pytest.fixture(scope="module")
def ingresses() -> dict[str, dict[str, Any]]:
    return {r["metadata"]["name"]: r for r in kustomize.render(K8S_BASE) if r["kind"] == "Ingress"}


def test_the_ingress_limits_every_client_address_in_front_of_all_replicas(
    ingresses: dict[str, dict[str, Any]],
) -> None:
    assert set(ingresses) == set(SERVICES)
    for svc, ingress in ingresses.items():
        notes = ingress["metadata"]["annotations"]
        assert int(notes["nginx.ingress.kubernetes.io/limit-rps"]) > 0
        assert int(notes["nginx.ingress.kubernetes.io/limit-connections"]) > 0
        assert notes["nginx.ingress.kubernetes.io/enable-cors"] == "false"  # the API's allow-list decides
        spec = ingress["spec"]
        assert spec["tls"][0]["hosts"] == [rule["host"] for rule in spec["rules"]]
        for rule in spec["rules"]:
            # Only the API: health, readiness, metrics and the docs stay inside the cluster.
            assert [p["path"] for p in rule["http"]["paths"]] == ["/v1"]
            backend = rule["http"]["paths"][0]["backend"]["service"]
            assert backend == {"name": svc, "port": {"name": "http"}}
    # Bulk imports need the registry's larger body limit at the ingress too (REGISTRY_IMPORT_MAX_BYTES).
    assert (
        ingresses["registry"]["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"]
        == "200m"
    )
    assert set(PORTS) == set(SERVICES)
