"""Settings of the registry service (environment variables prefixed REGISTRY_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.config import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="REGISTRY_", extra="ignore")

    service_name: str = "registry"
    port: int = 8001
    # NIK/KK encryption keys: `kid:base64key,kid:base64key` or a JSON object {"kid": "base64key"}; the first is
    # the current key (new writes), the others only decrypt (rotation). 32-byte keys (AES-256-GCM).
    # Empty in dev/test: a random dev key pair is generated once under the state dir (kid "dev-1").
    nik_encryption_keys: str = ""
    # HMAC-SHA256 key of the blind index used for NIK/KK lookup and uniqueness (base64, >= 32 bytes).
    nik_index_key: str = ""
    # Bulk import: files up to this many rows are processed inside the request; larger ones become a job.
    import_sync_max_rows: int = 1000
    # Rows per chunk (whole families): one transaction, one commit, one progress step each.
    import_chunk_rows: int = 5000
    # The import worker runs in the API process; off for processes that must not pick up jobs.
    import_worker_enabled: bool = True
    import_poll_interval_seconds: float = 1.0
    # A running job whose heartbeat is older than this is taken to be abandoned (its worker died) and resumed.
    import_lease_seconds: float = 60.0
    import_max_bytes: int = 200 * 1024 * 1024
    # The daily age sweep (PUS and KRS re-evaluated on birthdays) runs in the API process from this hour (0-23,
    # Asia/Jakarta) on; one replica at a time (advisory lock). Off for processes that must not sweep.
    age_sweep_enabled: bool = True
    age_sweep_hour: int = Field(default=1, ge=0, le=23)

    def secrets(self) -> dict[str, str]:
        return {"nik_encryption_keys": self.nik_encryption_keys, "nik_index_key": self.nik_index_key}
