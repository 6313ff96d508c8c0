"""JWT bearer authentication: pinned asymmetric algorithm, issuer/audience/expiry checks, scopes, region scope."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.config import ServiceSettings, state_dir
from shared.errors import Forbidden, NotFound, Unauthorized
from shared.regions import is_within, normalize_code

DEV_PRIVATE_KEY = "dev-jwt-private.pem"
DEV_PUBLIC_KEY = "dev-jwt-public.pem"
# A verified token is trusted again for this long (never past its expiry); it bounds how long a key removed
# from the JWKS still admits its tokens, like PyJWKClient's own key cache (300 s).
VERIFIED_TOKEN_SECONDS = 300.0
VERIFIED_TOKENS_MAX = 4096
# A dotted village code (`15.71.01.1001`) is 13 characters; anything much longer is not a code.
MAX_REGION_CHARS = 32
# Where the route guard (shared/web/guard.py) leaves the principal it verified, for `current_principal`.
PRINCIPAL_SCOPE_KEY = "kencana.principal"


@dataclass(frozen=True)
class Principal:
    """Who is calling: subject, scopes and an optional region prefix (Kemendagri code) they are limited to."""

    sub: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    region: str | None = None

    def has(self, scope: str) -> bool:
        return scope in self.scopes

    def can_access(self, region_code: str | None) -> bool:
        """Whether a record located at `region_code` lies inside this principal's region."""
        if self.region is None:
            return True
        if region_code is None:
            return False
        return is_within(region_code, self.region)

    def ensure_access(self, region_code: str | None, what: str = "resource") -> None:
        """404 (not 403) for records outside the region, so their existence does not leak."""
        if not self.can_access(region_code):
            raise NotFound(f"{what} not found")


def ensure_dev_keys(directory: Path | None = None) -> tuple[Path, Path]:
    """Create the local development key pair once (ES256); production keys come from the IdP."""
    keys = directory or state_dir() / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    private, public = keys / DEV_PRIVATE_KEY, keys / DEV_PUBLIC_KEY
    if not private.exists() or not public.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        tmp = keys / f".{uuid.uuid4().hex}.pem"
        tmp.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        tmp.chmod(0o600)
        public.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        tmp.replace(private)
    return private, public


def issue_dev_token(
    *,
    scopes: list[str],
    region: str | None = None,
    sub: str = "dev-user",
    ttl_seconds: int = 3600,
    issuer: str = "kencana-dev",
    audience: str = "kencana",
    private_key_file: Path | None = None,
) -> str:
    """Sign a development token with the local key pair."""
    private = private_key_file or ensure_dev_keys()[0]
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": sub,
        "iat": now,
        "nbf": now,
        "exp": now + timedelta(seconds=ttl_seconds),
        "jti": uuid.uuid4().hex,
        "scope": " ".join(scopes),
    }
    if region:
        claims["region"] = region
    return jwt.encode(claims, private.read_bytes(), algorithm="ES256")


