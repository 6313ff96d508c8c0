"""Use cases of PEK programme activities."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Principal
from shared.errors import NotFound, ValidationFailed
from shared.events import uppka as ev
from shared.outbox import publish
from shared.web.pagination import PageParams
from uppka.activities import repository as repo
from uppka.activities.models import Activity, ActivityAttendance
from uppka.activities.schemas import ActivityCreate
from uppka.common import check_not_future
from uppka.groups.domain import was_member_on
from uppka.groups.service import load_group, lock_open_group
from uppka.models import outbox
from uppka.reports.domain import period_end, period_start


@dataclass(frozen=True)
class HeldActivity:
    """An activity with the members who attended it (the API model is made at the edge: `ActivityRead`)."""

    activity: Activity
    attendee_member_ids: list[uuid.UUID]


async def _with_attendees(session: AsyncSession, rows: list[Activity]) -> list[HeldActivity]:
    who = await repo.attendees(session, [a.id for a in rows])
    return [HeldActivity(a, who.get(a.id, [])) for a in rows]


async def record(
    session: AsyncSession, group_id: uuid.UUID, body: ActivityCreate, principal: Principal, today: date
) -> HeldActivity:
    check_not_future(body.held_on, today, field="body.held_on", rule="activity.in_future")
    if len(set(body.attendee_member_ids)) != len(body.attendee_member_ids):
        raise ValidationFailed(
            "a member is listed twice", field="body.attendee_member_ids", rule="activity.duplicate_attendee"
        )
    async with session.begin():
        group = await lock_open_group(session, group_id, principal)
        members = await repo.members_by_id(session, group.id, body.attendee_member_ids)
        for i, member_id in enumerate(body.attendee_member_ids):
            m = members.get(member_id)
            if m is None or not was_member_on(m.joined_on, m.left_on, body.held_on):
                raise ValidationFailed(
                    "not a member of the group on that day",
                    field=f"body.attendee_member_ids.{i}",
                    rule="activity.attendee_not_member",
                )
        activity = Activity(
            id=uuid.uuid4(),
            group_id=group.id,
            activity_type=body.activity_type,
            held_on=body.held_on,
            facilitator=body.facilitator,
            notes=body.notes,
            attendance=len(body.attendee_member_ids),
        )
        session.add(activity)
        await session.flush()
        session.add_all(
            [ActivityAttendance(activity_id=activity.id, member_id=m) for m in body.attendee_member_ids]
        )
        await publish(
            session,
            outbox,
            ev.ActivityHeld(
                group_id=group.id,
                activity_id=activity.id,
                village_code=group.village_code,
                activity_type=body.activity_type,
                held_on=body.held_on,
                attendance=activity.attendance,
            ),
            key=group.id,
        )
        await session.flush()
        (out,) = await _with_attendees(session, [activity])
    return out


async def read(
    session: AsyncSession, group_id: uuid.UUID, activity_id: uuid.UUID, principal: Principal
) -> HeldActivity:
    async with session.begin():
        group = await load_group(session, group_id, principal)
        activity = await repo.get(session, group.id, activity_id)
        if activity is None:
            raise NotFound("activity not found")
        (out,) = await _with_attendees(session, [activity])
    return out


async def list_for_group(
    session: AsyncSession,
    group_id: uuid.UUID,
    params: PageParams,
    principal: Principal,
    *,
    period: str | None,
    activity_type: str | None,
) -> tuple[list[HeldActivity], str | None]:
    """Activities of a group, optionally of one month (YYYY-MM) and one type."""
    first = period_start(period) if period else None
    last = period_end(period) if period else None
    async with session.begin():
        group = await load_group(session, group_id, principal)
        rows, cursor = await repo.list_for_group(
            session, group.id, params, first=first, last=last, activity_type=activity_type
        )
        out = await _with_attendees(session, rows)
    return out, cursor
