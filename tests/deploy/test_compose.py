"""docker-compose.yml, docker-compose.host.yml and the Dockerfile, checked offline (no Docker engine is needed).

The files running for real: tests/compose under `make test-compose`, which also runs this module with the compose
plugin installed, so that `docker compose config` below runs there instead of skipping.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.config import REPO_ROOT
from shared.topics import CONSUMER_GROUPS as TOPIC_GROUPS
from shared.topics import dead_letter_topic
from tests.deploy.settings_env import (
    CONSUMER_GROUPS,
    PORTS,
    ROLES,
    SERVICES,
    build_settings,
    has_kafka_bootstrap,
    required_env,
)

COMPOSE = REPO_ROOT / "docker-compose.yml"
HOST_OVERRIDE = REPO_ROOT / "docker-compose.host.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
LOCK = REPO_ROOT / "deploy" / "docker" / "requirements.lock"
INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?::?-(?P<default>[^}]*))?\}")


def interpolate(value: Any) -> Any:
    """Compose's `${VAR:-default}` with an empty environment: the defaults are what a fresh checkout runs."""
    if isinstance(value, str):
        return INTERPOLATION.sub(lambda m: m.group("default") or "", value).replace("$$", "$")
    return value


class ComposeLoader(yaml.SafeLoader):
    """Compose's merge tags (`!reset`, `!override`) read as their plain values."""


for _tag in ("!reset", "!override"):
    ComposeLoader.add_constructor(
        _tag,
        lambda loader, node: (
            loader.construct_mapping(node)
            if isinstance(node, yaml.MappingNode)
            else loader.construct_sequence(node)
            if isinstance(node, yaml.SequenceNode)
            else loader.construct_scalar(node)
        ),
    )


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document


@pytest.fixture(scope="module")
def host_override() -> dict[str, Any]:
    document: dict[str, Any] = yaml.load(HOST_OVERRIDE.read_text(), Loader=ComposeLoader)  # noqa: S506
    return document


def container_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(interpolate(v)) for k, v in env.items()}


def dockerfile_stages() -> dict[str, list[str]]:
    """Stage name -> its instructions (continuation lines joined)."""
    stages: dict[str, list[str]] = {}
    current: list[str] | None = None
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.IGNORECASE)
        if match:
            current = [line]
            stages[match.group(2) or match.group(1)] = current
        elif current is not None:
            current.append(line)
    return stages


def app_containers(compose: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(f"{svc}-{role}", svc, role) for svc in SERVICES for role in ROLES[svc]]


