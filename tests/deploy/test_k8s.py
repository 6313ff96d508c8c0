"""deploy/k8s, rendered offline and checked against the Kubernetes schemas and Kencana's policies."""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import kubernetes_validate
import pytest
import yaml

from shared.config import REPO_ROOT
from shared.topics import EVENT_TOPICS, TopicKind, topic_config
from tests.deploy import kustomize
from tests.deploy.settings_env import (
    CONSUMER_GROUPS,
    PORTS,
    ROLES,
    SERVICES,
    build_settings,
    has_kafka_bootstrap,
    required_env,
)

K8S = REPO_ROOT / "deploy" / "k8s"
TARGETS = {"base": K8S / "base", "production": K8S / "overlays" / "production"}
K8S_VERSION = "1.33"
NAMESPACE = "kencana"
PARTITIONS = 6
# Names of the Secrets the manifests may reference (created outside git, e.g. by an external secrets operator).
# <svc>: the Secret Strimzi's User Operator makes for the service's KafkaUser (issue 15).
SECRET_NAMES = (
    {f"{svc}-database" for svc in SERVICES} | set(SERVICES) | {"registry-nik-keys", "reporting-streams"}
)
SECRETISH = re.compile(r"(DATABASE_URL|PASSWORD|SECRET|TOKEN|NIK_|_KEY$|_KEYS$)")
CREDENTIAL_IN_URL = re.compile(r"://[^/\s:@]+:[^/\s@]+@")

Resource = dict[str, Any]


@pytest.fixture(scope="module", params=sorted(TARGETS))
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[Resource]]:
    return request.param, kustomize.render(TARGETS[request.param])


def of_kind(resources: list[Resource], kind: str) -> list[Resource]:
    return [r for r in resources if r["kind"] == kind]


def workloads(resources: list[Resource]) -> list[Resource]:
    return [r for r in resources if r["kind"] in {"Deployment", "Job"}]


def labels_of(resource: Resource) -> dict[str, str]:
    labels: dict[str, str] = resource["spec"]["template"]["metadata"]["labels"]
    return labels


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        present = labels.get(expression["key"])
        if expression["operator"] == "In" and present not in expression["values"]:
            return False
        if expression["operator"] == "NotIn" and present in expression["values"]:
            return False
        if expression["operator"] == "Exists" and present is None:
            return False
    return True


def synthetic_secret(name: str, key: str) -> str:
    """A realistic, non-placeholder value for a referenced Secret key (production refuses placeholders)."""
    seed = hashlib.sha256(f"{name}/{key}".encode()).digest()
    if key == "url":
        svc = name.removesuffix("-database")
        return f"postgresql+asyncpg://{svc}_app:{seed.hex()[:24]}@pg-rw.postgres.svc:5432/{svc}"
    if key == "encryption-keys":
        return f"k2026a:{base64.b64encode(seed).decode()}"
    return base64.b64encode(seed).decode()


