"""Settings of the reporting service (environment variables prefixed REPORTING_)."""

from __future__ import annotations

from pydantic import Field
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
    # together): the day of the following month, and the timezone where "today" is decided.
    uppka_report_due_day: int = Field(default=uppka_reporting.REPORT_DUE_DAY, ge=1, le=28)
    timezone: str = uppka_reporting.PROGRAMME_TIMEZONE
