"""Kitchen use cases: each opens the transaction, writes the outbox row and commits once."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from dashat.common import norm_rw
from dashat.enrolment import placement
from dashat.kitchens import repository as repo
from dashat.kitchens.models import Kitchen
from dashat.kitchens.schemas import KitchenClose, KitchenCreate, KitchenUpdate
from dashat.models import outbox
from dashat.people import repository as people
from shared.auth import Principal
from shared.db import new_id
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.events import dashat as ev
from shared.outbox import publish
from shared.regions import level_of_code, load_regions
from shared.regions.scope import parse_region
from shared.web.etag import IfMatchCondition, check_version
from shared.web.pagination import PageParams


def _village(code: str, principal: Principal) -> str:
    normal = parse_region(code, "body.village_code")
    region = load_regions().get(normal)
    if region is None:
        raise ValidationFailed(
            f"{normal} is not a known region", field="body.village_code", rule="region.unknown"
        )
    if region.level != "village":
        raise ValidationFailed(
            f"{normal} is a {region.level}, not a village",
            field="body.village_code",
            rule="region.not_village",
        )
    if not principal.can_access(normal):
        raise ValidationFailed(
            "the village lies outside your region", field="body.village_code", rule="region.outside_scope"
        )
    return normal


def _rws(rws: list[str]) -> list[str]:
    cleaned = sorted({r for r in (norm_rw(x) for x in rws) if r is not None})
    if len(cleaned) != len([x for x in rws if x.strip()]):
        raise ValidationFailed("an RW is listed twice", field="body.rws", rule="kitchen.rws_duplicate")
    return cleaned


async def _check_group(session: AsyncSession, group_id: uuid.UUID | None, village_code: str) -> None:
    if group_id is None:
        return
    group = await people.get_group(session, group_id)
    if group is None:
        raise ValidationFailed(
            "unknown UPPKA group", field="body.operator_group_id", rule="kitchen.operator_group_unknown"
        )
    if group.status == "dissolved":
        raise ValidationFailed(
            "the UPPKA group is dissolved",
            field="body.operator_group_id",
            rule="kitchen.operator_group_dissolved",
        )


def _facts(k: Kitchen) -> dict[str, object]:
    return {
        "kitchen_id": k.id,
        "name": k.name,
        "village_code": k.village_code,
        "rws": list(k.rws),
        "kampung_kb_id": k.kampung_kb_id,
        "management_model": k.management_model,
        "capacity_per_day": k.capacity_per_day,
        "operator_group_id": k.operator_group_id,
    }


async def visible(
    session: AsyncSession, kitchen_id: uuid.UUID, principal: Principal, *, lock: bool = False
) -> Kitchen:
    """The kitchen if it lies in the caller's region; 404 otherwise (no existence leak).

    Runs inside the caller's transaction: every module's use cases about one kitchen start with it.
    """
    kitchen = await repo.get(session, kitchen_id, lock=lock)
    if kitchen is None or not principal.can_access(kitchen.village_code):
        raise NotFound("kitchen not found")
    return kitchen


async def list_kitchens(
    session: AsyncSession,
    params: PageParams,
    principal: Principal,
    *,
    region: str | None = None,
    village_code: str | None = None,
    rw: str | None = None,
    status: str | None = None,
) -> tuple[list[Kitchen], str | None]:
    """One page of the kitchens in the caller's region (narrowed by the filters) and the cursor of the next."""
    regions = [principal.region, parse_region(region)]
    village = parse_region(village_code, field="query.village_code")
    if village is not None and level_of_code(village) != "village":
        # A regency or district code here matched nothing and answered an empty 200; `region` takes prefixes.
        raise ValidationFailed(
            f"village_code takes a village code (xx.xx.xx.xxxx), not a {level_of_code(village)}; "
            "use region= for every kitchen inside a region",
            field="query.village_code",
            rule="region.not_village",
        )
    if rw is not None and village is None:
        raise ValidationFailed(
            "rw needs village_code (RW numbers repeat in every village)",
            field="query.rw",
            rule="rw.needs_village",
        )
    async with session.begin():
        return await repo.page(
            session, params, regions=regions, village_code=village, rw=norm_rw(rw), status=status
        )


