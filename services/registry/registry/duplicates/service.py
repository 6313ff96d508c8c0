"""Merging a duplicate person into the record that survives, keeping the history of both.

The merged record is not deleted: it stays as a tombstone (`deleted_at`, `merged_into_person_id`) so the change
feed and old events still resolve; everything that pointed at it (memberships, KB statuses, measurements,
stunting cases, pregnancies, catin screenings, guardianships) now points at the survivor, and
`registry.person.merged.v1` tells consumers to re-point their own copies.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from registry.duplicates import repository as repo
from registry.families import repository as fam_repo
from registry.families.facts import person_facts, refresh_krs
from registry.families.models import Family, Person
from registry.families.registration import seal_nik
from registry.growth.models import StuntingCase
from registry.health.models import Pregnancy
from registry.outbox import emit
from registry.pii import PiiVault, Sealed
from shared.auth import Principal
from shared.clock import business_today
from shared.db import utcnow
from shared.errors import Conflict, ValidationFailed
from shared.events.registry import PersonsMerged, PersonUpdated
from shared.web.etag import IfMatchCondition, check_version
from shared.web.pagination import PageParams


@dataclass(frozen=True)
class DuplicateCandidates:
    """Persons who may be one person, and why they were grouped."""

    reason: Literal["same_name_birth_village", "without_nik"]
    village_code: str | None
    birth_date: date
    persons: list[Person]


async def list_duplicates(
    session: AsyncSession, principal: Principal, params: PageParams, kind: str
) -> tuple[list[DuplicateCandidates], str | None]:
    """A page of potential duplicates for review: `near` groups, or persons `without_nik` with look-alikes."""
    items: list[DuplicateCandidates] = []
    async with session.begin():
        if kind == "near":
            groups, cursor = await repo.near_duplicate_groups(session, principal, params)
            people = await repo.persons_by_id(session, [pid for g in groups for pid in g[3]])
            for village, _, birth, ids in groups:
                persons = [people[i] for i in sorted(ids)]
                items.append(DuplicateCandidates("same_name_birth_village", village, birth, persons))
        else:
            persons, cursor = await repo.without_nik(session, principal, params)
            alike = await repo.candidates(session, principal, persons)
            for p in persons:
                others = [o for o in alike.get((p.name_key, p.birth_date), []) if o.id != p.id]
                items.append(DuplicateCandidates("without_nik", None, p.birth_date, [p, *others]))
    return items, cursor


async def merge_persons(
    session: AsyncSession,
    vault: PiiVault,
    principal: Principal,
    survivor_id: uuid.UUID,
    merged_id: uuid.UUID,
    expected: IfMatchCondition,
) -> tuple[Person, Family]:
    """Merge `merged_id` into `survivor_id` (If-Match is the survivor's version)."""
    async with session.begin():
        if survivor_id == merged_id:
            raise ValidationFailed(
                "a person cannot be merged into itself",
                field="body.merged_person_id",
                rule="merge.same_person",
            )
        # Lock both in id order so that two opposite merges cannot deadlock.
        first, second = sorted([survivor_id, merged_id])
        locked = {
            pid: await fam_repo.get_person(session, pid, principal, lock=True) for pid in (first, second)
        }
        survivor, family = locked[survivor_id]
        other, other_family = locked[merged_id]
        check_version(expected, survivor.version)
        if survivor.nik_index is not None and other.nik_index is not None:
            raise Conflict(
                "both records carry a NIK: they are different people",
                field="body.merged_person_id",
                rule="merge.both_have_nik",
            )
        if other_family.head_person_id == other.id and other_family.id != family.id:
            raise Conflict(
                "the duplicate heads another family; name another head there first",
                field="body.merged_person_id",
                rule="family.head_cannot_leave",
            )
        for model, status_col, value, rule in (
            (Pregnancy, Pregnancy.status, "ongoing", "merge.both_pregnant"),
            (StuntingCase, StuntingCase.status, "open", "merge.both_open_stunting_case"),
        ):
            if await repo.both_have(session, model, status_col, value, [survivor.id, other.id]):
                raise Conflict(
                    "both records have one; close one of them first", field="body.merged_person_id", rule=rule
                )
        # The survivor's current KB status stands; the duplicate's becomes history.
        if await repo.has_current_kb_status(session, survivor.id):
            await repo.retire_current_kb_status(session, other.id)
        await repo.end_open_membership(session, other.id, business_today(), "merged")
        await repo.repoint_person(session, other.id, survivor.id)
        gained_nik = False
        if survivor.nik_index is None and other.nik_ciphertext is not None and other.nik_key_id is not None:
            nik = vault.open("nik", Sealed(other.nik_key_id, other.nik_ciphertext), other.id)
            other.nik_key_id = other.nik_ciphertext = other.nik_index = None
            await session.flush()  # free the unique blind index before the survivor takes it
            seal_nik(vault, survivor, nik)
            survivor.nik_conflicts = survivor.nik_conflicts or other.nik_conflicts
            gained_nik = True
        if other_family.head_person_id == other.id:
            other_family.head_person_id = survivor.id
            survivor.relation = "kepala_keluarga"
        other.deleted_at, other.merged_into_person_id = utcnow(), survivor.id
        other.version += 1
        survivor.version += 1
        await session.flush()
        await emit(
            session,
            PersonsMerged(
                person_id=survivor.id,
                merged_person_id=other.id,
                family_id=family.id,
                merged_family_id=other_family.id,
            ),
            family.id,
        )
        if gained_nik:
            await emit(session, PersonUpdated(**person_facts(survivor, family)), family.id)
        await refresh_krs(session, family)
        if other_family.id != family.id:
            await refresh_krs(session, other_family)
        await session.refresh(survivor)
        return survivor, family
