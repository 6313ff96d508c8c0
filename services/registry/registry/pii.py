"""NIK and KK numbers at rest: AES-256-GCM with a key id for rotation, plus an HMAC-SHA256 blind index.

Ciphertexts are bound (associated data) to the kind of number and the row that owns it, so a ciphertext copied
into another row or column does not decrypt. The blind index is what lookups and the uniqueness constraint use:
equal numbers give equal index values, but the index reveals nothing without the index key. The index key
cannot rotate without re-indexing every row, which is why it is a separate key from the encryption keys.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from registry.config import Settings
from shared.config import state_dir

Kind = Literal["nik", "kk"]
NONCE_BYTES = 12
DEV_KID = "dev-1"


@dataclass(frozen=True)
class Sealed:
    """An encrypted number: the key id and nonce||ciphertext."""

    key_id: str
    blob: bytes


def _parse_keys(raw: str) -> list[tuple[str, bytes]]:
    raw = raw.strip()
    pairs: list[tuple[str, str]]
    if raw.startswith("{"):
        pairs = list(json.loads(raw).items())
    else:
        pairs = []
        for part in raw.split(","):
            kid, sep, key = part.strip().partition(":")
            if not sep or not kid:
                raise ValueError("REGISTRY_NIK_ENCRYPTION_KEYS must be `kid:base64key,...`")
            pairs.append((kid, key))
    keys = []
    for kid, key in pairs:
        value = base64.b64decode(key)
        if len(value) != 32:
            raise ValueError(f"encryption key {kid!r} must be 32 bytes (AES-256)")
        keys.append((kid, value))
    if not keys:
        raise ValueError("no encryption key configured")
    return keys


def _dev_keys_file() -> Path:
    return state_dir() / "keys" / "registry-pii-dev.json"


def _dev_keys() -> tuple[str, str]:
    """Random dev keys made once per checkout (never a constant in the code); refused in production."""
    path = _dev_keys_file()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "encryption": f"{DEV_KID}:{base64.b64encode(secrets.token_bytes(32)).decode()}",
            "index": "dev-" + base64.b64encode(secrets.token_bytes(32)).decode(),
        }
        tmp = path.with_suffix(f".{uuid.uuid4().hex}.tmp")
        tmp.write_text(json.dumps(data))
        tmp.chmod(0o600)
        os.replace(tmp, path)
    data = json.loads(path.read_text())
    return str(data["encryption"]), str(data["index"])


class PiiVault:
    """Encrypts, decrypts and indexes NIK/KK numbers with the configured keys."""

    def __init__(self, keys: list[tuple[str, bytes]], index_key: bytes) -> None:
        if len(index_key) < 32:
            raise ValueError("the blind-index key must be at least 32 bytes")
        self.current_kid = keys[0][0]
        self._aead = {kid: AESGCM(key) for kid, key in keys}
        self._index_key = index_key
        # Keyed once: copying a keyed HMAC skips re-deriving the padded key for every number of a batch.
        self._index_base = hmac.new(index_key, digestmod=hashlib.sha256)

    @classmethod
    def from_settings(cls, settings: Settings) -> PiiVault:
        enc, idx = settings.nik_encryption_keys, settings.nik_index_key
        if not enc or not idx:
            if settings.environment == "production":
                raise ValueError("REGISTRY_NIK_ENCRYPTION_KEYS and REGISTRY_NIK_INDEX_KEY are required")
            dev_enc, dev_idx = _dev_keys()
            enc, idx = enc or dev_enc, idx or dev_idx
        return cls(_parse_keys(enc), base64.b64decode(idx.removeprefix("dev-")))

    @staticmethod
    def _aad(kind: Kind, owner_id: uuid.UUID) -> bytes:
        return f"kencana-registry:{kind}:{owner_id}".encode()

    def seal(self, kind: Kind, value: str, owner_id: uuid.UUID) -> Sealed:
        """Encrypt with the current key."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        ct = self._aead[self.current_kid].encrypt(nonce, value.encode(), self._aad(kind, owner_id))
        return Sealed(self.current_kid, nonce + ct)

    def open(self, kind: Kind, sealed: Sealed, owner_id: uuid.UUID) -> str:
        """Decrypt with the key the value was sealed with."""
        aead = self._aead.get(sealed.key_id)
        if aead is None:
            raise LookupError(f"encryption key {sealed.key_id!r} is not configured")
        nonce, ct = sealed.blob[:NONCE_BYTES], sealed.blob[NONCE_BYTES:]
        return aead.decrypt(nonce, ct, self._aad(kind, owner_id)).decode()

    def index(self, kind: Kind, value: str) -> bytes:
        """Keyed blind index of a normalised number (equal numbers -> equal index)."""
        h = self._index_base.copy()
        h.update(f"{kind}:{value}".encode())
        return h.digest()

    def seal_many(self, kind: Kind, items: Sequence[tuple[str, uuid.UUID]]) -> list[bytes]:
        """`seal` for many (number, owner) pairs with the current key: the blobs, all under `current_kid`."""
        aead = self._aead[self.current_kid]
        nonces = secrets.token_bytes(NONCE_BYTES * len(items))
        prefix = f"kencana-registry:{kind}:"
        out = []
        for i, (value, owner_id) in enumerate(items):
            nonce = nonces[i * NONCE_BYTES : (i + 1) * NONCE_BYTES]
            out.append(nonce + aead.encrypt(nonce, value.encode(), f"{prefix}{owner_id}".encode()))
        return out

    def index_many(self, kind: Kind, values: Iterable[str]) -> list[bytes]:
        """`index` for many numbers (same bytes)."""
        return [self.index(kind, value) for value in values]

    def needs_rotation(self, sealed: Sealed) -> bool:
        """True when the value is sealed with an older key (a re-encryption job can find these)."""
        return sealed.key_id != self.current_kid
