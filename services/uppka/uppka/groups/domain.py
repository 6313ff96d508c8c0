"""Pure rules of groups and members: categories, the leader rule, the membership area, status changes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

from shared import ages
from shared.errors import Conflict, ValidationFailed
from shared.regions import is_within

Category = Literal["remaja", "pus", "lansia", "lainnya"]
Role = Literal["ketua", "sekretaris", "bendahara", "anggota"]
GroupStatus = Literal["active", "inactive", "dissolved"]

CATEGORY_RULE_VERSION = "uppka-category-2025.1"
# Members come from the group's own village (the Kampung KB); a move to another village ends the membership.
MEMBER_AREA_LEVEL: Literal["village", "district"] = "village"
REMAJA_AGES = (10, 24)
LANSIA_AGE = 60
PUS_AGES = (15, 49)  # the wife's completed years (BKKBN's PUS; the registry's rules.PUS_MIN_AGE/PUS_MAX_AGE)
# The completed years on which ageing alone can change a category: 10 (remaja from), 25 (remaja to), 60 (lansia).
# PUS (15-49 for a married woman) is the registry's to derive; its flips arrive as registry person events.
CATEGORY_AGES = (REMAJA_AGES[0], REMAJA_AGES[1] + 1, LANSIA_AGE)


def is_pus_on(*, sex: str, marital_status: str, birth_date: date, on: date) -> bool:
    """PUS as the registry derives it (BKKBN: a married couple with the wife aged 15-49): for past days."""
    return (
        sex == "P"
        and marital_status == "kawin"
        and PUS_AGES[0] <= ages.completed_years(birth_date, on) <= PUS_AGES[1]
    )


def member_category(
    *, birth_date: date | None, marital_status: str | None, pus: bool | None, on: date
) -> Category:
    """remaja (10-24, never married), PUS (as the registry derives it), lansia (60+), else lainnya.

    Ages are completed years of shared/ages (the anniversary rule every service uses). Order matters where
    categories overlap: a married woman of 22 is PUS, not remaja; PUS is checked before lansia because the
    registry never marks a 60-year-old as PUS anyway.
    """
    if pus:
        return "pus"
    if birth_date is None:
        return "lainnya"
    age = ages.completed_years(birth_date, on)
    if REMAJA_AGES[0] <= age <= REMAJA_AGES[1] and marital_status == "belum_kawin":
        return "remaja"
    if age >= LANSIA_AGE:
        return "lansia"
    return "lainnya"


def category_birthdays(birth_date: date, after: date, through: date) -> list[date]:
    """The days in (after, through] on which the person completes an age where the category can change."""
    days = (ages.reaches_age_on(birth_date, years) for years in CATEGORY_AGES)
    return sorted(d for d in days if after < d <= through)


def category_changes(
    *,
    birth_date: date | None,
    marital_status: str | None,
    pus: bool | None,
    category: str,
    after: date,
    through: date,
) -> list[tuple[date, Category]]:
    """The changes of a stored `category` (true on `after`) that ageing alone brings by `through`, in order."""
    if birth_date is None:
        return []
    out: list[tuple[date, Category]] = []
    for day in category_birthdays(birth_date, after, through):
        now = member_category(birth_date=birth_date, marital_status=marital_status, pus=pus, on=day)
        if now != category:
            out.append((day, now))
            category = now
    return out


def member_area(group_village_code: str, level: Literal["village", "district"] = MEMBER_AREA_LEVEL) -> str:
    """The region a group's members must live in."""
    if level == "district":
        return group_village_code.rsplit(".", 1)[0]
    return group_village_code


def was_member_on(joined_on: date, left_on: date | None, on: date) -> bool:
    """A member on that day: joined by then and not left before it (the day of leaving still counts)."""
    return joined_on <= on and (left_on is None or left_on >= on)


def lives_in_area(person_village: str | None, group_village_code: str) -> bool:
    return person_village is not None and is_within(person_village, member_area(group_village_code))


@dataclass(frozen=True)
class PersonFacts:
    """What membership rules need to know about a registry person."""

    known: bool
    village_code: str | None
    died_on: date | None
    moved_out_on: date | None
    merged_into: bool
    ever_kb_user: bool
    birth_date: date | None


def check_can_join(
    person: PersonFacts | None, *, group_village_code: str, role: Role, joined_on: date, today: date
) -> None:
    """Every rule a new membership must satisfy; raises a 422 naming the field and the rule."""
    if person is None or not person.known or person.merged_into:
        raise ValidationFailed(
            "the person is not known to the registry", field="body.person_id", rule="member.person_unknown"
        )
    if person.died_on is not None:
        raise ValidationFailed("the person has died", field="body.person_id", rule="member.person_dead")
    if person.moved_out_on is not None or not lives_in_area(person.village_code, group_village_code):
        raise ValidationFailed(
            "the person does not live in the group's area",
            field="body.person_id",
            rule="member.person_outside_group_area",
        )
    if joined_on > today:
        raise ValidationFailed(
            "joined_on is in the future", field="body.joined_on", rule="member.joined_in_future"
        )
    if person.birth_date is not None and joined_on < person.birth_date:
        raise ValidationFailed(
            "joined_on is before the person's birth",
            field="body.joined_on",
            rule="member.joined_before_birth",
        )
    check_leader(role, ever_kb_user=person.ever_kb_user)


def check_leader(role: str, *, ever_kb_user: bool, field: str = "body.role") -> None:
    """The ketua must be a current or former KB user."""
    if role == "ketua" and not ever_kb_user:
        raise ValidationFailed(
            "the group leader (ketua) must be a current or former KB user",
            field=field,
            rule="member.leader_not_kb_user",
        )


ALLOWED_STATUS_CHANGES: dict[str, frozenset[str]] = {
    "active": frozenset({"inactive", "dissolved"}),
    "inactive": frozenset({"active", "dissolved"}),
    "dissolved": frozenset(),
}


def check_status_change(current: str, new: str, *, changed_on: date, since: date, today: date) -> None:
    """A dissolved group stays dissolved; a change takes effect on a date not before the current one."""
    if new == current:
        return
    if new not in ALLOWED_STATUS_CHANGES[current]:
        raise Conflict(
            f"a {current} group cannot become {new}", field="body.status", rule="group.status_transition"
        )
    if changed_on > today:
        raise ValidationFailed(
            "status_changed_on is in the future",
            field="body.status_changed_on",
            rule="group.status_in_future",
        )
    if changed_on < since:
        raise ValidationFailed(
            "status_changed_on is before the current status began",
            field="body.status_changed_on",
            rule="group.status_before_current",
        )
