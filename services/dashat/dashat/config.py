"""Settings of the dashat service (environment variables prefixed DASHAT_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.config import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DASHAT_", extra="ignore")

    service_name: str = "dashat"
    port: int = 8003
    # The consumer sweeps at start and then this often; the sweep is idempotent within a day.
    sweep_interval_seconds: float = Field(default=3600, gt=0)
