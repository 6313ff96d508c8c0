"""Registry-specific request dependencies: the PII vault and the purpose of an unmasked read."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from registry.common import NIK_SEARCH, PII_READ, READ, WRITE
from registry.pii import PiiVault
from shared.auth import Principal, require_scopes
from shared.errors import ValidationFailed
from shared.web.etag import IfMatch as IfMatch


async def get_vault(request: Request) -> PiiVault:
    # async: FastAPI runs a plain `def` dependency in its thread pool, a thread hop on every request.
    vault: PiiVault = request.app.state.vault
    return vault


VaultDep = Annotated[PiiVault, Depends(get_vault)]
Reader = Annotated[Principal, require_scopes(READ)]
Writer = Annotated[Principal, require_scopes(WRITE)]
NikSearcher = Annotated[Principal, require_scopes(READ, NIK_SEARCH)]


async def purpose_of(
    principal: Reader,
    x_purpose: Annotated[
        str | None,
        Header(
            description="Why NIK/KK numbers are read unmasked (required with registry:pii:read; logged)",
            examples=["verifikasi bansos"],
        ),
    ] = None,
) -> str | None:
    """The purpose of an unmasked read: required from callers holding `registry:pii:read` (422 without it)."""
    if not principal.has(PII_READ):
        return None
    if x_purpose is None or not x_purpose.strip():
        raise ValidationFailed(
            "reading unmasked NIK/KK numbers requires an X-Purpose header",
            field="header.X-Purpose",
            rule="pii.purpose_required",
        )
    return x_purpose.strip()[:200]


PurposeDep = Annotated[str | None, Depends(purpose_of)]


async def search_purpose_of(
    principal: NikSearcher,
    x_purpose: Annotated[
        str | None,
        Header(
            description="Why a person is looked up by NIK (always required; logged with every search)",
            examples=["verifikasi bansos"],
        ),
    ] = None,
) -> str:
    """The purpose of a NIK search: always required (422 without it), as for an unmasked read."""
    if x_purpose is None or not x_purpose.strip():
        raise ValidationFailed(
            "searching by NIK requires an X-Purpose header",
            field="header.X-Purpose",
            rule="pii.purpose_required",
        )
    return x_purpose.strip()[:200]


SearchPurposeDep = Annotated[str, Depends(search_purpose_of)]
