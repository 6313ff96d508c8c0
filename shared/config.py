"""Settings base shared by every service (pydantic-settings, one env prefix per service)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from limits import parse as parse_rate
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.kafka_security import KafkaSecurity

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PG_SERVER = "postgresql+asyncpg://kencana:kencana@127.0.0.1:5432"
DEFAULT_KAFKA = "127.0.0.1:9092"

# Values that are fine on a laptop and must never reach production.
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "dev", "dev-only-not-secret"})


def _read_secret(path: str) -> str:
    return Path(path).read_text(encoding="utf-8").strip()


def state_dir() -> Path:
    """The git-ignored folder holding local infrastructure state, keys and logs."""
    return Path(os.environ.get("KENCANA_STATE_DIR", REPO_ROOT / ".local"))


def pg_server_url() -> str:
    """URL of the PostgreSQL server (without database name) every service's database lives on."""
    return os.environ.get("KENCANA_DATABASE_URL", DEFAULT_PG_SERVER).rstrip("/")


def kafka_bootstrap_servers() -> str:
    """Kafka bootstrap servers shared by every service unless a service overrides them."""
    return os.environ.get("KENCANA_KAFKA_BOOTSTRAP_SERVERS", DEFAULT_KAFKA)


class ServiceSettings(BaseSettings):
    """What every service process needs; subclasses set `service_name` and the env prefix."""

    model_config = SettingsConfigDict(extra="ignore", env_file=None)

    service_name: str = "service"
    environment: Literal["dev", "test", "production"] = "dev"
    database_url: str = ""
    database_pool_size: int = 10
    kafka_bootstrap_servers: str = ""
    # The service's Kafka principal (issue 15, shared/kafka_security.py): SASL_SSL with SCRAM-SHA-512 and the
    # project's CA. Each empty one falls back to KENCANA_KAFKA_<same name> (`<SVC>_KAFKA_SASL_USERNAME` overrides
    # `KENCANA_KAFKA_SASL_USERNAME`); all empty: PLAINTEXT, no authentication.
    kafka_security_protocol: str = ""
    kafka_sasl_mechanism: str = ""
    kafka_sasl_username: str = ""
    kafka_sasl_password: str = Field(default="", repr=False)
    # A file holding the password instead (docker-compose's kafka-secrets volume).
    kafka_sasl_password_file: str = ""
    kafka_ssl_cafile: str = ""
    topic_partitions: int = 6
    topic_replication_factor: int = 1
    # Logical topic -> physical topic; tests use it to give each test its own topics.
    topic_suffix: str = ""

    jwt_issuer: str = "kencana-dev"
    jwt_audience: str = "kencana"
    jwt_algorithm: Literal["ES256", "RS256", "EdDSA"] = "ES256"
    jwt_public_key_file: Path | None = None
    jwt_jwks_url: str | None = None
    jwt_max_ttl_seconds: int = 24 * 3600
    jwt_leeway_seconds: int = 30

    max_body_bytes: int = 1_048_576
    page_size_default: int = 50
    page_size_max: int = 200

    # Per-client budgets of the API (the token's `sub`; requests without a valid token by client address),
    # in the `limits` notation "<count>/<period>" ("1200/minute", "5/2 seconds"). They are counted in each
    # replica's memory (moving window): with N replicas a client gets up to N times the budget, which the
    # ingress limit bounds (docs/security.md). Health, readiness, metrics and the API docs are not limited.
    rate_limit_enabled: bool = True
    # Every limited request spends from this budget.
    rate_limit_default: str = "1200/minute"
    # Personal-data searches (the registry's `POST /v1/persons:search`) spend from this one too: each search
    # is a guess at a NIK, so it is kept far below the default (audit: the NIK was found in 59 searches).
    rate_limit_search: str = "30/minute"
    # Scope -> budget: a request to an endpoint that requires the scope also spends from it (JSON object in
    # the environment). Unmasked NIK/KK reads are personal data in bulk.
    rate_limit_scopes: dict[str, str] = Field(default_factory=lambda: {"registry:pii:read": "120/minute"})

    # Browser origins allowed to call the API (CORS), e.g. "https://siga.bkkbn.go.id,https://kader.bkkbn.go.id"
    # (comma-separated or a JSON list). Empty: no cross-origin browser access at all.
    cors_allow_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    cors_max_age_seconds: int = 600
    # Strict-Transport-Security max-age, sent when > 0: set it when the API is served only over HTTPS (behind
    # the TLS-terminating ingress). 0 (default) sends none, so plain-HTTP development is not pinned to HTTPS.
    hsts_max_age_seconds: int = 0

    relay_batch_size: int = 200
    relay_poll_interval_seconds: float = 0.2
    relay_send_timeout_seconds: float = 15.0
    # Hours a published outbox row is kept (marked published, then purged); 0: deleted once the broker has it
    # (the topics are the history). The end-to-end and fault runs keep them: they count what each service emitted.
    relay_retention_hours: int = Field(default=0, ge=0)
    consumer_max_attempts: int = 4
    consumer_backoff_seconds: float = 0.2
    # Kafka's max.poll.interval: a consumer that does not poll for this long is taken for dead and its
    # partitions go to another member. The runner keeps polling (partitions paused) while a slow poll is being
    # applied, so this bounds a consumer that stopped altogether, not one working through a slow batch.
    consumer_max_poll_interval_seconds: float = 300.0
    # After SIGTERM a relay or consumer finishes the batch in hand and leaves; past this many seconds (a broker
    # that went away can keep a commit or a producer's stop waiting without end) its work is cancelled, and a
    # few seconds later the process exits anyway: whatever was not committed is sent or delivered again.
    shutdown_grace_seconds: float = 10.0
    metrics_port: int | None = Field(default=None, description="Port of the relay/consumer metrics endpoint")
    # How long /readyz waits for Kafka to answer (metadata, then the topics' retention) before it reports Kafka
    # unreachable. A broker shared with much else on a loaded host can take longer (docker-compose.host.yml).
    readiness_timeout_seconds: float = 3.0
    # Address the metrics endpoint binds: every interface inside a container of its own (Prometheus scrapes it
    # over the container network), loopback when the container shares the host's network (docker-compose.host.yml).
    metrics_host: str = "0.0.0.0"

    @field_validator("rate_limit_default", "rate_limit_search")
    @classmethod
    def _rate_parses(cls, value: str) -> str:
        parse_rate(value)  # ValueError names the bad string; the service refuses to start
        return value

    @field_validator("rate_limit_scopes")
    @classmethod
    def _scope_rates_parse(cls, value: dict[str, str]) -> dict[str, str]:
        for rate in value.values():
            parse_rate(rate)
        return value

    @field_validator("cors_allow_origins", mode="before")
    @classmethod
    def _origins_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("cors_allow_origins")
    @classmethod
    def _origins_exact(cls, value: list[str]) -> list[str]:
        for origin in value:
            # An allow-list, not a pattern: "*" would let every site's scripts read personal data.
            if origin == "*" or not origin.startswith(("https://", "http://")) or origin.endswith("/"):
                raise ValueError(f"CORS origin must be scheme://host[:port] without a path: {origin!r}")
        return value

    @model_validator(mode="after")
    def _fill_shared_defaults(self) -> ServiceSettings:
        if not self.database_url:
            self.database_url = f"{pg_server_url()}/{self.service_name}"
        if not self.kafka_bootstrap_servers:
            self.kafka_bootstrap_servers = kafka_bootstrap_servers()
        if self.jwt_public_key_file is None and self.jwt_jwks_url is None:
            self.jwt_public_key_file = state_dir() / "keys" / "dev-jwt-public.pem"
        if self.environment == "production":
            self.refuse_placeholder_secrets()
        return self

    def kafka_security(self) -> KafkaSecurity:
        """This service's Kafka credentials: its own settings, else the shared KENCANA_KAFKA_* ones."""
        shared = KafkaSecurity.from_env()
        own = {
            "KENCANA_KAFKA_SECURITY_PROTOCOL": self.kafka_security_protocol or shared.protocol,
            "KENCANA_KAFKA_SASL_MECHANISM": self.kafka_sasl_mechanism or shared.mechanism,
            "KENCANA_KAFKA_SASL_USERNAME": self.kafka_sasl_username or shared.username,
            "KENCANA_KAFKA_SASL_PASSWORD": self.kafka_sasl_password
            or (
                _read_secret(self.kafka_sasl_password_file)
                if self.kafka_sasl_password_file
                else shared.password
            ),
            "KENCANA_KAFKA_SSL_CAFILE": self.kafka_ssl_cafile or shared.cafile,
        }
        return KafkaSecurity.from_env(own)

    def secrets(self) -> dict[str, str]:
        """Secret values a subclass holds, checked outside dev mode."""
        return {}

    def refuse_placeholder_secrets(self) -> None:
        """Refuse to start in production with a placeholder secret or the dev signing key."""
        for name, value in self.secrets().items():
            if value in PLACEHOLDER_SECRETS or value.startswith("dev-"):
                raise ValueError(f"{name} holds a placeholder secret; set a real one for production")
        if self.jwt_public_key_file is not None and "dev-jwt" in self.jwt_public_key_file.name:
            raise ValueError("jwt_public_key_file points at the dev key; configure the IdP's key or JWKS")

    def topic(self, logical: str) -> str:
        """Physical Kafka topic for a logical one (`kencana.registry`)."""
        return f"{logical}{self.topic_suffix}"
