"""Registering families and persons: the one home of sealing a NIK or KK number, making a person with their
membership, keeping a family's KK history, and the events a registration publishes.

Families (a family, a member), health (a child born), duplicates (a merge hands a NIK over) and imports (a file's
families, one by one or as a batch) all come here. None of these functions opens a transaction: the use case that
calls them does, and commits once.

Sealing a number is three things kept together: the ciphertext, bound to the row that holds it (a ciphertext never
decrypts in another row); the blind index, which finds a holder and refuses a second one without decrypting
anything; and the masked form. A KK history row is sealed under its own id for the same reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple, Protocol, cast

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from registry.families import domain
from registry.families import repository as repo
from registry.families.facts import apply_krs, family_facts, member_facts, person_facts
from registry.families.models import Family, FamilyKkHistory, FamilyMembership, Person
from registry.families.schemas import FamilyCreate, PersonInput
from registry.identity.domain import Sex, mask_nik
from registry.pii import Kind, PiiVault
from shared.auth import Principal
from shared.clock import business_today
from shared.db import new_id, utcnow
from shared.errors import Conflict, NotFound, fail
from shared.events import EventData
from shared.events.registry import FamilyRegistered, PersonRegistered

# ------------------------------------------------------------------------------------------ sealing


class SealedNumber(NamedTuple):
    """A NIK or KK number as a row stores it, in the column order of `person` and `family` (key id first)."""

    key_id: str
    ciphertext: bytes
    blind_index: bytes
    masked: str

    def columns(self, kind: Kind) -> dict[str, Any]:
        """The values by column name: `nik_key_id`, `nik_ciphertext`, `nik_index`, `nik_masked` (or `kk_...`)."""
        return dict(
            zip(
                (f"{kind}_key_id", f"{kind}_ciphertext", f"{kind}_index", f"{kind}_masked"), self, strict=True
            )
        )


def seal_numbers(
    vault: PiiVault, kind: Kind, numbers: Sequence[tuple[str, uuid.UUID, bytes | None]]
) -> list[SealedNumber]:
    """Seal (number, owning row id, blind index if already known) triples with one cipher object."""
    blobs = vault.seal_many(kind, [(number, owner_id) for number, owner_id, _ in numbers])
    return [
        SealedNumber(
            vault.current_kid, blob, vault.index(kind, number) if index is None else index, mask_nik(number)
        )
        for (number, _, index), blob in zip(numbers, blobs, strict=True)
    ]


def seal_nik(vault: PiiVault, person: Person, nik: str, index: bytes | None = None) -> None:
    """Put a (checked, free) NIK on a person."""
    (sealed,) = seal_numbers(vault, "nik", [(nik, person.id, index)])
    person.nik_key_id, person.nik_ciphertext, person.nik_index, person.nik_masked = sealed


def seal_kk(vault: PiiVault, family: Family, kk: str, index: bytes | None = None) -> None:
    """Put a (checked, free) KK number on a family; its history row is `kk_history_entry`."""
    (sealed,) = seal_numbers(vault, "kk", [(kk, family.id, index)])
    family.kk_key_id, family.kk_ciphertext, family.kk_index, family.kk_masked = sealed


def kk_history_entry(
    vault: PiiVault,
    family_id: uuid.UUID,
    kk: str,
    index: bytes | None,
    *,
    valid_from: datetime,
    reason: str | None,
) -> FamilyKkHistory:
    """The history row of a family's new KK number, sealed under the row's own id."""
    history_id = new_id()
    (sealed,) = seal_numbers(vault, "kk", [(kk, history_id, index)])
    return FamilyKkHistory(
        id=history_id, family_id=family_id, valid_from=valid_from, reason=reason, **sealed.columns("kk")
    )


def nik_taken(principal: Principal, field: str, holder_id: uuid.UUID, holder_village_code: str) -> Conflict:
    """The refusal of a NIK someone else holds.

    The number is never echoed, even masked (issue 12). The holder's id is given only when the caller may see
    them: a holder elsewhere gets the same status and text, with no id (docs/security.md, oracles).
    """
    extra: dict[str, Any] = {}
    if principal.can_access(holder_village_code):
        extra["existing_person_id"] = str(holder_id)
    return Conflict(
        "a person with this NIK is already registered", field=field, rule="nik.duplicate", extra=extra
    )


async def claim_nik(
    session: AsyncSession, vault: PiiVault, principal: Principal, person: Person, nik: str
) -> None:
    """Seal a NIK on a person unless another person holds it (409)."""
    index = vault.index("nik", nik)
    existing = await repo.person_by_nik_index(session, index)
    if existing is not None and existing[0].id != person.id:
        other, other_family = existing
        raise nik_taken(principal, "body.nik", other.id, other_family.village_code)
    seal_nik(vault, person, nik, index)


async def change_kk(
    session: AsyncSession, vault: PiiVault, family: Family, kk: str, reason: str | None
) -> None:
    """Give a family a new KK number (pecah KK, a move...): the current history row closes, a new one opens."""
    index = vault.index("kk", kk)
    other = await repo.family_by_kk_index(session, index)
    if other is not None and other.id != family.id:
        raise Conflict("another family holds this KK number", field="body.kk_number", rule="kk.duplicate")
    if family.kk_index == index:
        return
    now = utcnow()
    previous = await repo.current_kk_history(session, family.id)
    if previous is not None:
        previous.valid_to = now
    seal_kk(vault, family, kk, index)
    session.add(kk_history_entry(vault, family.id, kk, index, valid_from=now, reason=reason))


# ------------------------------------------------------------------------------------------ persons


class PersonDetails(Protocol):
    """What is entered about a person, from a form (`PersonInput`) or a file row (`ImportRow`)."""

    @property
    def name(self) -> str: ...
    @property
    def sex(self) -> str: ...
    @property
    def birth_date(self) -> date: ...
    @property
    def relation(self) -> str: ...
    @property
    def marital_status(self) -> str: ...
    @property
    def education(self) -> str | None: ...
    @property
    def occupation(self) -> str | None: ...
    @property
    def legal_basis(self) -> str: ...


def new_person(family_id: uuid.UUID, details: PersonDetails, **columns: Any) -> Person:
    """A new person row of a family; `columns` sets the others the caller has (guardian, NIK conflicts)."""
    return Person(
        id=new_id(),
        family_id=family_id,
        name=details.name,
        sex=details.sex,
        birth_date=details.birth_date,
        relation=details.relation,
        marital_status=details.marital_status,
        education=details.education,
        occupation=details.occupation,
        legal_basis=details.legal_basis,
        **columns,
    )


def new_membership(person: Person, family_id: uuid.UUID, started_on: date) -> FamilyMembership:
    """The open membership a person starts in a family with."""
    return FamilyMembership(
        id=new_id(), person_id=person.id, family_id=family_id, relation=person.relation, started_on=started_on
    )


class PersonRecord(PersonDetails, Protocol):
    """A person as entered through the API (`PersonInput`) or as stored (`Person`): what the person rules read."""

    @property
    def guardian_person_id(self) -> uuid.UUID | None: ...


def person_checks(
    person: PersonRecord, nik: str | None, on: date, prefix: str = "body"
) -> tuple[list[dict[str, Any]], str | None]:
    """The person's broken rules, the NIK's among them (it must agree with birth date and sex), without failing;
    and the NIK's digits when one was given."""
    errors = domain.person_errors(
        birth_date=person.birth_date,
        today=on,
        legal_basis=person.legal_basis,
        guardian_person_id=person.guardian_person_id,
        prefix=prefix,
    )
    if nik is None:
        return errors, None
    check, nik_errors = domain.nik_errors(
        nik, today=on, birth_date=person.birth_date, sex=cast(Sex, person.sex), field_name=f"{prefix}.nik"
    )
    return errors + nik_errors, check.nik


