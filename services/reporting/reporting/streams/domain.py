"""Pure rules of the curated streams: profiles, pseudonyms, curation, webhook signatures, retries, targets.

No I/O, no await: unit-tested in tests/unit/test_streams_domain.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import random
import re
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, ConfigDict, Field

from reporting.streams.contract import BY_NAME, BY_SOURCE, AgeOn, PublicType, Ref, YearsOld
from shared.ages import BADUTA_MONTHS, BALITA_MONTHS, completed_months
from shared.errors import ValidationFailed

# Who may receive what. Health values are "data pribadi yang bersifat spesifik" under UU 27/2022 (PDP) art. 4(2):
# they travel only to a consumer whose legal basis is a health mandate. Which basis covers which ministry is the
# data protection officer's decision, written here so that a profile cannot ask for more than its basis allows.
LegalBasis = Literal["health_surveillance", "nutrition_programme", "social_protection", "regional_planning"]
CLINICAL_BASES: frozenset[str] = frozenset({"health_surveillance", "nutrition_programme"})

AgeGranularity = Literal["months", "band"]
RegionLevel = Literal["village", "district", "regency"]
REGION_LENGTH: dict[str, int] = {"village": 13, "district": 8, "regency": 5}

CONSUMER_NAME = re.compile(r"^[a-z][a-z0-9-]{2,39}$")
SOURCE = "/kencana/public"
CONTENT_TYPE = "application/cloudevents+json"
SECRET_PREFIX = "whsec_"  # noqa: S105 (the Standard Webhooks prefix, not a secret)


class Profile(BaseModel):
    """What a consumer receives: event types, each with the optional fields it wants, and the granularity."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    legal_basis: LegalBasis = Field(
        description="The consumer's legal basis; clinical fields need a health one"
    )
    events: dict[str, list[str]] = Field(
        min_length=1,
        description="Public event type (e.g. `child.measured`) -> optional fields it receives besides the core ones",
    )
    age: AgeGranularity = Field(default="band", description="Ages as completed months/years or as bands")
    region: RegionLevel = Field(default="village", description="Level of `region_code` (never RW or RT)")


def check_profile(profile: Profile) -> None:
    """422 naming the first field of the profile that is unknown or not covered by its legal basis."""
    for name, fields in profile.events.items():
        public = BY_NAME.get(name)
        if public is None:
            raise ValidationFailed(
                f"unknown public event type {name!r}; known: {', '.join(sorted(BY_NAME))}",
                field=f"profile.events.{name}",
                rule="public-event-type",
            )
        for i, field in enumerate(fields):
            spec = public.field(field)
            if spec is None or field in public.core:
                raise ValidationFailed(
                    f"{name} has no optional field {field!r}; optional: {', '.join(public.optional)}",
                    field=f"profile.events.{name}[{i}]",
                    rule="public-field",
                )
            if spec.kind == "clinical" and profile.legal_basis not in CLINICAL_BASES:
                raise ValidationFailed(
                    f"{field} is a clinical value; legal basis {profile.legal_basis} does not cover health data",
                    field=f"profile.events.{name}[{i}]",
                    rule="legal-basis",
                )


def check_consumer_name(name: str) -> None:
    if not CONSUMER_NAME.match(name):
        raise ValidationFailed(
            "a consumer name is 3-40 characters of a-z, 0-9 and '-', starting with a letter (it names its topic)",
            field="name",
            rule="consumer-name",
        )


def consumer_key(master_key: str, consumer: str) -> bytes:
    """The consumer's pseudonym key, derived from the master key held in the secret store (never stored)."""
    return hmac.new(
        master_key.encode(), f"kencana-stream-pseudonym:{consumer}".encode(), hashlib.sha256
    ).digest()


def pseudonym(key: bytes, ref: Ref) -> str:
    """HMAC-SHA256(consumer key, kind:id), 128 bits in hex: stable in one stream, unlinkable across streams."""
    return hmac.new(key, f"{ref.kind}:{ref.value}".encode(), hashlib.sha256).hexdigest()[:32]


