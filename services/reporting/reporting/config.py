"""Settings of the reporting service (environment variables prefixed REPORTING_)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.config import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="REPORTING_", extra="ignore")

    service_name: str = "reporting"
    port: int = 8004
    # Longest pause between two rollups of queued fact deltas (how stale facts get when the projector is idle
    # right after a burst); a rollup that finds a full batch runs again at once.
    fact_rollup_interval_seconds: float = 0.5