async def add_person(
    session: AsyncSession,
    vault: PiiVault,
    principal: Principal,
    data: PersonInput,
    family: Family,
    *,
    started_on: date,
    prefix: str,
) -> Person:
    """Validate and insert one person with an open membership (the caller publishes the event)."""
    errors, nik = person_checks(data, data.nik or None, business_today(), prefix)
    fail(errors)
    person = new_person(family.id, data, guardian_person_id=data.guardian_person_id)
    if nik is not None:
        await claim_nik(session, vault, principal, person, nik)
    if data.guardian_person_id is not None:
        await repo.get_person(session, data.guardian_person_id, principal)
    session.add(person)
    await session.flush()  # no ORM relationships: the person row must exist before its membership
    session.add(new_membership(person, family.id, started_on))
    return person


# ------------------------------------------------------------------------------------------ a family


@dataclass
class CheckedFamily:
    """A new family's numbers and members under every rule that needs no database, not yet refused."""

    kk: str | None
    kk_errors: list[dict[str, Any]]
    kk_index: bytes | None
    # Per member, in the body's order: the broken rules and the NIK's digits (None without one).
    members: list[tuple[list[dict[str, Any]], str | None]]
    nik_indexes: dict[str, bytes]

    def member_with(self, nik_index: bytes) -> int:
        """The position of the (first) member whose NIK has this blind index."""
        return next(
            i for i, (_, nik) in enumerate(self.members) if nik and self.nik_indexes.get(nik) == nik_index
        )


