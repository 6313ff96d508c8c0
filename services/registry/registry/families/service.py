"""Use cases of Kampung KB, families and persons: each opens the transaction, writes outbox rows, commits once."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from registry.common import PII_READ
from registry.families import domain, registration
from registry.families import repository as repo
from registry.families.domain import Revealed
from registry.families.facts import family_facts, person_facts, refresh_krs
from registry.families.models import AccessLog, Family, FamilyKkHistory, FamilyMembership, KampungKb, Person
from registry.families.schemas import (
    FamilyCreate,
    FamilyMove,
    FamilyUpdate,
    KampungKbCreate,
    KampungKbUpdate,
    PersonDeath,
    PersonInput,
    PersonMove,
    PersonUpdate,
)
from registry.outbox import emit, outbox_rows
from registry.pii import PiiVault, Sealed
from shared.auth import Principal
from shared.clock import business_today
from shared.db import new_id, utcnow
from shared.errors import Conflict, fail
from shared.events.registry import (
    FamilyMoved,
    FamilyUpdated,
    PersonDied,
    PersonMoved,
    PersonRegistered,
    PersonUpdated,
)
from shared.web.context import current_correlation_id
from shared.web.etag import IfMatchCondition, check_version
from shared.web.pagination import PageParams


def access_entry(
    principal: Principal,
    purpose: str,
    action: str,
    fields: list[str],
    *,
    person_id: uuid.UUID | None,
    family_id: uuid.UUID | None,
) -> AccessLog:
    """The access-log row of a read of personal data: who, why, what, under which request (the subject sees it)."""
    return AccessLog(
        actor=principal.sub,
        person_id=person_id,
        family_id=family_id,
        purpose=purpose,
        action=action,
        fields=fields,
        request_id=current_correlation_id(),
    )


async def reveal(
    session: AsyncSession,
    vault: PiiVault,
    principal: Principal,
    purpose: str | None,
    *,
    persons: list[Person] = (),  # type: ignore[assignment]
    families: list[Family] = (),  # type: ignore[assignment]
    action: str = "read",
) -> Revealed | None:
    """Decrypt numbers for a caller with `registry:pii:read`, writing one access-log row per record first."""
    if not principal.has(PII_READ) or purpose is None:
        return None
    out = Revealed({}, {})
    for p in persons:
        if p.nik_ciphertext is None or p.nik_key_id is None:
            continue
        out.niks[p.id] = vault.open("nik", Sealed(p.nik_key_id, p.nik_ciphertext), p.id)
        session.add(access_entry(principal, purpose, action, ["nik"], person_id=p.id, family_id=p.family_id))
    for f in families:
        if f.kk_ciphertext is None or f.kk_key_id is None:
            continue
        out.kks[f.id] = vault.open("kk", Sealed(f.kk_key_id, f.kk_ciphertext), f.id)
        session.add(
            access_entry(
                principal, purpose, action, ["kk_number"], person_id=f.head_person_id, family_id=f.id
            )
        )
    await session.flush()
    return out


# ------------------------------------------------------------------------------------------ Kampung KB


async def create_kampung_kb(session: AsyncSession, principal: Principal, body: KampungKbCreate) -> KampungKb:
    async with session.begin():
        principal.ensure_access(body.village_code, "village")
        if not await repo.village_exists(session, body.village_code):
            fail(
                [
                    {
                        "field": "body.village_code",
                        "rule": "region.village_unknown",
                        "message": "unknown village code",
                    }
                ]
            )
        if await repo.kampung_kb_code_taken(session, body.code):
            raise Conflict(
                "a Kampung KB with this code exists", field="body.code", rule="kampung_kb.code_taken"
            )
        row = KampungKb(id=new_id(), **body.model_dump(exclude={"rw_list"}))
        session.add(row)
        await session.flush()
        await session.refresh(row)
        return row


async def update_kampung_kb(
    session: AsyncSession,
    principal: Principal,
    kkb_id: uuid.UUID,
    body: KampungKbUpdate,
    expected: IfMatchCondition,
) -> KampungKb:
    async with session.begin():
        row = await repo.get_kampung_kb(session, kkb_id, principal, lock=True)
        check_version(expected, row.version)
        for key, value in body.model_dump(exclude_unset=True, exclude={"rw_list"}).items():
            if value is None and key in ("name", "rws", "active"):
                continue
            setattr(row, key, value)
        row.version += 1
        await session.flush()
        await session.refresh(row)
        return row


async def get_kampung_kb(session: AsyncSession, principal: Principal, kkb_id: uuid.UUID) -> KampungKb:
    """One Kampung KB inside the caller's region."""
    async with session.begin():
        return await repo.get_kampung_kb(session, kkb_id, principal)


