"""Queries of enrolments, the waitlist and stunting cases."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import Integer, and_, bindparam, column, delete, exists, func, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncSession

from dashat.enrolment.models import Enrolment, StuntingCase, WaitlistEntry
from dashat.meals.models import MealServing
from dashat.models import outbox
from dashat.outcomes.models import ChildMeasurement
from dashat.people.models import PersonReplica
from shared.regions.scope import within
from shared.web.pagination import PageParams, keyset_page


async def active_enrolment(session: AsyncSession, person_id: uuid.UUID, category: str) -> Enrolment | None:
    stmt = select(Enrolment).where(
        Enrolment.person_id == person_id, Enrolment.category == category, Enrolment.status == "active"
    )
    return (await session.execute(stmt.with_for_update())).scalar_one_or_none()


async def active_enrolments_of_person(session: AsyncSession, person_id: uuid.UUID) -> list[Enrolment]:
    stmt = select(Enrolment).where(Enrolment.person_id == person_id, Enrolment.status == "active")
    return list((await session.execute(stmt.with_for_update())).scalars())


async def active_by_trigger(session: AsyncSession, trigger_ref: uuid.UUID) -> list[Enrolment]:
    stmt = select(Enrolment).where(Enrolment.trigger_ref == trigger_ref, Enrolment.status == "active")
    return list((await session.execute(stmt.with_for_update())).scalars())


async def any_by_trigger(session: AsyncSession, trigger_ref: uuid.UUID) -> bool:
    e = await session.execute(select(Enrolment.id).where(Enrolment.trigger_ref == trigger_ref).limit(1))
    w = await session.execute(
        select(WaitlistEntry.id).where(WaitlistEntry.trigger_ref == trigger_ref).limit(1)
    )
    return e.first() is not None or w.first() is not None


async def waiting_entry(session: AsyncSession, person_id: uuid.UUID, category: str) -> WaitlistEntry | None:
    stmt = select(WaitlistEntry).where(
        WaitlistEntry.person_id == person_id,
        WaitlistEntry.category == category,
        WaitlistEntry.status == "waiting",
    )
    return (await session.execute(stmt.with_for_update())).scalar_one_or_none()


async def waiting_of_person(session: AsyncSession, person_id: uuid.UUID) -> list[WaitlistEntry]:
    stmt = select(WaitlistEntry).where(
        WaitlistEntry.person_id == person_id, WaitlistEntry.status == "waiting"
    )
    return list((await session.execute(stmt.with_for_update())).scalars())


async def waiting_by_trigger(session: AsyncSession, trigger_ref: uuid.UUID) -> list[WaitlistEntry]:
    stmt = select(WaitlistEntry).where(
        WaitlistEntry.trigger_ref == trigger_ref, WaitlistEntry.status == "waiting"
    )
    return list((await session.execute(stmt.with_for_update())).scalars())


async def waiting_in_village(session: AsyncSession, village_code: str) -> list[WaitlistEntry]:
    """Waiting entries of a village in the order places are given: priority, then who waited longest."""
    stmt = (
        select(WaitlistEntry)
        .where(WaitlistEntry.village_code == village_code, WaitlistEntry.status == "waiting")
        .order_by(WaitlistEntry.priority, WaitlistEntry.triggered_at, WaitlistEntry.waitlisted_at)
        .with_for_update(skip_locked=True)
    )
    return list((await session.execute(stmt)).scalars())


async def due_to_end(session: AsyncSession, today: date) -> list[Enrolment]:
    stmt = select(Enrolment).where(Enrolment.status == "active", Enrolment.planned_end_date <= today)
    return list((await session.execute(stmt.with_for_update(skip_locked=True))).scalars())


async def active_children(session: AsyncSession) -> list[Enrolment]:
    stmt = select(Enrolment).where(
        Enrolment.status == "active", Enrolment.category.in_(("baduta_stunting", "balita_stunting"))
    )
    return list((await session.execute(stmt.with_for_update(skip_locked=True))).scalars())


# One key for the daily sweep, shared by the consumer replicas and `python -m dashat.sweep` ("dashatsw").
SWEEP_LOCK_KEY = 0x6461736861747377


async def try_sweep_lock(session: AsyncSession) -> bool:
    """Take the sweep's advisory lock for this transaction, or report that another process holds it."""
    # Transaction-scoped: released by the commit, and by PostgreSQL if the sweeping process dies.
    return bool((await session.execute(select(func.pg_try_advisory_xact_lock(SWEEP_LOCK_KEY)))).scalar_one())