async def get_visible(session: AsyncSession, kitchen_id: uuid.UUID, principal: Principal) -> Kitchen:
    """The kitchen if it lies in the caller's region; 404 otherwise."""
    async with session.begin():
        return await visible(session, kitchen_id, principal)


async def _changeable(
    session: AsyncSession, kitchen_id: uuid.UUID, expected: IfMatchCondition, principal: Principal
) -> Kitchen:
    """The kitchen locked for a change the caller may make, at the version the caller read."""
    kitchen = await visible(session, kitchen_id, principal, lock=True)
    check_version(expected, kitchen.version)
    return kitchen


async def create(session: AsyncSession, body: KitchenCreate, principal: Principal) -> Kitchen:
    village = _village(body.village_code, principal)
    async with session.begin():
        await _check_group(session, body.operator_group_id, village)
        kitchen = Kitchen(
            id=new_id(),
            name=body.name,
            kampung_kb_id=body.kampung_kb_id,
            village_code=village,
            rws=_rws(body.rws),
            management_model=body.management_model,
            operator_group_id=body.operator_group_id,
            capacity_per_day=body.capacity_per_day,
            opened_on=body.opened_on,
            status="active",
            version=1,
        )
        session.add(kitchen)
        await session.flush()
        await publish(
            session, outbox, ev.KitchenOpened(**_facts(kitchen), opened_on=body.opened_on), key=kitchen.id
        )
        # A new kitchen is the place the village's waitlist was waiting for.
        await placement.fill_waitlist(session, village)
    return kitchen


async def update(
    session: AsyncSession,
    kitchen_id: uuid.UUID,
    body: KitchenUpdate,
    expected: IfMatchCondition,
    principal: Principal,
) -> Kitchen:
    async with session.begin():
        kitchen = await _changeable(session, kitchen_id, expected, principal)
        if kitchen.status == "closed":
            raise Conflict("the kitchen is closed", rule="kitchen.closed")
        changes = body.model_dump(exclude_unset=True)
        if "rws" in changes:
            changes["rws"] = _rws(changes["rws"] or [])
        if "operator_group_id" in changes:
            await _check_group(session, changes["operator_group_id"], kitchen.village_code)
        for name, value in changes.items():
            if value is None and name in ("name", "management_model", "capacity_per_day"):
                raise ValidationFailed(
                    f"{name} cannot be null", field=f"body.{name}", rule="kitchen.required"
                )
            setattr(kitchen, name, value)
        kitchen.version += 1
        await session.flush()
        await publish(session, outbox, ev.KitchenUpdated(**_facts(kitchen)), key=kitchen.id)
        # More capacity or more RWs may open places for waiting targets.
        await placement.fill_waitlist(session, kitchen.village_code)
    return kitchen


async def close(
    session: AsyncSession,
    kitchen_id: uuid.UUID,
    body: KitchenClose,
    expected: IfMatchCondition,
    principal: Principal,
) -> Kitchen:
    async with session.begin():
        kitchen = await _changeable(session, kitchen_id, expected, principal)
        if kitchen.status == "closed":
            raise Conflict("the kitchen is already closed", rule="kitchen.closed")
        if body.closed_on < kitchen.opened_on:
            raise ValidationFailed(
                "closed_on is before opened_on", field="body.closed_on", rule="kitchen.closed_before_opened"
            )
        active = (await repo.active_enrolment_counts(session, [kitchen.id]))[kitchen.id]
        if active:
            # Ending people's enrolments is a decision per person (exit with a reason), not a side effect.
            raise Conflict(
                f"the kitchen still has {active} active enrolments; end them first",
                rule="kitchen.has_active_enrolments",
            )
        kitchen.status, kitchen.closed_on = "closed", body.closed_on
        kitchen.version += 1
        await session.flush()
        await publish(
            session,
            outbox,
            ev.KitchenClosed(
                kitchen_id=kitchen.id, village_code=kitchen.village_code, closed_on=body.closed_on
            ),
            key=kitchen.id,
        )
    return kitchen
