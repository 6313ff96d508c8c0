"""Settings of the uppka service (environment variables prefixed UPPKA_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared import uppka_reporting
from shared.config import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="UPPKA_", extra="ignore")

    service_name: str = "uppka"
    port: int = 8002
    # Configurable rule: a monthly report is late when submitted after this day of the following month.
    # The default is the one reporting uses (shared/uppka_reporting.py); change both together.
    report_due_day: int = Field(default=uppka_reporting.REPORT_DUE_DAY, ge=1, le=28)
    report_rule_version: str = "uppka-report-due-2025.1"
    # The daily category sweep (remaja from 10 to 24, lansia from 60: members' categories follow birthdays) runs
    # in the consumer process from this hour (0-23, Asia/Jakarta) on, after the registry's age sweep (01:00);
    # one replica at a time (advisory lock). Off for processes that must not sweep.
    category_sweep_enabled: bool = True
    category_sweep_hour: int = Field(default=2, ge=0, le=23)