def test_compose_parses_with_every_role_of_every_service(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, _, _ in app_containers(compose):
        assert name in services, f"{name} missing from docker-compose.yml"
    for name in ("postgres", "kafka", "migrate", "topics", "keys"):
        assert name in services
    assert services["postgres"]["image"] == "postgres:15"
    assert services["kafka"]["image"] == "apache/kafka:4.1.1"


def test_compose_config_when_the_plugin_exists() -> None:
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("docker compose plugin not installed")
    for files in ([COMPOSE], [COMPOSE, HOST_OVERRIDE]):
        args = [arg for path in files for arg in ("-f", str(path))]
        result = subprocess.run(
            [docker, "compose", *args, "config", "--quiet"], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, f"{[f.name for f in files]}: {result.stderr}"


def test_host_override_puts_every_app_container_on_loopback(
    compose: dict[str, Any], host_override: dict[str, Any]
) -> None:
    services = host_override["services"]
    # The bundled servers are off; nothing waits for them.
    assert services["postgres"]["profiles"] == services["kafka"]["profiles"] == ["bundled-infra"]
    for step in ("migrate", "topics"):
        assert services[step]["network_mode"] == "host" and services[step]["depends_on"] == {}
    assert services["keys"]["network_mode"] == "none"
    metrics_ports = set()
    for name, svc, role in app_containers(compose):
        service = services[name]
        assert service["network_mode"] == "host" and service["ports"] == [], name
        env = {k: str(interpolate(v)) for k, v in service["environment"].items()}
        prefix = svc.upper()
        assert env[f"{prefix}_DATABASE_URL"] == f"postgresql+asyncpg://kencana:kencana@127.0.0.1:5432/{svc}"
        assert env[f"{prefix}_KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:9092"
        assert env[f"{prefix}_METRICS_HOST"] == "127.0.0.1"
        probe = interpolate(service["healthcheck"]["test"][-1])
        if role == "api":
            command = [str(interpolate(part)) for part in service["command"]]
            assert command[command.index("--host") + 1] == "127.0.0.1", name
            port = command[command.index("--port") + 1]
            assert port == str(PORTS[svc]) and probe == f"http://127.0.0.1:{port}/readyz", name
        else:
            port = env[f"{prefix}_METRICS_PORT"]
            assert probe == f"http://127.0.0.1:{port}/metrics", name
            metrics_ports.add(port)
    # One network for all: each relay and consumer needs a metrics port of its own.
    assert len(metrics_ports) == sum(1 for _, _, role in app_containers(compose) if role != "api")
    migrate = {k: str(interpolate(v)) for k, v in services["migrate"]["environment"].items()}
    for svc in SERVICES:
        assert (
            migrate[f"{svc.upper()}_DATABASE_URL"]
            == f"postgresql+asyncpg://kencana:kencana@127.0.0.1:5432/{svc}"
        )


def test_kafka_runs_kraft_without_zookeeper(compose: dict[str, Any]) -> None:
    from kencana_cli.kafka_security import COMPOSE_SERVER_PROPERTIES

    env = container_env(compose["services"]["kafka"])
    props = dict(
        line.split("=", 1)
        for line in COMPOSE_SERVER_PROPERTIES.replace("\\\n", "").splitlines()
        if line and not line.startswith("#")
    )
    assert set(props["process.roles"].split(",")) == {"broker", "controller"}
    assert "zookeeper.connect" not in props
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", env["CLUSTER_ID"]), "CLUSTER_ID must be a base64url UUID"


def test_compose_kafka_is_the_secured_bus(compose: dict[str, Any]) -> None:
    """Issue 15: clients only on SASL_SSL (SCRAM-SHA-512), ACLs enforced, every service as its own user."""
    from kencana_cli.kafka_security import COMPOSE_SERVER_PROPERTIES

    props = dict(
        line.split("=", 1)
        for line in COMPOSE_SERVER_PROPERTIES.replace("\\\n", "").splitlines()
        if line and not line.startswith("#")
    )
    assert props["advertised.listeners"] == "SASL_SSL://kafka:9092,HOST://localhost:29092"
    assert props["listener.security.protocol.map"] == "SASL_SSL:SASL_SSL,CONTROLLER:SSL,HOST:SASL_SSL"
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["super.users"] == "User:{admin};User:kencana-broker"
    assert "--add-scram" in " ".join(compose["services"]["kafka"]["command"])
    for name, svc, _role in app_containers(compose):
        env = {k: str(interpolate(v)) for k, v in compose["services"][name]["environment"].items()}
        prefix = svc.upper()
        assert env[f"{prefix}_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL", name
        assert env[f"{prefix}_KAFKA_SASL_USERNAME"] == svc, name
        assert env[f"{prefix}_KAFKA_SASL_PASSWORD_FILE"].endswith(f"/passwords/{svc}.password"), name


def test_every_build_context_dockerfile_and_target_exist(compose: dict[str, Any]) -> None:
    stages = dockerfile_stages()
    built = 0
    for name, service in compose["services"].items():
        build = service.get("build")
        if build is None:
            continue
        built += 1
        context = REPO_ROOT / build["context"]
        assert context.is_dir(), f"{name}: build context {context} missing"
        assert (context / build.get("dockerfile", "Dockerfile")).is_file(), f"{name}: Dockerfile missing"
        assert build.get("target") in stages, f"{name}: target {build.get('target')} not in the Dockerfile"
    assert built >= len(app_containers(compose))


def test_same_image_tag_always_means_the_same_build(compose: dict[str, Any]) -> None:
    targets: dict[str, set[str]] = {}
    for service in compose["services"].values():
        if "build" in service:
            targets.setdefault(service["image"], set()).add(service["build"]["target"])
    assert all(len(t) == 1 for t in targets.values()), targets


def test_dockerfile_targets_are_slim_non_root_with_health_checks() -> None:
    stages = dockerfile_stages()
    text = DOCKERFILE.read_text()
    # Pinned by digest where it is pulled; a local image is passed with --build-arg where it cannot be.
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim@sha256:[0-9a-f]{64}$", text, re.MULTILINE)
    runtime = " ".join(stages["runtime"])
    assert re.search(r"USER\s+10001", runtime), "the runtime stage must switch to a non-root user"
    assert "COPY --from=builder /opt/venv" in runtime
    for svc in SERVICES:
        stage = stages[svc]
        assert stage[0].split()[1] == "runtime", f"{svc} must build on the runtime stage"
        joined = " ".join(stage)
        assert f"EXPOSE {PORTS[svc]}" in joined
        assert "HEALTHCHECK" in joined
        assert f'"{svc}.main:create_app", "--factory"' in joined and f'"{PORTS[svc]}"' in joined
        assert not re.search(r"^USER\s+(root|0)\b", joined, re.MULTILINE)
    for name in ("runtime", *SERVICES):
        joined = " ".join(stages[name])
        for tool in ("apt-get install", "build-essential", "gcc", "pip install"):
            assert tool not in joined, f"stage {name} must not install build tools ({tool})"


def test_dockerignore_keeps_local_state_out() -> None:
    lines = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    for entry in (".git", ".venv", ".local", "**/*.pem"):
        assert entry in lines


def test_lock_pins_every_direct_dependency_at_the_pyproject_version() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    locked = {}
    for line in LOCK.read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            locked[re.sub(r"[-_.]+", "-", name).lower()] = version
    for requirement in project["dependencies"]:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(\S+)", requirement)
        assert match, f"{requirement}: runtime dependencies must be pinned with =="
        name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
        assert locked.get(name) == match.group(2), (
            f"{name}: lock has {locked.get(name)}, pyproject {match.group(2)}"
        )


@pytest.mark.parametrize("svc", SERVICES)
def test_every_role_command_names_a_real_module(compose: dict[str, Any], svc: str) -> None:
    services = compose["services"]
    assert services[f"{svc}-api"]["command"][:3] == ["uvicorn", f"{svc}.main:create_app", "--factory"]
    assert importlib.util.find_spec(f"{svc}.main") is not None
    for role in ("relay", "consumer"):
        if role in ROLES[svc]:
            assert services[f"{svc}-{role}"]["command"] == ["python", "-m", f"{svc}.{role}"]
            assert importlib.util.find_spec(f"{svc}.{role}") is not None
        else:
            assert f"{svc}-{role}" not in services


@pytest.mark.parametrize("container", [f"{s}-{r}" for s in SERVICES for r in ROLES[s]])
def test_service_container_environment_builds_the_settings(compose: dict[str, Any], container: str) -> None:
    svc = container.split("-")[0]
    env = container_env(compose["services"][container])
    missing = required_env(svc) - set(env)
    assert not missing, f"{container} lacks {sorted(missing)}"
    assert has_kafka_bootstrap(svc, env), f"{container} lacks a Kafka bootstrap"
    settings = build_settings(svc, env)
    assert settings.database_url.endswith(f"@postgres:5432/{svc}")
    assert settings.kafka_bootstrap_servers == "kafka:9092"
    assert str(settings.jwt_public_key_file).startswith("/var/lib/kencana/keys/")


def test_migrate_has_every_service_configuration(compose: dict[str, Any]) -> None:
    migrate = compose["services"]["migrate"]
    assert migrate["command"] == ["kencana", "migrate"]
    env = container_env(migrate)
    for svc in SERVICES:
        assert not required_env(svc) - set(env), f"migrate lacks settings of {svc}"
        build_settings(svc, env)
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_every_service_container_waits_for_migrate_topics_and_keys(compose: dict[str, Any]) -> None:
    for name, _, _ in app_containers(compose):
        depends = compose["services"][name]["depends_on"]
        for step in ("migrate", "topics", "keys"):
            assert depends[step]["condition"] == "service_completed_successfully", f"{name} -> {step}"
    # ...and the chain reaches the infrastructure through the one-shot steps.
    assert compose["services"]["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_long_running_containers_have_health_checks(compose: dict[str, Any]) -> None:
    for name, svc, role in app_containers(compose):
        check = compose["services"][name]["healthcheck"]
        test = " ".join(check["test"])
        if role == "api":
            assert f"http://127.0.0.1:{PORTS[svc]}/readyz" in test
        else:
            assert "http://127.0.0.1:9100/metrics" in test
            env = container_env(compose["services"][name])
            assert env[f"{svc.upper()}_METRICS_PORT"] == "9100"
    for infra in ("postgres", "kafka"):
        assert compose["services"][infra]["healthcheck"]["test"]


def test_postgres_init_creates_the_four_databases(compose: dict[str, Any]) -> None:
    mounts = compose["services"]["postgres"]["volumes"]
    init = next(m for m in mounts if m.endswith(":/docker-entrypoint-initdb.d:ro"))
    folder = REPO_ROOT / init.split(":")[0]
    sql = " ".join(p.read_text() for p in sorted(Path(folder).glob("*.sql")))
    for svc in SERVICES:
        assert re.search(rf"CREATE DATABASE {svc};", sql)


def test_topics_step_runs_the_one_topic_declaration(compose: dict[str, Any]) -> None:
    # The step runs `kencana topics repair` (shared/topics.py) from a service image; what it creates on a real
    # broker, and with which retention, is tested in tests/shared/test_topic_retention.py.
    step = compose["services"]["topics"]
    assert step["command"] == ["kencana", "topics", "repair"]
    assert step["image"] == "kencana-registry:dev" and step["build"]["target"] == "registry"
    assert step["environment"]["KENCANA_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert {f"{g}.dlq" for g in CONSUMER_GROUPS} == {dead_letter_topic(g) for g in TOPIC_GROUPS}


def test_dev_jwt_keys_are_shared_read_only_with_the_services(compose: dict[str, Any]) -> None:
    assert "ensure_dev_keys" in " ".join(compose["services"]["keys"]["command"])
    assert "jwt-keys:/var/lib/kencana/keys" in compose["services"]["keys"]["volumes"]
    for name, _, _ in app_containers(compose):
        assert "jwt-keys:/var/lib/kencana/keys:ro" in compose["services"][name]["volumes"]


def test_interpolation_leaves_no_unresolved_variables(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for key, value in container_env(service).items():
            assert "${" not in value, f"{name}: {key}"
