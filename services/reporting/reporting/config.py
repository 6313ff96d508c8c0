"""Settings of the reporting service (environment variables prefixed REPORTING_)."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from shared import uppka_reporting
from shared.config import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="REPORTING_", extra="ignore")

    service_name: str = "reporting"
    port: int = 8004
    # Longest pause between two rollups of queued fact deltas (how stale facts get when the projector is idle
    # right after a burst); a rollup that finds a full batch runs again at once.
    fact_rollup_interval_seconds: float = 0.5
    # When an UPPKA monthly report is due (the same rule and default as uppka's UPPKA_REPORT_DUE_DAY; set both
    # together): the day of the following month; "today" is the programme's business date (shared/clock.py, WIB).
    uppka_report_due_day: int = Field(default=uppka_reporting.REPORT_DUE_DAY, ge=1, le=28)

    # Curated streams for other ministries (reporting/streams, docs/ministry-streams.md).
    # The master key every consumer's pseudonym key is derived from (HMAC per consumer name): from the secret
    # store in production, never logged, never stored in the database. Changing it changes every pseudonym of
    # every stream (a break of the public contract: see the runbook before touching it).
    streams_pseudonym_key: str = "dev-streams-pseudonym-key"
    # The key webhook signing secrets are encrypted with at rest (AES-256-GCM; the database holds only the sealed
    # form, so a copy of the database cannot forge a ministry's webhooks). From the secret store in production.
    webhook_secret_key: str = "dev-webhook-secret-key"  # noqa: S105 (the dev placeholder production refuses)
    # Webhook targets: production sends only https to public addresses; dev and test also allow http to
    # loopback (a receiver on the developer's machine). None: allowed outside production.
    webhook_allow_loopback: bool | None = None
    webhook_max_attempts: int = Field(default=10, ge=1)
    webhook_backoff_base_seconds: float = Field(default=5.0, gt=0)
    webhook_backoff_max_seconds: float = Field(default=3600.0, gt=0)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    webhook_concurrency: int = Field(default=16, ge=1)
    webhook_poll_interval_seconds: float = Field(default=1.0, gt=0)

    def secrets(self) -> dict[str, str]:
        return {
            "streams_pseudonym_key": self.streams_pseudonym_key,
            "webhook_secret_key": self.webhook_secret_key,
        }

    @model_validator(mode="after")
    def _webhook_targets(self) -> Settings:
        if self.webhook_allow_loopback is None:
            self.webhook_allow_loopback = self.environment != "production"
        elif self.webhook_allow_loopback and self.environment == "production":
            raise ValueError(
                "webhook_allow_loopback must be off in production (https to public addresses only)"
            )
        return self
