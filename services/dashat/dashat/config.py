"""Settings of the dashat service (environment variables prefixed DASHAT_)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.config import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DASHAT_", extra="ignore")

    service_name: str = "dashat"
    port: int = 8003