# ------------------------------------------------------------------------------------------ reads


def _live(rows: list[Any]) -> list[Any]:
    """Rows that are not tombstones: only those have numbers to reveal."""
    return [r for r in rows if r.deleted_at is None]


async def list_families(
    session: AsyncSession,
    vault: PiiVault,
    principal: Principal,
    purpose: str | None,
    params: PageParams,
    *,
    region: str | None,
    kampung_kb_id: uuid.UUID | None,
    krs: bool | None,
    updated_since: datetime | None,
) -> tuple[list[Family], Revealed | None, str | None]:
    """A page of families in the caller's region (or their change feed), KK numbers revealed if allowed.

    A use case, not a pass-through: revealing writes access-log rows, committed with the read.
    """
    async with session.begin():
        families, cursor = await repo.families_page(
            session,
            principal,
            params,
            region=region,
            kampung_kb_id=kampung_kb_id,
            krs=krs,
            updated_since=updated_since,
        )
        revealed = await reveal(session, vault, principal, purpose, families=_live(families))
    return families, revealed, cursor


async def get_family(
    session: AsyncSession, vault: PiiVault, principal: Principal, family_id: uuid.UUID, purpose: str | None
) -> tuple[Family, list[Person], Revealed | None]:
    """A family with its current members, numbers revealed if allowed."""
    async with session.begin():
        family = await repo.get_family(session, family_id, principal)
        members = await repo.current_members(session, family.id)
        revealed = await reveal(session, vault, principal, purpose, persons=members, families=[family])
    return family, members, revealed


async def list_members(
    session: AsyncSession, vault: PiiVault, principal: Principal, family_id: uuid.UUID, purpose: str | None
) -> tuple[list[Person], Revealed | None]:
    """The family's current members, NIKs revealed if allowed."""
    async with session.begin():
        family = await repo.get_family(session, family_id, principal)
        members = await repo.current_members(session, family.id)
        revealed = await reveal(session, vault, principal, purpose, persons=members)
    return members, revealed


async def list_persons(
    session: AsyncSession,
    vault: PiiVault,
    principal: Principal,
    purpose: str | None,
    params: PageParams,
    *,
    region: str | None,
    family_id: uuid.UUID | None,
    sex: str | None,
    updated_since: datetime | None,
) -> tuple[list[Person], Revealed | None, str | None]:
    """A page of persons in the caller's region (or their change feed), NIKs revealed if allowed (logged)."""
    async with session.begin():
        persons, cursor = await repo.persons_page(
            session,
            principal,
            params,
            region=region,
            family_id=family_id,
            sex=sex,
            updated_since=updated_since,
        )
        revealed = await reveal(session, vault, principal, purpose, persons=_live(persons))
    return persons, revealed, cursor


async def get_person(
    session: AsyncSession, vault: PiiVault, principal: Principal, person_id: uuid.UUID, purpose: str | None
) -> tuple[Person, Revealed | None]:
    """One person inside the caller's region, NIK revealed if allowed."""
    async with session.begin():
        person, _ = await repo.get_person(session, person_id, principal)
        revealed = await reveal(session, vault, principal, purpose, persons=[person])
    return person, revealed


