"""Rule version use cases: list, look up, add, withdraw (each commits once)."""

from __future__ import annotations

import secrets
from datetime import date

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from dashat.enrolment.rules import RuleConfig
from dashat.ruleversions import domain
from dashat.ruleversions import repository as repo
from dashat.ruleversions.models import RuleVersion
from dashat.ruleversions.schemas import RuleVersionCreate
from shared.auth import Principal
from shared.clock import business_today
from shared.errors import Conflict, Forbidden, NotFound, ValidationFailed
from shared.regions import is_within
from shared.regions.scope import parse_region

RULES_SCOPE = "dashat:rules"


RuleVersionLike = RuleVersion | domain.StoredVersion
"""A stored version, or the code default (`domain.SEED`: not stored, not deletable)."""


async def list_versions(session: AsyncSession, region: str | None = None) -> list[RuleVersionLike]:
    """The seed and every stored version; with `region`, only those that can decide somewhere inside it."""
    prefix = parse_region(region)
    async with session.begin():
        rows = await repo.all_versions(session)
    out: list[RuleVersionLike] = [domain.SEED, *rows]
    if prefix is None:
        return out
    return [
        v
        for v in out
        if v.region_prefix is None or is_within(prefix, v.region_prefix) or is_within(v.region_prefix, prefix)
    ]


async def get_version(session: AsyncSession, version: str) -> RuleVersionLike:
    if version == domain.SEED.version:
        return domain.SEED
    async with session.begin():
        row = await repo.get(session, version)
    if row is None:
        raise NotFound("rule version not found")
    return row


async def effective(session: AsyncSession, village_code: str, on: date | None) -> RuleVersionLike:
    """The version that decides for a village on a day (today by default)."""
    code = parse_region(village_code, field="query.village_code")
    if code is None:  # "" or ID: the nation is no village
        raise ValidationFailed(
            "a village code is required", field="query.village_code", rule="region.village_required"
        )
    async with session.begin():
        config = await repo.config_for(session, code, on or business_today())
        row = await repo.get(session, config.version)
    return domain.SEED if row is None else row


def _check_config(body: RuleVersionCreate) -> None:
    c = body.config
    if c.balita_age_out_months < c.baduta_age_out_months:
        raise ValidationFailed(
            "the balita age limit cannot be below the baduta one",
            field="body.config.balita_age_out_months",
            rule="rules.balita_before_baduta",
        )


def _region(body: RuleVersionCreate, principal: Principal) -> str | None:
    prefix = parse_region(body.region_prefix, field="body.region_prefix")
    # An officer sets rules for their own region and inside it; national rules need a national officer.
    if principal.region is not None and (prefix is None or not is_within(prefix, principal.region)):
        raise Forbidden(
            "rule versions can only be set inside the caller's region",
            extra={"region": principal.region},
        )
    return prefix


async def create(session: AsyncSession, body: RuleVersionCreate, principal: Principal) -> RuleVersion:
    """Store a new version; it decides from `effective_from` on, in its region, until a later one does."""
    prefix = _region(body, principal)
    _check_config(body)
    if body.effective_from < business_today():
        # Decisions already made must stay explained by the versions that made them.
        raise ValidationFailed(
            "a rule version cannot take effect in the past",
            field="body.effective_from",
            rule="rules.effective_in_past",
        )
    config = RuleConfig.from_json("x", body.config.model_dump()).to_json()
    version = body.version or (
        f"dashat-enrolment-{prefix or 'national'}-{body.effective_from:%Y%m%d}-{secrets.token_hex(2)}"
    )
    if version == domain.SEED.version:
        raise Conflict("the built-in version id is taken", rule="rules.version_taken")
    row = RuleVersion(
        version=version,
        region_prefix=prefix,
        effective_from=body.effective_from,
        config=config,
        note=body.note,
        created_by=principal.sub,
    )
    try:
        async with session.begin():
            if await repo.get(session, version) is not None:
                raise Conflict(f"rule version {version} exists", rule="rules.version_taken")
            if await repo.exists_for(session, prefix, body.effective_from):
                raise Conflict(
                    "a version for this region already takes effect on that day",
                    rule="rules.same_region_and_day",
                )
            session.add(row)
    except IntegrityError as exc:
        raise Conflict("a concurrent request stored the same version", rule="rules.version_taken") from exc
    return row


async def withdraw(session: AsyncSession, version: str, principal: Principal) -> None:
    """Delete a version that has not taken effect yet (so no decision can have used it)."""
    if version == domain.SEED.version:
        raise Conflict("the built-in version cannot be withdrawn", rule="rules.builtin")
    async with session.begin():
        row = await repo.get(session, version)
        if row is None:
            raise NotFound("rule version not found")
        if principal.region is not None and (
            row.region_prefix is None or not is_within(row.region_prefix, principal.region)
        ):
            raise Forbidden("rule versions can only be withdrawn inside the caller's region")
        if row.effective_from <= business_today() or await repo.is_used(session, version):
            raise Conflict(
                "the version has taken effect: it is kept to explain the decisions made under it",
                rule="rules.immutable_once_effective",
            )
        await repo.remove(session, version)
