"""Use cases of yearly targets per province, with progress derived from the groups."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Principal
from shared.errors import Conflict, NotFound
from shared.events import uppka as ev
from shared.outbox import publish
from shared.web.etag import IfMatchCondition, check_version
from uppka.common import writable_region
from uppka.models import outbox
from uppka.targets import domain
from uppka.targets import repository as repo
from uppka.targets.models import Target
from uppka.targets.schemas import TargetCreate, TargetRead, TargetSummary, TargetUpdate


async def _with_progress(session: AsyncSession, targets: list[Target]) -> list[TargetRead]:
    counts: dict[int, dict[str, int]] = {}
    out = []
    for t in targets:
        if t.year not in counts:
            counts[t.year] = await repo.kampung_kb_groups_active_by_province(session, date(t.year, 12, 31))
        p = domain.progress(t.target_groups, counts[t.year].get(t.province_code, 0))
        read = TargetRead.model_validate(t)
        read.achieved_groups, read.progress_pct, read.reached = p.achieved_groups, p.progress_pct, p.reached
        out.append(read)
    return out


async def create(session: AsyncSession, body: TargetCreate, principal: Principal) -> TargetRead:
    province = writable_region(body.province_code, "province", principal, field="body.province_code")
    async with session.begin():
        if await repo.find(session, body.year, province) is not None:
            raise Conflict(
                "a target for this year and province exists; update it",
                field="body.province_code",
                rule="target.duplicate",
            )
        target = Target(
            id=uuid.uuid4(),
            year=body.year,
            province_code=province,
            target_groups=body.target_groups,
            version=1,
        )
        session.add(target)
        await session.flush()
        await publish(
            session,
            outbox,
            ev.TargetSet(
                target_id=target.id,
                year=target.year,
                province_code=province,
                target_groups=target.target_groups,
            ),
            key=target.id,
        )
        (out,) = await _with_progress(session, [target])
    return out


async def update(
    session: AsyncSession,
    target_id: uuid.UUID,
    body: TargetUpdate,
    principal: Principal,
    expected_version: IfMatchCondition,
) -> TargetRead:
    async with session.begin():
        target = await repo.get(session, target_id, lock=True)
        if target is None or not principal.can_access(target.province_code):
            raise NotFound("target not found")
        check_version(expected_version, target.version)
        if target.target_groups != body.target_groups:
            target.target_groups = body.target_groups
            target.version += 1
            await publish(
                session,
                outbox,
                ev.TargetSet(
                    target_id=target.id,
                    year=target.year,
                    province_code=target.province_code,
                    target_groups=body.target_groups,
                ),
                key=target.id,
            )
            await session.flush()
        (out,) = await _with_progress(session, [target])
    return out


async def read(session: AsyncSession, target_id: uuid.UUID, principal: Principal) -> TargetRead:
    async with session.begin():
        target = await repo.get(session, target_id)
        if target is None or not principal.can_access(target.province_code):
            raise NotFound("target not found")
        (out,) = await _with_progress(session, [target])
    return out


async def list_targets(session: AsyncSession, principal: Principal, year: int | None) -> list[TargetRead]:
    """Targets the caller may see: province-level or national callers only (a regency sees none)."""
    async with session.begin():
        province = principal.region if principal.region and "." not in principal.region else None
        if principal.region and province is None:
            return []
        rows = await repo.list_targets(session, year=year, provinces=province)
        return await _with_progress(session, rows)


async def summary(session: AsyncSession, principal: Principal, year: int) -> TargetSummary:
    """Totals of one year over the targets the caller may see."""
    return _summarise(year, await list_targets(session, principal, year))


def _summarise(year: int, rows: list[TargetRead]) -> TargetSummary:
    target = sum(r.target_groups for r in rows)
    achieved = sum(r.achieved_groups for r in rows)
    p = domain.progress(target, achieved)
    return TargetSummary(
        year=year,
        provinces=len(rows),
        target_groups=target,
        achieved_groups=achieved,
        progress_pct=p.progress_pct,
    )