class TokenVerifier:
    """Verifies bearer tokens against one pinned algorithm and a key from a file or a JWKS URL."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.algorithm = settings.jwt_algorithm
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.max_ttl = settings.jwt_max_ttl_seconds
        self.leeway = settings.jwt_leeway_seconds
        self._jwks = (
            jwt.PyJWKClient(settings.jwt_jwks_url, cache_keys=True) if settings.jwt_jwks_url else None
        )
        self._key_file = settings.jwt_public_key_file
        self._key: Any = None
        # Token text -> (principal, exp claim, verified at): a caller sends the same token for its whole life,
        # and the signature check was most of a request's authentication cost.
        self._verified: dict[str, tuple[Principal, float, float]] = {}

    def _static_key(self) -> Any:
        if self._key is None:
            if self._key_file is None or not self._key_file.exists():
                if self._key_file is not None and self._key_file.name == DEV_PUBLIC_KEY:
                    ensure_dev_keys(self._key_file.parent)
                else:
                    raise Unauthorized("token verification key is not configured")
            assert self._key_file is not None
            self._key = serialization.load_pem_public_key(self._key_file.read_bytes())
        return self._key

    async def verify(self, token: str) -> Principal:
        """Decode and check a token; any failure is a 401."""
        now = time.time()
        known = self._verified.get(token)
        # Expired the way PyJWT judges it (exp <= now - leeway): verified again, to fail as it always has.
        if known is not None and known[1] > now - self.leeway and now - known[2] < VERIFIED_TOKEN_SECONDS:
            return known[0]
        principal, exp = await self._verify(token)
        if len(self._verified) >= VERIFIED_TOKENS_MAX:
            self._verified.clear()
        self._verified[token] = (principal, exp, now)
        return principal

    async def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized("malformed token") from exc
        if header.get("alg") != self.algorithm:
            raise Unauthorized(f"token algorithm must be {self.algorithm}")
        if self._jwks is not None:
            try:
                signing = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
            except jwt.PyJWTError as exc:
                raise Unauthorized("token key not found") from exc
            key = signing.key
        else:
            key = self._static_key()
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[self.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("token expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise Unauthorized("token audience not accepted") from exc
        except jwt.InvalidIssuerError as exc:
            raise Unauthorized("token issuer not accepted") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized("invalid token") from exc
        if int(claims["exp"]) - int(claims["iat"]) > self.max_ttl:
            raise Unauthorized("token lifetime exceeds the allowed maximum")
        return principal_of(claims), float(claims["exp"])


# Longest claim values we look at: a scope list of a real IdP is far below this, a region code is 13 characters.
MAX_SUB_CHARS = 255
MAX_SCOPE_CHARS = 4096


def principal_of(claims: dict[str, Any]) -> Principal:
    """The caller the verified claims describe; a claim of the wrong shape is a 401, never a 500.

    `sub` must be a non-empty string (it keys rate limits and idempotency); `scope`/`scp` a space-separated
    string or a list of strings (RFC 8693 §4.2 and the list form some IdPs emit); `region`, when present, a
    Kemendagri code of 2, 4, 6 or 10 digits, dotted or not. An empty or malformed region is refused rather
    than read as "national": a broken IdP mapping must not widen what a regional officer sees.
    """
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.strip() or len(sub) > MAX_SUB_CHARS:
        raise Unauthorized("token subject (sub) must be a non-empty string")
    raw_scopes = claims.get("scope") if claims.get("scope") is not None else claims.get("scp")
    if raw_scopes is None:
        raw_scopes = ""
    if isinstance(raw_scopes, str) and len(raw_scopes) <= MAX_SCOPE_CHARS:
        scopes = frozenset(raw_scopes.split())
    elif (
        isinstance(raw_scopes, list)
        and all(isinstance(s, str) and s and not any(c.isspace() for c in s) for s in raw_scopes)
        and sum(len(s) + 1 for s in raw_scopes) <= MAX_SCOPE_CHARS
    ):
        scopes = frozenset(raw_scopes)
    else:
        raise Unauthorized("token scope claim must be a string or a list of strings")
    region: str | None = None
    if "region" in claims and claims["region"] is not None:
        raw_region = claims["region"]
        if not isinstance(raw_region, str) or len(raw_region) > MAX_REGION_CHARS:
            raise Unauthorized("token region claim must be a region code")
        try:
            region = normalize_code(raw_region)
        except ValueError as exc:
            raise Unauthorized("token region claim must be a region code") from exc
    return Principal(sub=sub, scopes=scopes, region=region)


_bearer = HTTPBearer(auto_error=False)


async def current_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """The authenticated caller; 401 without a valid bearer token."""
    verified = request.scope.get(PRINCIPAL_SCOPE_KEY)
    if isinstance(verified, Principal):
        return verified  # the route guard checked this request's token before anything else
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("bearer token required")
    verifier: TokenVerifier = request.app.state.token_verifier
    return await verifier.verify(credentials.credentials)


def missing_scopes(principal: Principal, scopes: tuple[str, ...] | frozenset[str]) -> None:
    """403 naming the scopes the caller lacks, if any."""
    missing = sorted(s for s in scopes if not principal.has(s))
    if missing:
        raise Forbidden(f"missing scope: {' '.join(missing)}", extra={"missing_scopes": missing})


def require_scopes(*scopes: str) -> Any:
    """Dependency: the caller must hold every scope named (403 otherwise)."""

    async def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        missing_scopes(principal, scopes)
        return principal

    # Read by the route guard, which checks these scopes before preconditions and body validation.
    dependency.required_scopes = frozenset(scopes)  # type: ignore[attr-defined]
    return Depends(dependency)