async def memberships(
    session: AsyncSession, principal: Principal, person_id: uuid.UUID
) -> list[FamilyMembership]:
    """A person's family membership history."""
    async with session.begin():
        await repo.get_person(session, person_id, principal)
        return await repo.memberships(session, person_id)


async def access_log(
    session: AsyncSession, principal: Principal, person_id: uuid.UUID, params: PageParams
) -> tuple[list[AccessLog], str | None]:
    """A page of the unmasked reads of a person's numbers."""
    async with session.begin():
        await repo.get_person(session, person_id, principal)
        return await repo.access_log(session, person_id, params)


# ------------------------------------------------------------------------------------------ persons


def _kk_number(raw: str | None) -> str | None:
    if raw is None:
        return None
    check, errors = domain.kk_errors(raw, today=business_today())
    fail(errors)
    return check.kk


async def register_family(
    session: AsyncSession, vault: PiiVault, principal: Principal, body: FamilyCreate
) -> tuple[Family, list[Person]]:
    """Create a family with its head (and members) in one transaction; events for each.

    Every rule that needs no database is checked first without failing, so that the database is asked once for
    what the others need (village, Kampung KB, KK and NIK holders) and written once (family, KK history,
    persons, memberships and outbox rows in one statement). Broken rules are still reported in the order they
    are listed here: region, head and village, KK number, Kampung KB, KK holder, each member (rules, NIK twice
    in the family, guardian), NIK holders.
    """
    try:
        async with session.begin():
            principal.ensure_access(body.village_code, "village")
            now = business_today()
            checked = registration.check_family(vault, body, now)
            found = await repo.registration_lookup(
                session,
                principal,
                village_code=body.village_code,
                kampung_kb_id=body.kampung_kb_id,
                kk_index=checked.kk_index,
                nik_indexes=list(set(checked.nik_indexes.values())),
            )
            registration.refuse_family(body, checked, found)
            family, history = registration.new_family(vault, body, checked, found)
            persons = await registration.new_members(session, vault, principal, body, checked, family)
            registration.refuse_registered_niks(principal, checked, found)
            made = await repo.insert_registration(
                session,
                family=family,
                kk_history=history,
                persons=persons,
                memberships=[registration.new_membership(p, family.id, now) for p in persons],
                outbox_rows=outbox_rows(registration.registration_events(family, persons)),
            )
            registration.take_database_values(family, persons, made)
            return family, persons
    except IntegrityError as exc:
        raise Conflict("the family collides with existing data (NIK or KK number)", rule="unique") from exc


async def update_family(
    session: AsyncSession,
    vault: PiiVault,
    principal: Principal,
    family_id: uuid.UUID,
    body: FamilyUpdate,
    expected: IfMatchCondition,
) -> Family:
    try:
        async with session.begin():
            family = await repo.get_family(session, family_id, principal, lock=True)
            check_version(expected, family.version)
            changes = body.model_dump(exclude_unset=True)
            kk = changes.pop("kk_number", None)
            reason = changes.pop("kk_change_reason", None)
            if kk is not None:
                await registration.change_kk(session, vault, family, _kk_number(kk) or "", reason)
            if changes.get("kampung_kb_id") is not None:
                await repo.get_kampung_kb(session, changes["kampung_kb_id"], principal)
            for key, value in changes.items():
                setattr(family, key, value)
            family.version += 1
            await session.flush()
            await emit(session, FamilyUpdated(**family_facts(family)), family.id)
            await refresh_krs(session, family)
            await session.refresh(family)
            return family
    except IntegrityError as exc:
        raise Conflict("the KK number collides with another family", rule="unique") from exc


