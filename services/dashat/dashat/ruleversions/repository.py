"""Queries of rule versions."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import date
from typing import Any

from sqlalchemy import delete, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from dashat.enrolment.models import Enrolment, WaitlistEntry
from dashat.enrolment.rules import RuleConfig
from dashat.ruleversions import domain
from dashat.ruleversions.models import RuleVersion


def _stored(row: RuleVersion) -> domain.StoredVersion:
    return domain.StoredVersion(row.version, row.region_prefix, row.effective_from, dict(row.config))


async def all_versions(session: AsyncSession) -> list[RuleVersion]:
    stmt = select(RuleVersion).order_by(RuleVersion.region_prefix.nulls_first(), RuleVersion.effective_from)
    return list((await session.execute(stmt)).scalars())


async def stored_versions(session: AsyncSession) -> list[domain.StoredVersion]:
    """Every stored version (a few dozen at most: one per region and change), for deciding many places.

    Read once per poll while `configs_remembered`."""
    remembered: dict[str, Any] | None = session.info.get(_CONFIGS)
    if remembered is not None and _ALL in remembered:
        stored: list[domain.StoredVersion] = remembered[_ALL]
        return stored
    stored = [_stored(row) for row in await all_versions(session)]
    if remembered is not None:
        remembered[_ALL] = stored
    return stored


async def longest_breastfeeding_months(session: AsyncSession, on: date) -> int:
    """The longest breastfeeding age limit (`ibu_menyusui_baby_months`) of any version that may decide on a day,
    wherever: no baby older than that makes a mother a target that day."""
    versions = [domain.SEED, *(v for v in await stored_versions(session) if v.effective_from <= on)]
    return max(domain.to_config(v).ibu_menyusui_baby_months for v in versions)


# `session.info` key of a poll's rule configurations (see `remember_configs`), and in it, of every version.
_CONFIGS = "dashat.rule_configs"
_ALL = "all"


@contextlib.contextmanager
def configs_remembered(session: AsyncSession) -> Iterator[None]:
    """Keep the configurations `config_for` reads while a consumer's poll is applied (forgotten after it).

    A poll decides for many people of the same villages; reading the versions again for each was a tenth of
    a stunting detection's handling. Nothing in a poll writes a version, and one written meanwhile by the API
    applies from the next poll, as it would have had the poll run a moment earlier. The versions themselves are
    read once per poll and picked from for each village (a rehearsal poll names a hundred villages: a query
    for each was a fifth of what its placements cost).
    """
    session.info[_CONFIGS] = {}
    try:
        yield
    finally:
        session.info.pop(_CONFIGS, None)


async def config_for(session: AsyncSession, village_code: str | None, on: date) -> RuleConfig:
    """The rules deciding for a place on a day: its own prefixes' versions and the national ones, picked."""
    remembered: dict[Any, Any] | None = session.info.get(_CONFIGS)
    if remembered is not None:
        config: RuleConfig | None = remembered.get((village_code, on))
        if config is None:
            picked = domain.pick(await stored_versions(session), village_code, on)
            config = remembered[(village_code, on)] = domain.to_config(picked)
        return config
    return await _config_for(session, village_code, on)


async def _config_for(session: AsyncSession, village_code: str | None, on: date) -> RuleConfig:
    prefixes = domain.candidate_prefixes(village_code) if village_code else []
    stmt = select(RuleVersion).where(
        or_(RuleVersion.region_prefix.is_(None), RuleVersion.region_prefix.in_(prefixes)),
        RuleVersion.effective_from <= on,
    )
    rows = [_stored(row) for row in (await session.execute(stmt)).scalars()]
    return domain.to_config(domain.pick(rows, village_code, on))


async def get(session: AsyncSession, version: str) -> RuleVersion | None:
    return await session.get(RuleVersion, version)


async def exists_for(session: AsyncSession, region_prefix: str | None, effective_from: date) -> bool:
    region = (
        RuleVersion.region_prefix.is_(None)
        if region_prefix is None
        else RuleVersion.region_prefix == region_prefix
    )
    stmt = select(exists().where(region, RuleVersion.effective_from == effective_from))
    return bool((await session.execute(stmt)).scalar())


async def is_used(session: AsyncSession, version: str) -> bool:
    """Whether any enrolment, exit or waiting entry was decided under this version."""
    stmt = select(
        or_(
            exists().where(or_(Enrolment.rule_version == version, Enrolment.exit_rule_version == version)),
            exists().where(WaitlistEntry.rule_version == version),
        )
    )
    return bool((await session.execute(stmt)).scalar())


async def remove(session: AsyncSession, version: str) -> None:
    await session.execute(delete(RuleVersion).where(RuleVersion.version == version))
