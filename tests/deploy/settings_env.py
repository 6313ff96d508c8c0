"""What the deploy files must give each service, read from the services' Settings classes at run time.

The Settings classes grow as the services are built, so nothing here lists their fields by hand: required
fields (no default) are discovered by introspection, and a container's environment is proven sufficient by
building the Settings from exactly that environment.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from pydantic_settings import BaseSettings

SERVICES = ("registry", "uppka", "dashat", "reporting")
PORTS = {"registry": 8001, "uppka": 8002, "dashat": 8003, "reporting": 8004}
# Which long-running roles each service has (registry consumes nothing; reporting's relay publishes only the
# ministries' curated streams, issue 15).
ROLES = {
    "registry": ("api", "relay"),
    "uppka": ("api", "relay", "consumer"),
    "dashat": ("api", "relay", "consumer"),
    "reporting": ("api", "relay", "consumer"),
}
CONSUMER_GROUPS = tuple(f"{svc}.projector" for svc in SERVICES if "consumer" in ROLES[svc])
# Secrets a service needs even while its Settings class does not (yet) declare them as fields.
KNOWN_SECRETS = {"registry": ("REGISTRY_NIK_ENCRYPTION_KEYS", "REGISTRY_NIK_INDEX_KEY")}


def settings_class(service: str) -> type[BaseSettings]:
    module = importlib.import_module(f"{service}.config")
    cls: type[BaseSettings] = module.Settings
    return cls


def env_prefix(service: str) -> str:
    return str(settings_class(service).model_config.get("env_prefix", ""))


def env_name(service: str, field_name: str) -> str:
    field = settings_class(service).model_fields[field_name]
    alias = field.validation_alias
    if isinstance(alias, str):
        return alias.upper()
    return f"{env_prefix(service)}{field_name}".upper()


def required_env(service: str) -> set[str]:
    """Variables a container of `service` must set: required fields, the database URL, the Kafka bootstrap."""
    cls = settings_class(service)
    names = {env_name(service, name) for name, field in cls.model_fields.items() if field.is_required()}
    names.add(env_name(service, "database_url"))
    names |= set(KNOWN_SECRETS.get(service, ()))
    return names


def has_kafka_bootstrap(service: str, env: Mapping[str, str]) -> bool:
    return bool(
        env.get(env_name(service, "kafka_bootstrap_servers")) or env.get("KENCANA_KAFKA_BOOTSTRAP_SERVERS")
    )


@contextmanager
def only_env(env: Mapping[str, str]) -> Iterator[None]:
    """Run with exactly `env` as the process environment (restored afterwards)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def build_settings(service: str, env: Mapping[str, str]) -> Any:
    """The service's Settings as that container would build them; raises if the environment is not enough."""
    with only_env(env):
        return settings_class(service)()