async def move_family(
    session: AsyncSession,
    principal: Principal,
    family_id: uuid.UUID,
    body: FamilyMove,
    expected: IfMatchCondition,
) -> Family:
    async with session.begin():
        family = await repo.get_family(session, family_id, principal, lock=True)
        check_version(expected, family.version)
        # Moving a family out of one's own region would hand it to someone else: the target must be in scope.
        principal.ensure_access(body.village_code, "village")
        if not await repo.village_exists(session, body.village_code):
            fail(
                [
                    {
                        "field": "body.village_code",
                        "rule": "region.village_unknown",
                        "message": "unknown village code",
                    }
                ]
            )
        if body.moved_on > business_today():
            fail(
                [
                    {
                        "field": "body.moved_on",
                        "rule": "family.moved_on_future",
                        "message": "moved_on lies in the future",
                    }
                ]
            )
        if body.kampung_kb_id is not None:
            await repo.get_kampung_kb(session, body.kampung_kb_id, principal)
        old = family.village_code
        family.village_code, family.rw, family.rt, family.street = (
            body.village_code,
            body.rw,
            body.rt,
            body.street,
        )
        family.kampung_kb_id = body.kampung_kb_id
        family.version += 1
        await session.flush()
        await emit(
            session,
            FamilyMoved(
                family_id=family.id,
                from_village_code=old,
                village_code=family.village_code,
                rw=family.rw,
                rt=family.rt,
                moved_on=body.moved_on,
            ),
            family.id,
        )
        await session.refresh(family)
        return family


async def delete_family(
    session: AsyncSession, principal: Principal, family_id: uuid.UUID, expected: IfMatchCondition
) -> None:
    """Soft delete (entered in error): the row stays as a tombstone in the change feed."""
    async with session.begin():
        family = await repo.get_family(session, family_id, principal, lock=True)
        check_version(expected, family.version)
        now = utcnow()
        family.deleted_at = now
        family.version += 1
        for person in await repo.current_members(session, family.id):
            person.deleted_at = now
            person.version += 1


async def add_member(
    session: AsyncSession, vault: PiiVault, principal: Principal, family_id: uuid.UUID, body: PersonInput
) -> tuple[Person, Family]:
    try:
        async with session.begin():
            family = await repo.get_family(session, family_id, principal, lock=True)
            if body.relation == "kepala_keluarga" and family.head_person_id is not None:
                fail(
                    [
                        {
                            "field": "body.relation",
                            "rule": "family.one_head",
                            "message": "the family already has a head",
                        }
                    ]
                )
            person = await registration.add_person(
                session, vault, principal, body, family, started_on=business_today(), prefix="body"
            )
            if body.relation == "kepala_keluarga":
                family.head_person_id = person.id
            await session.flush()
            await emit(session, PersonRegistered(**person_facts(person, family)), family.id)
            await refresh_krs(session, family)
            await session.refresh(person)
            return person, family
    except IntegrityError as exc:
        raise Conflict(
            "a person with this NIK is already registered", field="body.nik", rule="nik.duplicate"
        ) from exc


async def update_person(
    session: AsyncSession,
    vault: PiiVault,
    principal: Principal,
    person_id: uuid.UUID,
    body: PersonUpdate,
    expected: IfMatchCondition,
) -> tuple[Person, Family]:
    try:
        async with session.begin():
            person, family = await repo.get_person(session, person_id, principal, lock=True)
            check_version(expected, person.version)
            changes = body.model_dump(exclude_unset=True)
            nik = changes.pop("nik", None)
            for key, value in changes.items():
                if value is None and key in (
                    "name",
                    "sex",
                    "birth_date",
                    "relation",
                    "marital_status",
                    "legal_basis",
                ):
                    continue
                setattr(person, key, value)
            checked_nik = nik
            if (
                nik is None
                and person.nik_ciphertext is not None
                and ("birth_date" in changes or "sex" in changes)
            ):
                # A changed birth date or sex must still agree with the NIK on file (checked, not sealed again).
                checked_nik = vault.open(
                    "nik", Sealed(person.nik_key_id or "", person.nik_ciphertext), person.id
                )
            errors, plain = registration.person_checks(person, checked_nik, business_today())
            fail(errors)
            if nik is not None and plain is not None:
                await registration.claim_nik(session, vault, principal, person, plain)
            if changes.get("relation") == "kepala_keluarga" and family.head_person_id not in (
                None,
                person.id,
            ):
                fail(
                    [
                        {
                            "field": "body.relation",
                            "rule": "family.one_head",
                            "message": "the family already has a head",
                        }
                    ]
                )
            if changes.get("relation") == "kepala_keluarga":
                family.head_person_id = person.id
            person.version += 1
            await session.flush()
            await emit(session, PersonUpdated(**person_facts(person, family)), family.id)
            await refresh_krs(session, family)
            await session.refresh(person)
            return person, family
    except IntegrityError as exc:
        raise Conflict(
            "a person with this NIK is already registered", field="body.nik", rule="nik.duplicate"
        ) from exc