async def lock_case(session: AsyncSession, case_id: uuid.UUID) -> StuntingCase | None:
    stmt = select(StuntingCase).where(StuntingCase.case_id == case_id).with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def get(session: AsyncSession, enrolment_id: uuid.UUID, *, lock: bool = False) -> Enrolment | None:
    stmt = select(Enrolment).where(Enrolment.id == enrolment_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def page_enrolments(
    session: AsyncSession,
    params: PageParams,
    *,
    regions: Sequence[str | None],
    kitchen_id: uuid.UUID | None = None,
    category: str | None = None,
    status: str | None = None,
    person_id: uuid.UUID | None = None,
) -> tuple[list[Enrolment], str | None]:
    """One page of enrolments located inside every one of `regions` (the caller's, a filter)."""
    stmt = select(Enrolment).where(*(within(Enrolment.village_code, r) for r in regions))
    if kitchen_id:
        stmt = stmt.where(Enrolment.kitchen_id == kitchen_id)
    if category:
        stmt = stmt.where(Enrolment.category == category)
    if status:
        stmt = stmt.where(Enrolment.status == status)
    if person_id:
        stmt = stmt.where(Enrolment.person_id == person_id)
    return await keyset_page(session, stmt, params, Enrolment.id)


async def page_waitlist(
    session: AsyncSession,
    params: PageParams,
    *,
    regions: Sequence[str | None],
    status: str,
    category: str | None = None,
) -> tuple[list[WaitlistEntry], str | None]:
    """One page of waitlist entries in a status located inside every one of `regions`."""
    stmt = select(WaitlistEntry).where(
        *(within(WaitlistEntry.village_code, r) for r in regions), WaitlistEntry.status == status
    )
    if category:
        stmt = stmt.where(WaitlistEntry.category == category)
    return await keyset_page(session, stmt, params, WaitlistEntry.id)


async def move_person_records(
    session: AsyncSession, from_id: uuid.UUID, to_id: uuid.UUID, family_id: uuid.UUID
) -> None:
    """Give everything recorded under a merged person id to the surviving id (the caller settled duplicates)."""
    await session.execute(
        update(Enrolment)
        .where(Enrolment.person_id == from_id)
        .values(person_id=to_id, version=Enrolment.version + 1)
        .execution_options(synchronize_session="fetch")
    )
    await session.execute(
        update(WaitlistEntry)
        .where(WaitlistEntry.person_id == from_id)
        .values(person_id=to_id)
        .execution_options(synchronize_session="fetch")
    )
    # What is still running belongs to the surviving person's family now.
    await session.execute(
        update(Enrolment)
        .where(Enrolment.person_id == to_id, Enrolment.status == "active")
        .values(family_id=family_id)
        .execution_options(synchronize_session="fetch")
    )
    await session.execute(
        update(WaitlistEntry)
        .where(WaitlistEntry.person_id == to_id, WaitlistEntry.status == "waiting")
        .values(family_id=family_id)
        .execution_options(synchronize_session="fetch")
    )
    await session.execute(
        update(StuntingCase).where(StuntingCase.person_id == from_id).values(person_id=to_id)
    )
    await session.execute(
        update(ChildMeasurement).where(ChildMeasurement.person_id == from_id).values(person_id=to_id)
    )
    # One person gets one portion per date and slot: a portion recorded under both ids counts once.
    survivor = MealServing.__table__.alias("survivor")
    await session.execute(
        delete(MealServing).where(
            MealServing.person_id == from_id,
            exists().where(
                and_(
                    survivor.c.person_id == to_id,
                    survivor.c.served_on == MealServing.served_on,
                    survivor.c.slot == MealServing.slot,
                )
            ),
        )
    )
    await session.execute(update(MealServing).where(MealServing.person_id == from_id).values(person_id=to_id))


async def set_family_priority(session: AsyncSession, family_id: uuid.UUID, priority: int) -> tuple[int, int]:
    """Give a family's waiting entries and active enrolments a new priority; returns how many changed."""
    members = select(PersonReplica.person_id).where(PersonReplica.family_id == family_id).scalar_subquery()
    waiting = await session.execute(
        update(WaitlistEntry)
        .where(
            WaitlistEntry.person_id.in_(members),
            WaitlistEntry.status == "waiting",
            WaitlistEntry.priority != priority,
        )
        .values(priority=priority)
        .returning(WaitlistEntry.id)
        .execution_options(synchronize_session="fetch")
    )
    active = await session.execute(
        update(Enrolment)
        .where(Enrolment.person_id.in_(members), Enrolment.status == "active", Enrolment.priority != priority)
        .values(priority=priority, version=Enrolment.version + 1)
        .returning(Enrolment.id)
        .execution_options(synchronize_session="fetch")
    )
    return len(waiting.all()), len(active.all())


async def set_families_priority(session: AsyncSession, priorities: Mapping[uuid.UUID, int]) -> None:
    """`set_family_priority` for several families, one statement per table."""
    if not priorities:
        return
    ids = sorted(priorities)
    given = (
        func.unnest(
            bindparam("family_ids", [*ids], type_=ARRAY(PG_UUID(as_uuid=True))),
            bindparam("priorities", [priorities[i] for i in ids], type_=ARRAY(Integer)),
        )
        .table_valued(column("family_id", PG_UUID(as_uuid=True)), column("priority", Integer))
        .render_derived(name="given")
    )
    members = (
        select(PersonReplica.person_id, given.c.priority)
        .join(given, given.c.family_id == PersonReplica.family_id)
        .subquery("members")
    )
    await session.execute(
        update(WaitlistEntry)
        .where(
            WaitlistEntry.person_id == members.c.person_id,
            WaitlistEntry.status == "waiting",
            WaitlistEntry.priority != members.c.priority,
        )
        .values(priority=members.c.priority)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(Enrolment)
        .where(
            Enrolment.person_id == members.c.person_id,
            Enrolment.status == "active",
            Enrolment.priority != members.c.priority,
        )
        .values(priority=members.c.priority, version=Enrolment.version + 1)
        .execution_options(synchronize_session=False)
    )


CHILD_CATEGORIES = ("baduta_stunting", "balita_stunting")


async def active_children_of_person(session: AsyncSession, person_id: uuid.UUID) -> list[Enrolment]:
    stmt = select(Enrolment).where(
        Enrolment.person_id == person_id,
        Enrolment.status == "active",
        Enrolment.category.in_(CHILD_CATEGORIES),
    )
    return list((await session.execute(stmt.with_for_update())).scalars())


async def last_recovered(session: AsyncSession, person_id: uuid.UUID) -> Enrolment | None:
    """The child's latest enrolment that ended as recovered, if that is the child's latest enrolment at all."""
    stmt = (
        select(Enrolment)
        .where(Enrolment.person_id == person_id, Enrolment.category.in_(CHILD_CATEGORIES))
        .order_by(Enrolment.enrolled_at.desc())
        .limit(1)
    )
    latest = (await session.execute(stmt.with_for_update())).scalar_one_or_none()
    if latest is None or latest.status != "completed" or latest.exit_reason != "recovered":
        return None
    return latest


async def children_with_enrolments(session: AsyncSession, person_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Of these persons, those with a child enrolment a measurement may end (active) or reinstate (recovered)."""
    if not person_ids:
        return set()
    stmt = select(Enrolment.person_id).where(
        Enrolment.person_id.in_(person_ids),
        Enrolment.category.in_(CHILD_CATEGORIES),
        (Enrolment.status == "active") | (Enrolment.exit_reason == "recovered"),
    )
    return set((await session.execute(stmt)).scalars())


async def served_as_ibu_menyusui_since(session: AsyncSession, person_id: uuid.UUID, since: date) -> bool:
    """Whether the woman was enrolled or waitlisted as ibu menyusui on or after a day (a baby's birth)."""
    e = await session.execute(
        select(Enrolment.id)
        .where(
            Enrolment.person_id == person_id,
            Enrolment.category == "ibu_menyusui",
            Enrolment.start_date >= since,
        )
        .limit(1)
    )
    if e.first() is not None:
        return True
    w = await session.execute(
        select(WaitlistEntry.id)
        .where(
            WaitlistEntry.person_id == person_id,
            WaitlistEntry.category == "ibu_menyusui",
            func.date(func.timezone("UTC", WaitlistEntry.waitlisted_at)) >= since,
        )
        .limit(1)
    )
    return w.first() is not None


async def active_of_category(session: AsyncSession, category: str) -> list[Enrolment]:
    stmt = select(Enrolment).where(Enrolment.status == "active", Enrolment.category == category)
    return list((await session.execute(stmt.with_for_update(skip_locked=True))).scalars())


async def waiting_of_categories(session: AsyncSession, categories: Sequence[str]) -> list[WaitlistEntry]:
    stmt = select(WaitlistEntry).where(
        WaitlistEntry.status == "waiting", WaitlistEntry.category.in_(categories)
    )
    return list((await session.execute(stmt.with_for_update(skip_locked=True))).scalars())


async def lock_cases(session: AsyncSession, case_ids: Sequence[uuid.UUID]) -> list[StuntingCase]:
    if not case_ids:
        return []
    stmt = select(StuntingCase).where(StuntingCase.case_id.in_(case_ids)).order_by(StuntingCase.case_id)
    return list((await session.execute(stmt.with_for_update())).scalars())


async def entries_for_decisions(
    session: AsyncSession, person_ids: Sequence[uuid.UUID]
) -> tuple[list[Enrolment], list[WaitlistEntry]]:
    """What placement decisions about these persons read, locked: their active enrolments and waiting entries,
    and every ibu menyusui enrolment or entry (a mother is enrolled once per baby, `served_as_ibu_menyusui_since`)."""
    if not person_ids:
        return [], []
    enrolments = await session.execute(
        select(Enrolment)
        .where(
            Enrolment.person_id.in_(person_ids),
            (Enrolment.status == "active") | (Enrolment.category == "ibu_menyusui"),
        )
        .order_by(Enrolment.id)
        .with_for_update()
    )
    waiting = await session.execute(
        select(WaitlistEntry)
        .where(
            WaitlistEntry.person_id.in_(person_ids),
            (WaitlistEntry.status == "waiting") | (WaitlistEntry.category == "ibu_menyusui"),
        )
        .order_by(WaitlistEntry.id)
        .with_for_update()
    )
    return list(enrolments.scalars()), list(waiting.scalars())


async def insert_outbox(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
    """Outbox rows built with `shared.outbox.outbox_row`, in one statement, in their order."""
    if rows:
        await session.execute(insert(outbox), list(rows))
