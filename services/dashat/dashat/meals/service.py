"""Recording meals served: one batch per kitchen, date and slot; replays count once, conflicts are 409."""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from dataclasses import dataclass

import orjson
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from dashat.enrolment.models import Enrolment
from dashat.foods import repository as menus
from dashat.kitchens import service as kitchens
from dashat.meals import repository as repo
from dashat.meals.models import MealBatch, MealServing
from dashat.meals.schemas import MealsCreate
from dashat.models import outbox
from shared.auth import Principal
from shared.clock import business_today
from shared.db import new_id
from shared.errors import Conflict, ValidationFailed
from shared.events import dashat as ev
from shared.outbox import publish
from shared.web.pagination import PageParams


def content_hash(body: MealsCreate) -> str:
    canonical = body.model_dump(mode="json")
    canonical["served_person_ids"] = sorted(canonical["served_person_ids"])
    canonical["absent_person_ids"] = sorted(canonical["absent_person_ids"])
    return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True)
class RecordedBatch:
    """A meal batch with who was served by category; `replayed` when the request repeated one already recorded
    (the API model is made at the edge: `MealsRead.from_domain`)."""

    batch: MealBatch
    by_category: dict[str, int]
    replayed: bool = False


async def _recorded(session: AsyncSession, batch: MealBatch, replayed: bool = False) -> RecordedBatch:
    return RecordedBatch(batch, await repo.served_by_category(session, batch.id), replayed)


def _check_counts(body: MealsCreate, capacity: int) -> None:
    if body.portions_delivered > body.portions_cooked:
        raise ValidationFailed(
            "more portions delivered than cooked",
            field="body.portions_delivered",
            rule="meals.delivered_gt_cooked",
        )
    if body.portions_consumed > body.portions_delivered:
        raise ValidationFailed(
            "more portions consumed than delivered",
            field="body.portions_consumed",
            rule="meals.consumed_gt_delivered",
        )
    if body.portions_cooked > capacity and not body.override:
        raise ValidationFailed(
            f"{body.portions_cooked} portions exceed the kitchen's capacity of {capacity}; send override: true",
            field="body.portions_cooked",
            rule="meals.above_capacity",
        )
    served = body.served_person_ids
    if len(set(served)) != len(served):
        raise ValidationFailed(
            "a beneficiary is listed twice", field="body.served_person_ids", rule="meals.duplicate"
        )
    if set(served) & set(body.absent_person_ids):
        raise ValidationFailed(
            "a beneficiary is both served and absent",
            field="body.absent_person_ids",
            rule="meals.served_and_absent",
        )
    if len(served) > body.portions_delivered:
        raise ValidationFailed(
            "more beneficiaries served than portions delivered",
            field="body.served_person_ids",
            rule="meals.served_gt_delivered",
        )


async def record(
    session: AsyncSession, kitchen_id: uuid.UUID, body: MealsCreate, principal: Principal
) -> RecordedBatch:
    """Record a batch; a concurrent identical or overlapping batch loses on the unique keys and gets a 409."""
    try:
        return await _record(session, kitchen_id, body, principal)
    except IntegrityError as exc:
        raise Conflict(
            "these meals were recorded concurrently; read them again", rule="meals.batch_conflict"
        ) from exc


async def _record(
    session: AsyncSession, kitchen_id: uuid.UUID, body: MealsCreate, principal: Principal
) -> RecordedBatch:
    digest = content_hash(body)
    async with session.begin():
        kitchen = await kitchens.visible(session, kitchen_id, principal, lock=True)
        if body.served_on > business_today(kitchen.village_code):
            raise ValidationFailed(
                "meals cannot be recorded for a future date", field="body.served_on", rule="meals.future_date"
            )
        if body.served_on < kitchen.opened_on or (
            kitchen.closed_on is not None and body.served_on > kitchen.closed_on
        ):
            raise ValidationFailed(
                "the kitchen was not open on that date", field="body.served_on", rule="meals.kitchen_not_open"
            )
        existing = await repo.batch_at(session, kitchen.id, body.served_on, body.slot)
        if existing is not None:
            if existing.content_hash == digest:
                return await _recorded(session, existing, replayed=True)
            raise Conflict(
                f"meals for {body.served_on} {body.slot} were already recorded differently (batch {existing.id})",
                rule="meals.batch_conflict",
            )
        _check_counts(body, kitchen.capacity_per_day)
        if body.menu_id is not None and await menus.get_menu(session, body.menu_id) is None:
            raise ValidationFailed("unknown menu", field="body.menu_id", rule="meals.menu_unknown")
        wanted = set(body.served_person_ids) | set(body.absent_person_ids)
        by_person: dict[uuid.UUID, Enrolment] = {}
        for e in await repo.enrolments_at(session, kitchen.id, body.served_on, wanted):
            by_person.setdefault(e.person_id, e)
        missing = [
            {
                "field": f"body.{field}.{n}",
                "rule": "meals.not_enrolled",
                "message": f"{pid} has no active enrolment at this kitchen on {body.served_on}",
            }
            for field in ("served_person_ids", "absent_person_ids")
            for n, pid in enumerate(getattr(body, field))
            if pid not in by_person
        ]
        if missing:
            raise ValidationFailed(
                "some beneficiaries are not actively enrolled at this kitchen", errors=missing
            )
        already = await repo.already_served(session, body.served_person_ids, body.served_on, body.slot)
        if already:
            raise Conflict(
                f"{len(already)} beneficiaries already had this meal recorded elsewhere",
                rule="meals.already_served",
            )
        batch = MealBatch(
            id=new_id(),
            kitchen_id=kitchen.id,
            served_on=body.served_on,
            slot=body.slot,
            menu_id=body.menu_id,
            portions_cooked=body.portions_cooked,
            portions_delivered=body.portions_delivered,
            portions_consumed=body.portions_consumed,
            absent_person_ids=list(body.absent_person_ids),
            capacity_override=body.override and body.portions_cooked > kitchen.capacity_per_day,
            content_hash=digest,
            recorded_by=principal.sub,
        )
        session.add(batch)
        await session.flush()
        session.add_all(
            MealServing(
                batch_id=batch.id,
                enrolment_id=by_person[pid].id,
                person_id=pid,
                served_on=body.served_on,
                slot=body.slot,
                category=by_person[pid].category,
            )
            for pid in body.served_person_ids
        )
        await session.flush()
        by_category = Counter(by_person[pid].category for pid in body.served_person_ids)
        await publish(
            session,
            outbox,
            ev.MealsServed(
                kitchen_id=kitchen.id,
                batch_id=batch.id,
                village_code=kitchen.village_code,
                served_on=body.served_on,
                slot=body.slot,
                menu_id=body.menu_id,
                portions_cooked=body.portions_cooked,
                portions_delivered=body.portions_delivered,
                portions_consumed=body.portions_consumed,
                beneficiaries_served=len(body.served_person_ids),
                by_category=dict(by_category),
            ),
            key=kitchen.id,
        )
        return await _recorded(session, batch)


async def page(
    session: AsyncSession, kitchen_id: uuid.UUID, params: PageParams, principal: Principal
) -> tuple[list[RecordedBatch], str | None]:
    """One page of a visible kitchen's meal batches and the next cursor."""
    async with session.begin():
        await kitchens.visible(session, kitchen_id, principal)
        batches, cursor = await repo.page(session, kitchen_id, params)
        return [await _recorded(session, b) for b in batches], cursor