def public_event_id(key: bytes, internal_event_id: str) -> uuid.UUID:
    """A per-consumer event id: the same internal event curated again gets the same id (consumers dedupe on it),
    and two consumers' ids of one event do not match."""
    raw = bytearray(hmac.new(key, f"event:{internal_event_id}".encode(), hashlib.sha256).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x80  # UUID version 8 (custom), RFC 9562
    raw[8] = (raw[8] & 0x3F) | 0x80
    return uuid.UUID(bytes=bytes(raw))


def child_age_band(months: int) -> str:
    """SSGI/Riskesdas child age groups in completed months: 0-5, 6-11, 12-23 (baduta), 24-59 (balita), 60+."""
    if months < 6:
        return "0-5"
    if months < 12:
        return "6-11"
    if months < BADUTA_MONTHS:
        return "12-23"
    if months < BALITA_MONTHS:
        return "24-59"
    return "60+"


def adult_age_band(years: int) -> str:
    """The '4 Terlalu' cut-offs of the domain README: too young (< 20), 20-34, too old (35 and over)."""
    if years < 20:
        return "<20"
    if years < 35:
        return "20-34"
    return "35+"


def _age_fields(value: AgeOn | YearsOld, granularity: AgeGranularity) -> dict[str, Any]:
    if isinstance(value, AgeOn):
        months = completed_months(value.birth_date, value.on)
        return {"age_months": months} if granularity == "months" else {"age_band": child_age_band(months)}
    if value.years is None:
        return {}
    return (
        {"age_years": value.years} if granularity == "months" else {"age_band": adult_age_band(value.years)}
    )


@dataclass(frozen=True)
class Curated:
    """One public event for one consumer: its id, subject pseudonym, type, time and the whole envelope."""

    event_id: uuid.UUID
    subject: str
    type: str
    time: datetime
    envelope: dict[str, Any]


def curate(
    public: PublicType,
    data: Mapping[str, Any],
    *,
    event_id: str,
    time: datetime,
    profile: Profile,
    key: bytes,
) -> Curated:
    """The consumer's view of an internal event: core fields plus the profile's, coarsened and pseudonymised.

    Only names the profile allows are ever copied (a whitelist), so a field added to an internal event reaches
    no ministry until it is added to the public contract and to a profile.
    """
    wanted = set(public.core) | set(profile.events.get(public.name, ()))
    raw = public.extract(data)
    out: dict[str, Any] = {}
    for spec in public.fields:
        if spec.name not in wanted:
            continue
        value = raw.get(spec.name)
        if spec.kind == "pseudonym":
            out[spec.name] = pseudonym(key, value) if isinstance(value, Ref) else None
        elif spec.kind == "region":
            out[spec.name] = str(value)[: REGION_LENGTH[profile.region]]
        elif spec.kind == "age":
            if isinstance(value, AgeOn | YearsOld):
                out.update(_age_fields(value, profile.age))
        else:
            out[spec.name] = value.isoformat() if isinstance(value, date) else value
    subject = out[public.subject]
    public_id = public_event_id(key, event_id)
    envelope = {
        "specversion": "1.0",
        "id": str(public_id),
        "source": SOURCE,
        "type": public.type,
        "subject": subject,
        "time": time.isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "dataschema": f"urn:kencana:public:{public.name}.v1",
        "data": out,
    }
    return Curated(public_id, subject, public.type, time, envelope)


def public_type_of(internal_type: str) -> PublicType | None:
    return BY_SOURCE.get(internal_type)


# --- webhooks ------------------------------------------------------------------------------------------------


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: `whsec_` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


_SEALED_PREFIX = "v1."


def secret_sealing_key(webhook_secret_key: str) -> bytes:
    """The AES-256 key webhook secrets are sealed with, derived from the configured key (any length)."""
    return hmac.new(webhook_secret_key.encode(), b"kencana-webhook-secret-at-rest", hashlib.sha256).digest()


def seal_secret(key: bytes, subscription_id: uuid.UUID, secret: str) -> str:
    """`v1.` + base64url(nonce | AES-GCM ciphertext). The subscription id is the associated data, so a sealed
    secret copied onto another subscription's row does not open."""
    nonce = secrets.token_bytes(12)
    sealed = AESGCM(key).encrypt(nonce, secret.encode(), subscription_id.bytes)
    return _SEALED_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()


def open_secret(key: bytes, subscription_id: uuid.UUID, stored: str) -> str:
    raw = base64.urlsafe_b64decode(stored.removeprefix(_SEALED_PREFIX))
    return AESGCM(key).decrypt(raw[:12], raw[12:], subscription_id.bytes).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One Standard Webhooks signature: `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    content = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()


def signature_header(valid_secrets: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """`webhook-signature`: one signature per valid secret, space-separated, so during a rotation's overlap a
    receiver holding either the old or the new secret verifies the message."""
    return " ".join(sign(s, msg_id, timestamp, body) for s in valid_secrets)


def retry_delay(attempt: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds before attempt `attempt + 1` after `attempt` failures: exponential, capped, with "equal jitter"
    (half fixed, half random), so receivers coming back from an outage are not hit by every sender at once."""
    ceiling = min(cap, base * 2.0 ** max(attempt - 1, 0))
    jitter: float = (rng or random).uniform(0, ceiling / 2)
    return ceiling / 2 + jitter


def address_refusal(address: str) -> str | None:
    """Why a webhook may not be sent to this IP address, or None: private, loopback, link-local and every other
    range that is not the public internet (cloud metadata at 169.254.169.254 included)."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_private:
        return "private"
    if ip.is_multicast or ip.is_reserved or ip.is_unspecified or not ip.is_global:
        return "not a public address"
    return None


def target_refusal(url: str, addresses: list[str], *, allow_loopback: bool) -> str | None:
    """Why a webhook URL is refused (None: allowed). Production: https to public addresses only (every address
    the name resolves to is checked). Dev (`allow_loopback`): also http, to loopback addresses only."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "an absolute http(s) URL is required"
    if parts.username or parts.password:
        return "credentials in the URL are not allowed"
    if not addresses:
        return "the host does not resolve"
    refusals = {a: address_refusal(a) for a in addresses}
    if allow_loopback and all(r == "loopback" for r in refusals.values()):
        return None
    if parts.scheme != "https":
        return "https is required"
    bad = next(((a, r) for a, r in refusals.items() if r is not None), None)
    if bad is not None:
        return f"the host resolves to a {bad[1]} address ({bad[0]})"
    return None