async def person_died(
    session: AsyncSession,
    principal: Principal,
    person_id: uuid.UUID,
    body: PersonDeath,
    expected: IfMatchCondition,
) -> tuple[Person, Family]:
    async with session.begin():
        person, family = await repo.get_person(session, person_id, principal, lock=True)
        check_version(expected, person.version)
        if person.died_on is not None:
            raise Conflict(
                "the person's death is already recorded", field="body.died_on", rule="person.already_dead"
            )
        fail(
            domain.person_errors(
                birth_date=person.birth_date,
                today=business_today(),
                legal_basis="public_service_mandate",
                guardian_person_id=None,
                died_on=body.died_on,
            )
        )
        person.died_on = body.died_on
        person.version += 1
        await session.flush()
        await emit(
            session,
            PersonDied(
                person_id=person.id,
                family_id=family.id,
                village_code=family.village_code,
                died_on=body.died_on,
            ),
            family.id,
        )
        await refresh_krs(session, family)
        await session.refresh(person)
        return person, family


async def move_person(
    session: AsyncSession,
    principal: Principal,
    person_id: uuid.UUID,
    body: PersonMove,
    expected: IfMatchCondition,
) -> tuple[Person, Family]:
    """Close the current membership and open one in the new family (or record a move out of the area)."""
    async with session.begin():
        person, old_family = await repo.get_person(session, person_id, principal, lock=True)
        check_version(expected, person.version)
        if person.moved_out_on is not None or person.died_on is not None:
            raise Conflict("the person is no longer in a family here", rule="person.not_movable")
        if body.moved_on > business_today() or body.moved_on < person.birth_date:
            fail(
                [
                    {
                        "field": "body.moved_on",
                        "rule": "person.moved_on_invalid",
                        "message": "moved_on must lie between birth and today",
                    }
                ]
            )
        if old_family.head_person_id == person.id:
            fail(
                [
                    {
                        "field": "body.person_id",
                        "rule": "family.head_cannot_leave",
                        "message": "name another head (relation kepala_keluarga) before the head leaves",
                    }
                ]
            )
        membership = await repo.open_membership(session, person.id)
        if membership is not None:
            membership.ended_on, membership.end_reason = (
                body.moved_on,
                "moved" if body.to_family_id else "moved_out",
            )
        new_family: Family | None = None
        if body.to_family_id is not None:
            if body.to_family_id == old_family.id:
                fail(
                    [
                        {
                            "field": "body.to_family_id",
                            "rule": "person.same_family",
                            "message": "already in this family",
                        }
                    ]
                )
            new_family = await repo.get_family(session, body.to_family_id, principal, lock=True)
            relation = body.relation or person.relation
            if relation == "kepala_keluarga" and new_family.head_person_id is not None:
                fail(
                    [
                        {
                            "field": "body.relation",
                            "rule": "family.one_head",
                            "message": "the family already has a head",
                        }
                    ]
                )
            person.family_id, person.relation = new_family.id, relation
            if relation == "kepala_keluarga":
                new_family.head_person_id = person.id
            session.add(
                FamilyMembership(
                    person_id=person.id, family_id=new_family.id, relation=relation, started_on=body.moved_on
                )
            )
        else:
            person.moved_out_on = body.moved_on
        person.version += 1
        await session.flush()
        await emit(
            session,
            PersonMoved(
                person_id=person.id,
                from_family_id=old_family.id,
                family_id=new_family.id if new_family else None,
                from_village_code=old_family.village_code,
                village_code=new_family.village_code if new_family else None,
                rw=new_family.rw if new_family else None,
                moved_on=body.moved_on,
            ),
            old_family.id,
        )
        await refresh_krs(session, old_family)
        if new_family is not None:
            await refresh_krs(session, new_family)
        await session.refresh(person)
        return person, new_family or old_family