def resolved_env(container: dict[str, Any], resources: list[Resource]) -> dict[str, str]:
    """The environment the container would get, with Secret values replaced by synthetic ones."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        config = kustomize.find(resources, "ConfigMap", source["configMapRef"]["name"])
        env.update({k: str(v) for k, v in config.get("data", {}).items()})
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = synthetic_secret(ref["name"], ref["key"])
    return env


def service_containers(resources: list[Resource]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for deployment in of_kind(resources, "Deployment"):
        svc = labels_of(deployment)["app.kubernetes.io/name"]
        for container in kustomize.containers(deployment):
            yield svc, deployment["metadata"]["name"], container


def test_kustomization_renders_every_expected_workload(rendered: tuple[str, list[Resource]]) -> None:
    _, resources = rendered
    names = {r["metadata"]["name"] for r in of_kind(resources, "Deployment")}
    assert names == {f"{svc}-{role}" for svc in SERVICES for role in ROLES[svc]}
    assert {s["metadata"]["name"] for s in of_kind(resources, "Service")} == set(SERVICES)
    assert [j["metadata"]["name"] for j in of_kind(resources, "Job")] == ["kencana-migrate"]
    assert [n["metadata"]["name"] for n in of_kind(resources, "Namespace")] == [NAMESPACE]
    for resource in resources:
        if resource["kind"] != "Namespace":
            assert resource["metadata"]["namespace"] == NAMESPACE


def test_renderer_agrees_with_kubectl_kustomize(rendered: tuple[str, list[Resource]]) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed; the pure-Python renderer is the reference")
    target, resources = rendered
    result = subprocess.run([kubectl, "kustomize", str(TARGETS[target])], capture_output=True, text=True)
    if result.returncode != 0 and "unknown command" in result.stderr:
        pytest.skip("this kubectl has no kustomize")
    assert result.returncode == 0, result.stderr

    def key(r: Resource) -> tuple[str, str]:
        return r["kind"], r["metadata"]["name"]

    theirs = sorted((d for d in yaml.safe_load_all(result.stdout) if d), key=key)
    assert sorted(resources, key=key) == theirs


def test_every_resource_matches_the_kubernetes_schema(rendered: tuple[str, list[Resource]]) -> None:
    _, resources = rendered
    checked = 0
    for resource in resources:
        if resource["apiVersion"].startswith("kafka.strimzi.io/"):
            continue  # custom resource: not in the shipped schemas, checked structurally below
        try:
            kubernetes_validate.validate(resource, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = f"{resource['kind']}/{resource['metadata']['name']}"
            pytest.fail(f"{where}: {'.'.join(str(p) for p in exc.path)}: {exc.message}")
        checked += 1
    assert checked > 40


def test_kafka_topics_are_replicated_and_cover_every_dead_letter_topic(
    rendered: tuple[str, list[Resource]],
) -> None:
    _, resources = rendered
    topics = {t["spec"]["topicName"]: t for t in of_kind(resources, "KafkaTopic")}
    expected_events = {"kencana.registry", "kencana.uppka", "kencana.dashat"}
    assert set(topics) == expected_events | {f"{g}.dlq" for g in CONSUMER_GROUPS}
    for name, topic in topics.items():
        assert topic["apiVersion"] == "kafka.strimzi.io/v1beta2"
        assert topic["metadata"]["labels"]["strimzi.io/cluster"]
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", topic["metadata"]["name"])
        spec = topic["spec"]
        assert set(spec) <= {"topicName", "partitions", "replicas", "config"}
        assert spec["replicas"] == 3
        assert spec["config"]["min.insync.replicas"] == 2
        assert spec["partitions"] == (PARTITIONS if name in expected_events else 1)
        assert all(isinstance(v, str | int) for v in spec["config"].values())


def test_kafka_topics_keep_the_retention_declared_in_shared_topics(
    rendered: tuple[str, list[Resource]],
) -> None:
    # One declaration (shared/topics.py) for every way topics are created; Strimzi reads these manifests instead.
    _, resources = rendered
    topics = {t["spec"]["topicName"]: t["spec"] for t in of_kind(resources, "KafkaTopic")}
    for name, spec in topics.items():
        kind: TopicKind = "events" if name in EVENT_TOPICS else "dead-letters"
        declared = topic_config(kind, replication_factor=spec["replicas"])
        assert {k: str(v) for k, v in spec["config"].items()} == declared, name
    # Written out by hand, so that a change to the declaration is a visible decision here too.
    assert topics["kencana.registry"]["config"] == {
        "min.insync.replicas": 2,
        "cleanup.policy": "delete",
        "retention.ms": -1,
        "retention.bytes": -1,
    }
    assert topics["reporting.projector.dlq"]["config"]["retention.ms"] == 30 * 24 * 60 * 60 * 1000


def test_every_container_runs_non_root_read_only_without_capabilities(
    rendered: tuple[str, list[Resource]],
) -> None:
    _, resources = rendered
    for workload in workloads(resources):
        pod = kustomize.pod_spec(workload)
        assert pod is not None
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod.get("automountServiceAccountToken") is False
        tmp_volumes = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
        for container in kustomize.containers(workload):
            where = f"{workload['metadata']['name']}/{container['name']}"
            security = container["securityContext"]
            assert security["runAsNonRoot"] is True, where
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["capabilities"]["drop"] == ["ALL"], where
            assert "add" not in security["capabilities"], where
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            assert mounts.get("/tmp") in tmp_volumes, f"{where}: /tmp must be an emptyDir"


def test_every_container_has_requests_and_limits(rendered: tuple[str, list[Resource]]) -> None:
    _, resources = rendered
    for workload in workloads(resources):
        for container in kustomize.containers(workload):
            resources_ = container["resources"]
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources_[kind]), f"{workload['metadata']['name']}: {kind}"


def test_api_containers_probe_healthz_and_readyz(rendered: tuple[str, list[Resource]]) -> None:
    _, resources = rendered
    for svc in SERVICES:
        deployment = kustomize.find(resources, "Deployment", f"{svc}-api")
        (container,) = kustomize.containers(deployment)
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["http"] == PORTS[svc]
        assert container["command"][-1] == str(PORTS[svc])
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz"


def test_workers_run_their_module_and_expose_metrics(rendered: tuple[str, list[Resource]]) -> None:
    _, resources = rendered
    for svc in SERVICES:
        for role in ("relay", "consumer"):
            if role not in ROLES[svc]:
                continue
            (container,) = kustomize.containers(kustomize.find(resources, "Deployment", f"{svc}-{role}"))
            assert container["command"] == ["python", "-m", f"{svc}.{role}"]
            env = {e["name"]: e.get("value") for e in container["env"]}
            assert env[f"{svc.upper()}_METRICS_PORT"] == "9100"
            assert container["livenessProbe"]["httpGet"]["port"] == "metrics"


def test_autoscalers_cover_apis_and_consumers_within_the_partition_count(
    rendered: tuple[str, list[Resource]],
) -> None:
    _, resources = rendered
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in of_kind(resources, "HorizontalPodAutoscaler")}
    expected = {f"{s}-api" for s in SERVICES} | {f"{s}-consumer" for s in SERVICES if "consumer" in ROLES[s]}
    assert set(hpas) == expected
    for target, hpa in hpas.items():
        deployment = kustomize.find(resources, "Deployment", target)
        assert "replicas" not in deployment["spec"], f"{target}: the autoscaler owns the replica count"
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        if target.endswith("-consumer"):
            assert hpa["spec"]["maxReplicas"] <= PARTITIONS
        if target.endswith("-api"):
            assert hpa["spec"]["minReplicas"] >= 2, "one API pod is a single point of failure"


def test_every_deployment_has_a_disruption_budget(rendered: tuple[str, list[Resource]]) -> None:
    _, resources = rendered
    budgets = of_kind(resources, "PodDisruptionBudget")
    for deployment in of_kind(resources, "Deployment"):
        matching = [b for b in budgets if selects(b["spec"]["selector"], labels_of(deployment))]
        assert len(matching) == 1, f"{deployment['metadata']['name']}: {len(matching)} budgets"


def test_services_select_exactly_their_api_pods(rendered: tuple[str, list[Resource]]) -> None:
    _, resources = rendered
    for service in of_kind(resources, "Service"):
        selected = [
            d["metadata"]["name"]
            for d in of_kind(resources, "Deployment")
            if selects({"matchLabels": service["spec"]["selector"]}, labels_of(d))
        ]
        assert selected == [f"{service['metadata']['name']}-api"]
        assert service["spec"]["ports"][0]["port"] == PORTS[service["metadata"]["name"]]


def test_network_policies_deny_by_default_and_open_only_what_is_needed(
    rendered: tuple[str, list[Resource]],
) -> None:
    _, resources = rendered
    policies = of_kind(resources, "NetworkPolicy")
    deny = [
        p
        for p in policies
        if p["spec"]["podSelector"] == {}
        and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    assert deny, "a default-deny policy for all pods is required"

    def ingress_ports(labels: dict[str, str]) -> set[int]:
        return {
            port["port"]
            for p in policies
            if "Ingress" in p["spec"]["policyTypes"] and selects(p["spec"]["podSelector"], labels)
            for rule in p["spec"].get("ingress", [])
            for port in rule.get("ports", [])
        }

    def egress_ports(labels: dict[str, str]) -> set[int]:
        return {
            port["port"]
            for p in policies
            if "Egress" in p["spec"]["policyTypes"] and selects(p["spec"]["podSelector"], labels)
            for rule in p["spec"].get("egress", [])
            for port in rule.get("ports", [])
        }

    for workload in workloads(resources):
        labels = labels_of(workload)
        role = labels["app.kubernetes.io/component"]
        name = workload["metadata"]["name"]
        assert {53, 5432, 9093} <= egress_ports(labels), name
        if role == "api":
            assert ingress_ports(labels) == {PORTS[labels["app.kubernetes.io/name"]]}, name
            assert egress_ports(labels) == {53, 5432, 9093, 443}, name
        elif role in ("relay", "consumer"):
            assert ingress_ports(labels) == {9100}, name
            # Reporting's relay POSTs the ministries' webhooks (issue 15): https out, nothing else added.
            webhooks = {443} if name == "reporting-relay" else set()
            assert egress_ports(labels) == {53, 5432, 9093} | webhooks, name
        else:
            assert ingress_ports(labels) == set(), name
            assert egress_ports(labels) == {53, 5432, 9093}, name
    # Nothing may open every port: a rule without ports would.
    for policy in policies:
        for direction in ("ingress", "egress"):
            for rule in policy["spec"].get(direction, []):
                assert rule.get("ports"), f"{policy['metadata']['name']}: {direction} rule without ports"


def test_no_secret_values_in_the_manifests(rendered: tuple[str, list[Resource]]) -> None:
    _, resources = rendered
    assert not of_kind(resources, "Secret"), "Secrets are created outside git and only referenced"
    for config in of_kind(resources, "ConfigMap"):
        for key, value in config.get("data", {}).items():
            assert not SECRETISH.search(key), f"{config['metadata']['name']}: {key} belongs in a Secret"
            assert not CREDENTIAL_IN_URL.search(str(value)), f"{config['metadata']['name']}: {key}"
    for workload in workloads(resources):
        for container in kustomize.containers(workload):
            for item in container.get("env", []):
                if "value" in item:
                    assert not SECRETISH.search(item["name"]), f"{item['name']} must come from a Secret"
                    assert not CREDENTIAL_IN_URL.search(item["value"])
                else:
                    assert item["valueFrom"]["secretKeyRef"]["name"] in SECRET_NAMES


def test_containers_environment_builds_each_service_settings(rendered: tuple[str, list[Resource]]) -> None:
    target, resources = rendered
    for svc, name, container in service_containers(resources):
        env = resolved_env(container, resources)
        missing = required_env(svc) - set(env)
        assert not missing, f"{name} lacks {sorted(missing)}"
        assert has_kafka_bootstrap(svc, env), f"{name} lacks a Kafka bootstrap"
        settings = build_settings(svc, env)
        assert settings.jwt_jwks_url and settings.jwt_public_key_file is None
        assert settings.database_url.endswith(f"/{svc}")
        if target == "production":
            assert settings.environment == "production"
            assert settings.topic_replication_factor == 3
            assert settings.topic_partitions == PARTITIONS


def test_migration_job_carries_every_service_configuration(rendered: tuple[str, list[Resource]]) -> None:
    _, resources = rendered
    job = kustomize.find(resources, "Job", "kencana-migrate")
    (container,) = kustomize.containers(job)
    assert container["command"] == ["kencana", "migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    env = resolved_env(container, resources)
    for svc in SERVICES:
        assert not required_env(svc) - set(env), f"migration job lacks settings of {svc}"
        build_settings(svc, env)


def test_production_overlay_pins_images_and_scales_up() -> None:
    base = kustomize.render(TARGETS["base"])
    production = kustomize.render(TARGETS["production"])
    for workload in workloads(production):
        for container in kustomize.containers(workload):
            image = container["image"]
            assert ":" in image.rsplit("/", 1)[-1] or "@" in image, f"{image}: production needs a tag"
            assert not image.endswith(":latest")
    for svc in SERVICES:
        if "relay" in ROLES[svc]:
            assert kustomize.find(production, "Deployment", f"{svc}-relay")["spec"]["replicas"] >= 2
        for role in ("api", "consumer"):
            if role not in ROLES[svc]:
                continue
            name = f"{svc}-{role}"
            before = kustomize.find(base, "HorizontalPodAutoscaler", name)["spec"]["minReplicas"]
            after = kustomize.find(production, "HorizontalPodAutoscaler", name)["spec"]["minReplicas"]
            assert after >= before


def test_kafka_users_are_generated_from_the_principal_list() -> None:
    """The KafkaUsers hold exactly the ACLs of shared/kafka_security.py (issue 15: one list, generated)."""
    from kencana_cli.kafka_security import K8S_USERS, k8s_users_document

    assert K8S_USERS.read_text() == k8s_users_document(), "run `kencana kafka-security k8s`"
    users = {d["metadata"]["name"]: d for d in yaml.safe_load_all(K8S_USERS.read_text()) if d}
    assert set(users) == set(SERVICES)
    registry = users["registry"]["spec"]["authorization"]["acls"]
    writes = [a["resource"] for a in registry if "Write" in a["operations"]]
    assert writes == [{"type": "topic", "name": "kencana.registry", "patternType": "literal"}]
    assert not [a for a in registry if "Read" in a["operations"]]


def test_every_kafka_client_pod_authenticates_as_its_service() -> None:
    for service in SERVICES:
        config = yaml.safe_load((K8S / "base" / service / "config.yaml").read_text())["data"]
        prefix = service.upper()
        assert config[f"{prefix}_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert config[f"{prefix}_KAFKA_SASL_USERNAME"] == service
        assert config[f"{prefix}_KAFKA_BOOTSTRAP_SERVERS"].endswith(":9093")
        for path in (K8S / "base" / service).glob("*.yaml"):
            for doc in yaml.safe_load_all(path.read_text()):
                if not doc or doc.get("kind") != "Deployment":
                    continue
                (container,) = doc["spec"]["template"]["spec"]["containers"]
                password = {e["name"]: e for e in container["env"]}[f"{prefix}_KAFKA_SASL_PASSWORD"]
                assert password["valueFrom"]["secretKeyRef"] == {"name": service, "key": "password"}, path
