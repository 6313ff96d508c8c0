"""Settings of the uppka service (environment variables prefixed UPPKA_)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.config import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="UPPKA_", extra="ignore")

    service_name: str = "uppka"
    port: int = 8002