async def delete_person(
    session: AsyncSession, principal: Principal, person_id: uuid.UUID, expected: IfMatchCondition
) -> None:
    async with session.begin():
        person, family = await repo.get_person(session, person_id, principal, lock=True)
        check_version(expected, person.version)
        if family.head_person_id == person.id:
            fail(
                [
                    {
                        "field": "path.person_id",
                        "rule": "family.head_cannot_leave",
                        "message": "name another head before deleting the head",
                    }
                ]
            )
        person.deleted_at = utcnow()
        person.version += 1
        membership = await repo.open_membership(session, person.id)
        if membership is not None:
            membership.ended_on, membership.end_reason = business_today(), "deleted"
        await session.flush()
        await refresh_krs(session, family)


async def search_by_nik(
    session: AsyncSession, vault: PiiVault, principal: Principal, nik: str, purpose: str
) -> tuple[list[Person], Revealed | None]:
    """Blind-index lookup, logged hit or miss; a holder outside the caller's region is simply not found.

    The three outcomes (in the region, outside it, nobody) take the same path: one index lookup, one access-log
    row, no early return, so neither the answer nor its timing tells "outside your region" from "no such NIK".
    """
    async with session.begin():
        digits = nik.replace(" ", "").replace(".", "").replace("-", "")
        found = await repo.person_by_nik_index(session, vault.index("nik", digits))
        visible = found is not None and principal.can_access(found[1].village_code)
        # The holder is logged even when outside the caller's region: the data subject's log shows who looked.
        session.add(
            access_entry(
                principal,
                purpose,
                "nik_search",
                ["nik"],
                person_id=found[0].id if found else None,
                family_id=found[1].id if found else None,
            )
        )
        await session.flush()
        if found is None or not visible:
            return [], None
        # The caller sent the number: a `registry:pii:read` caller sees it back without a decryption (and
        # without a second log row: the search row above is the record of this access).
        revealed = Revealed({found[0].id: digits}, {}) if principal.has(PII_READ) else None
        return [found[0]], revealed


async def kk_history(
    session: AsyncSession, vault: PiiVault, principal: Principal, family_id: uuid.UUID, purpose: str | None
) -> list[tuple[FamilyKkHistory, str | None]]:
    """The KK numbers a family has carried, each with its plain number: only with registry:pii:read (logged)."""
    async with session.begin():
        family = await repo.get_family(session, family_id, principal)
        rows = await repo.kk_history(session, family.id)
        plain = principal.has(PII_READ) and purpose is not None
        out: list[tuple[FamilyKkHistory, str | None]] = []
        for h in rows:
            number: str | None = None  # no masked form (docs/security.md)
            if plain:
                # History rows are sealed under their own id (see _set_kk).
                number = vault.open("kk", Sealed(h.kk_key_id, h.kk_ciphertext), h.id)
            out.append((h, number))
        if plain and rows:
            assert purpose is not None
            session.add(
                AccessLog(
                    actor=principal.sub,
                    person_id=family.head_person_id,
                    family_id=family.id,
                    purpose=purpose,
                    action="kk_history",
                    fields=["kk_number"],
                    request_id=current_correlation_id(),
                )
            )
        return out