def check_family(vault: PiiVault, body: FamilyCreate, on: date) -> CheckedFamily:
    """Check the KK number and each member without failing; index the valid numbers for one database lookup."""
    kk: str | None = None
    kk_errors: list[dict[str, Any]] = []
    if body.kk_number is not None:
        kk_check, kk_errors = domain.kk_errors(body.kk_number, today=on)
        kk = kk_check.kk
    members = [
        person_checks(member, member.nik or None, on, f"body.members.{i}")
        for i, member in enumerate(body.members)
    ]
    return CheckedFamily(
        kk=kk,
        kk_errors=kk_errors,
        kk_index=vault.index("kk", kk) if kk and not kk_errors else None,
        members=members,
        nik_indexes={nik: vault.index("nik", nik) for errors, nik in members if nik and not errors},
    )


def refuse_family(body: FamilyCreate, checked: CheckedFamily, found: repo.RegistrationLookup) -> None:
    """The family's own rules, in order: one head and a known village, the KK number, the Kampung KB."""
    errors = domain.head_errors([m.relation for m in body.members])
    if not found.village_exists:
        errors.append(
            {
                "field": "body.village_code",
                "rule": "region.village_unknown",
                "message": "unknown village code",
            }
        )
    fail(errors)
    fail(checked.kk_errors)
    if body.kampung_kb_id is not None and not found.kampung_kb_found:
        raise NotFound("Kampung KB not found")


def new_family(
    vault: PiiVault, body: FamilyCreate, checked: CheckedFamily, found: repo.RegistrationLookup
) -> tuple[Family, FamilyKkHistory | None]:
    """The family row, its KK number sealed and its first KK history row (a KK number held elsewhere: 409)."""
    family = Family(
        id=new_id(),
        village_code=body.village_code,
        rw=body.rw,
        rt=body.rt,
        street=body.street,
        kampung_kb_id=body.kampung_kb_id,
        welfare_decile=body.welfare_decile,
        drinking_water_source=body.drinking_water_source,
        latrine_type=body.latrine_type,
    )
    if not checked.kk:
        return family, None
    if found.kk_taken:
        raise Conflict("another family holds this KK number", field="body.kk_number", rule="kk.duplicate")
    seal_kk(vault, family, checked.kk, checked.kk_index)
    return family, kk_history_entry(
        vault, family.id, checked.kk, checked.kk_index, valid_from=utcnow(), reason="registered"
    )


async def new_members(
    session: AsyncSession,
    vault: PiiVault,
    principal: Principal,
    body: FamilyCreate,
    checked: CheckedFamily,
    family: Family,
) -> list[Person]:
    """The members' rows, each refused in turn for its rules, a NIK given twice in the family, its guardian."""
    persons: list[Person] = []
    seen: set[bytes] = set()
    for i, (member, (errors, nik)) in enumerate(zip(body.members, checked.members, strict=True)):
        fail(errors)
        person = new_person(family.id, member, guardian_person_id=member.guardian_person_id)
        if nik:
            index = checked.nik_indexes[nik]
            if index in seen:
                raise Conflict(
                    "the same NIK appears twice", field=f"body.members.{i}.nik", rule="nik.duplicate"
                )
            seen.add(index)
            seal_nik(vault, person, nik, index)
        if member.guardian_person_id is not None:
            await repo.get_person(session, member.guardian_person_id, principal)
        if member.relation == "kepala_keluarga":
            family.head_person_id = person.id
        persons.append(person)
    return persons


def refuse_registered_niks(
    principal: Principal, checked: CheckedFamily, found: repo.RegistrationLookup
) -> None:
    """A member's NIK held by someone already registered: 409 naming the first such member."""
    for holder in sorted(found.nik_holders, key=lambda h: checked.member_with(h.nik_index)):
        field = f"body.members.{checked.member_with(holder.nik_index)}.nik"
        raise nik_taken(principal, field, holder.person_id, holder.village_code)


def registration_events(family: Family, persons: list[Person]) -> list[tuple[EventData, uuid.UUID]]:
    """A new family's events in order: the family, each member, then its first stunting-risk status (if any)."""
    krs_event = apply_krs(
        family,
        domain.FamilyFacts(
            drinking_water_source=family.drinking_water_source,
            latrine_type=family.latrine_type,
            members=member_facts(persons),
        ),
    )
    events: list[tuple[EventData, uuid.UUID]] = [(FamilyRegistered(**family_facts(family)), family.id)]
    events += [(PersonRegistered(**person_facts(p, family)), family.id) for p in persons]
    if krs_event is not None:
        events.append((krs_event, family.id))
    return events


def take_database_values(family: Family, persons: list[Person], made: Sequence[Row[Any]]) -> None:
    """Copy what the database made on insert (timestamps, versions, the name key) onto the new rows."""
    for person, row in zip(persons, made, strict=True):
        person.created_at, person.updated_at = row.created_at, row.updated_at
        person.version, person.name_key = row.version, row.name_key
    family.created_at, family.updated_at = made[0].family_created_at, made[0].family_updated_at
    family.version = made[0].family_version
