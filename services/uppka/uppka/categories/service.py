"""Member categories that age: re-derived when the registry's facts change and on the birthdays that matter.

A category (remaja 10-24 never married, PUS, lansia 60+, lainnya) is derived at the join; it then changes
(1) when the person's replica changes (the registry's PUS flip on her 15th/50th birthday, a marriage), applied by
the consumer's handler, and (2) on the 10th, 25th and 60th birthdays, applied by a daily sweep. Each change is
stored on the membership (`category`, `category_since`) and published as `uppka.member.category_changed.v1`,
dated (envelope time) at 00:00 Asia/Jakarta of the day it took effect, because reporting files events under
their envelope day and the change belongs to the birthday's month, not to the day the sweep ran.

The sweep applies days one at a time, oldest first, each in its own transaction that also moves the watermark
(`category_sweep.last_swept_on`): a crash repeats only the day it was in, a second run of a swept day finds
nothing to do, and days missed while the consumer was down are caught up in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from shared import ages
from shared.clock import PROGRAMME_ZONE, business_today, start_of_day
from shared.db import utcnow
from shared.events import uppka as ev
from shared.logging import get_logger
from shared.outbox import publish
from uppka.categories import repository as repo
from uppka.groups import domain
from uppka.groups import repository as groups_repo
from uppka.groups.models import Group, Member
from uppka.models import outbox
from uppka.replicas.models import PersonReplica

log = get_logger(__name__)


async def change_category(
    session: AsyncSession,
    member: Member,
    group: Group,
    category: domain.Category,
    on: date,
    *,
    event_time: datetime | None = None,
) -> None:
    """Store a member's new category (effective `on`) and publish it, dated 00:00 WIB of `on` unless told."""
    previous = member.category
    member.category = category
    member.category_since = on
    member.category_rule_version = domain.CATEGORY_RULE_VERSION
    member.version += 1
    await publish(
        session,
        outbox,
        ev.MemberCategoryChanged(
            group_id=group.id,
            member_id=member.id,
            person_id=member.person_id,
            village_code=group.village_code,
            category=category,
            previous_category=previous,
            changed_on=on,
        ),
        key=group.id,
        event_time=event_time or start_of_day(on),
    )


def _since(member: Member) -> date:
    return member.category_since or member.joined_on


async def reevaluate_person(session: AsyncSession, person: PersonReplica) -> int:
    """Re-derive the categories of a person's current memberships from the replica's facts (their count).

    Called by the registry handlers inside the consumer's transaction, once the replica is up to date. The
    change is effective on the day of the facts (`facts_at`, WIB), never before the category it replaces: an
    event delivered late does not undo what a later birthday already decided.
    """
    if not person.facts_known or person.facts_at is None:
        return 0
    facts_day = person.facts_at.astimezone(PROGRAMME_ZONE).date()
    changed = 0
    for member, group in await groups_repo.active_memberships_of_person(session, person.person_id):
        on = max(facts_day, _since(member))
        category = domain.member_category(
            birth_date=person.birth_date, marital_status=person.marital_status, pus=person.pus, on=on
        )
        if category == member.category:
            continue
        # Dated by the registry event that caused it when it is that day's; on the join's day it must sort
        # after the join (reporting orders one day's entries by envelope time), so it is dated now.
        at = max(start_of_day(on), person.facts_at) if on == facts_day else start_of_day(on)
        if on <= member.joined_on:
            at = max(at, utcnow())
        await change_category(session, member, group, category, on, event_time=at)
        changed += 1
    return changed


async def apply_ageing_since_join(
    session: AsyncSession, member: Member, group: Group, person: PersonReplica, today: date
) -> None:
    """A membership recorded with an earlier join date: the birthdays between then and today apply at once."""
    for day, category in domain.category_changes(
        birth_date=person.birth_date,
        marital_status=person.marital_status,
        pus=person.pus,
        category=member.category,
        after=member.joined_on,
        through=today,
    ):
        await change_category(session, member, group, category, day)


@dataclass
class SweepResult:
    """What a sweep run did; `locked` is false when another process was sweeping."""

    through: date
    locked: bool = True
    days: list[tuple[date, int]] = field(default_factory=list)

    @property
    def members_changed(self) -> int:
        return sum(n for _, n in self.days)


async def sweep_day(session: AsyncSession, day: date) -> int:
    """Apply one day's birthdays to the categories (inside the caller's transaction); the count changed."""
    windows = sorted({ages.births_completing(12 * years, day) for years in domain.CATEGORY_AGES})
    changed = 0
    for member, group, person in await repo.members_born_in(session, windows):
        assert person.birth_date is not None
        if day not in domain.category_birthdays(person.birth_date, day - timedelta(days=1), day):
            continue  # inside a month-end window without completing an age that day
        if _since(member) > day:
            continue  # joined (or re-derived) after this day: its category already counts this birthday
        category = domain.member_category(
            birth_date=person.birth_date, marital_status=person.marital_status, pus=person.pus, on=day
        )
        if category != member.category:
            await change_category(session, member, group, category, day)
            changed += 1
    return changed


async def sweep(session: AsyncSession, through: date | None = None) -> SweepResult:
    """Apply every day after the watermark up to `through` (default: today in WIB), one transaction per day.

    A first run (no watermark yet) applies `through` alone: categories stored before it were derived at the
    join, and the sweep takes over from there.
    """
    target = through or business_today()
    if target > business_today():
        # A swept day is never swept again: sweeping ahead would publish birthdays before they happen.
        raise ValueError(f"{target.isoformat()} has not begun yet in Asia/Jakarta")
    out = SweepResult(target)
    while True:
        async with session.begin():
            if not await repo.try_lock(session):
                out.locked = False
                log.info("category_sweep_skipped", reason="another process is sweeping")
                return out
            last = await repo.last_swept_on(session)
            day = target if last is None else last + timedelta(days=1)
            if day > target:
                return out
            changed = await sweep_day(session, day)
            await repo.advance(session, day)
        session.expunge_all()  # a long catch-up must not keep every day's rows in the identity map
        out.days.append((day, changed))
        log.info("category_sweep_day", day=day.isoformat(), members_changed=changed)
