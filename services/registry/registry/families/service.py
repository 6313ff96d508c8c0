"""Use cases of Kampung KB, families and persons: each opens the transaction, writes outbox rows, commits once."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from registry import rules
from registry.common import PII_READ, today
from registry.families import domain
from registry.families import repository as repo
from registry.families.domain import Revealed
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
from registry.identity.domain import Sex, mask_nik
from registry.models import outbox
from registry.pii import PiiVault, Sealed
from shared.auth import Principal
from shared.db import new_id, utcnow
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.events import EventData
from shared.events.envelope import build_envelope
from shared.events.registry import (
    FamilyMoved,
    FamilyRegistered,
    FamilyUpdated,
    PersonDied,
    PersonMoved,
    PersonRegistered,
    PersonUpdated,
    StuntingRiskChanged,
)
from shared.outbox import publish
from shared.web.context import current_correlation_id
from shared.web.etag import IfMatchCondition, check_version
from shared.web.pagination import PageParams


def fail(errors: list[dict[str, Any]], detail: str = "the input breaks rules") -> None:
    """Raise one 422 naming every broken rule (nothing is written)."""
    if errors:
        first = errors[0]
        raise ValidationFailed(
            detail if len(errors) > 1 else first["message"],
            field=first["field"],
            rule=first["rule"],
            errors=errors,
        )


async def emit(session: AsyncSession, data: EventData, family_id: uuid.UUID) -> None:
    """Outbox row in the current transaction, keyed by family so a family's events stay in order."""
    await publish(session, outbox, data, key=family_id)


# ------------------------------------------------------------------------------------------ PUS, revealed numbers


def person_pus(person: Person, on: date | None = None) -> bool:
    return domain.person_pus(person, on or today())


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
        session.add(
            AccessLog(
                actor=principal.sub,
                person_id=p.id,
                family_id=p.family_id,
                purpose=purpose,
                action=action,
                fields=["nik"],
                request_id=current_correlation_id(),
            )
        )
    for f in families:
        if f.kk_ciphertext is None or f.kk_key_id is None:
            continue
        out.kks[f.id] = vault.open("kk", Sealed(f.kk_key_id, f.kk_ciphertext), f.id)
        session.add(
            AccessLog(
                actor=principal.sub,
                person_id=f.head_person_id,
                family_id=f.id,
                purpose=purpose,
                action=action,
                fields=["kk_number"],
                request_id=current_correlation_id(),
            )
        )
    await session.flush()
    return out


# ------------------------------------------------------------------------------------------ events


def family_facts(family: Family) -> dict[str, Any]:
    return {
        "family_id": family.id,
        "village_code": family.village_code,
        "rw": family.rw,
        "rt": family.rt,
        "kampung_kb_id": family.kampung_kb_id,
        "welfare_decile": family.welfare_decile,
        "drinking_water_proper": domain.water_proper(family.drinking_water_source),
        "latrine_proper": domain.latrine_proper(family.latrine_type),
    }


def person_facts(person: Person, family: Family, on: date | None = None) -> dict[str, Any]:
    """The event facts of a person; `pus` as of `on` (default today: the age sweep dates it at a birthday)."""
    return {
        "person_id": person.id,
        "family_id": family.id,
        "village_code": family.village_code,
        "rw": family.rw,
        "sex": person.sex,
        "birth_date": person.birth_date,
        "relation": person.relation,
        "marital_status": person.marital_status,
        "has_nik": person.nik_index is not None,
        "pus": person_pus(person, on),
        "rule_version": rules.RULES_VERSION,
    }


def apply_krs(family: Family, facts: domain.FamilyFacts) -> StuntingRiskChanged | None:
    """Set the family's KRS fields from its facts; the event to publish when status or reasons changed."""
    result = domain.evaluate_krs(facts, today())
    changed = (
        result.at_risk != family.krs
        or sorted(result.reasons) != sorted(family.krs_reasons or [])
        or result.target != family.krs_target
    )
    first = family.rule_version is None
    family.krs, family.krs_reasons, family.krs_target = result.at_risk, result.reasons, result.target
    family.rule_version = result.rule_version
    if changed or (first and (result.at_risk or result.target)):
        return StuntingRiskChanged(
            family_id=family.id,
            village_code=family.village_code,
            rw=family.rw,
            at_risk=result.at_risk,
            reasons=result.reasons,
            target=result.target,
            welfare_decile=family.welfare_decile,
            rule_version=result.rule_version,
        )
    return None


def member_facts(members: list[Person]) -> list[domain.MemberFacts]:
    return [
        domain.MemberFacts(m.sex, m.birth_date, m.relation, m.marital_status, alive=m.died_on is None)
        for m in members
    ]


async def refresh_krs(session: AsyncSession, family: Family) -> None:
    """Re-derive the family's stunting-risk status; publish a change when status or reasons differ."""
    members = await repo.current_members(session, family.id)
    facts = domain.FamilyFacts(
        drinking_water_source=family.drinking_water_source,
        latrine_type=family.latrine_type,
        members=member_facts(members),
        pregnant=await repo.has_ongoing_pregnancy(session, family.id),
    )
    event = apply_krs(family, facts)
    await session.flush()
    if event is not None:
        await emit(session, event, family.id)


def outbox_rows(events: list[tuple[EventData, uuid.UUID]]) -> list[dict[str, Any]]:
    """Outbox rows of several events, to write in one INSERT (the rows `shared.outbox.publish` writes one by one)."""
    rows = []
    for data, key in events:
        envelope = build_envelope(data, key=str(key), correlation_id=current_correlation_id())
        rows.append(
            {
                "event_id": uuid.UUID(envelope.id),
                "topic": data.topic(),
                "partition_key": envelope.partitionkey,
                "event_type": envelope.type,
                "envelope": envelope.model_dump(mode="json", exclude_none=True),
            }
        )
    return rows


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


async def _new_person(
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
    now = today()
    errors = domain.person_errors(
        birth_date=data.birth_date,
        today=now,
        legal_basis=data.legal_basis,
        guardian_person_id=data.guardian_person_id,
        prefix=prefix,
    )
    person_id = new_id()
    person = Person(
        id=person_id,
        family_id=family.id,
        name=data.name,
        sex=data.sex,
        birth_date=data.birth_date,
        relation=data.relation,
        marital_status=data.marital_status,
        education=data.education,
        occupation=data.occupation,
        legal_basis=data.legal_basis,
        guardian_person_id=data.guardian_person_id,
    )
    if data.nik:
        check, nik_errs = domain.nik_errors(
            data.nik, today=now, birth_date=data.birth_date, sex=data.sex, field_name=f"{prefix}.nik"
        )
        errors += nik_errs
        fail(errors)
        await _set_nik(session, vault, principal, person, check.nik)
    fail(errors)
    if data.guardian_person_id is not None:
        await repo.get_person(session, data.guardian_person_id, principal)
    session.add(person)
    await session.flush()  # no ORM relationships: the person row must exist before its membership
    session.add(
        FamilyMembership(
            person_id=person_id, family_id=family.id, relation=data.relation, started_on=started_on
        )
    )
    return person


async def _set_nik(
    session: AsyncSession, vault: PiiVault, principal: Principal, person: Person, nik: str
) -> None:
    index = vault.index("nik", nik)
    existing = await repo.person_by_nik_index(session, index)
    if existing is not None and existing[0].id != person.id:
        other, other_family = existing
        # The number is never echoed, even masked (issue 12). Point at the holder only when the caller may see
        # them: a holder elsewhere gets the same status and text, with no id (docs/security.md, oracles).
        extra: dict[str, Any] = {}
        if principal.can_access(other_family.village_code):
            extra["existing_person_id"] = str(other.id)
        raise Conflict(
            "a person with this NIK is already registered",
            field="body.nik",
            rule="nik.duplicate",
            extra=extra,
        )
    sealed = vault.seal("nik", nik, person.id)
    person.nik_key_id, person.nik_ciphertext = sealed.key_id, sealed.blob
    person.nik_index, person.nik_masked = index, mask_nik(nik)


async def _set_kk(
    session: AsyncSession, vault: PiiVault, family: Family, kk: str, reason: str | None
) -> None:
    index = vault.index("kk", kk)
    other = await repo.family_by_kk_index(session, index)
    if other is not None and other.id != family.id:
        raise Conflict(
            "another family holds this KK number",
            field="body.kk_number",
            rule="kk.duplicate",
        )
    if family.kk_index == index:
        return
    now = utcnow()
    previous = await repo.current_kk_history(session, family.id)
    if previous is not None:
        previous.valid_to = now
    sealed = vault.seal("kk", kk, family.id)
    family.kk_key_id, family.kk_ciphertext, family.kk_index, family.kk_masked = (
        sealed.key_id,
        sealed.blob,
        index,
        mask_nik(kk),
    )
    history_id = new_id()
    # History rows are sealed under their own id: a ciphertext never decrypts in another row.
    hs = vault.seal("kk", kk, history_id)
    session.add(
        FamilyKkHistory(
            id=history_id,
            family_id=family.id,
            kk_key_id=hs.key_id,
            kk_ciphertext=hs.blob,
            kk_index=index,
            kk_masked=mask_nik(kk),
            valid_from=now,
            reason=reason,
        )
    )


def _kk_number(raw: str | None) -> str | None:
    if raw is None:
        return None
    check, errors = domain.kk_errors(raw, today=today())
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
            now = today()
            kk: str | None = None
            kk_errors: list[dict[str, Any]] = []
            if body.kk_number is not None:
                kk_check, kk_errors = domain.kk_errors(body.kk_number, today=now)
                kk = kk_check.kk
            kk_index = vault.index("kk", kk) if kk and not kk_errors else None
            checked: list[tuple[list[dict[str, Any]], str | None]] = []
            for i, member in enumerate(body.members):
                errors = domain.person_errors(
                    birth_date=member.birth_date,
                    today=now,
                    legal_basis=member.legal_basis,
                    guardian_person_id=member.guardian_person_id,
                    prefix=f"body.members.{i}",
                )
                nik: str | None = None
                if member.nik:
                    nik_check, nik_errs = domain.nik_errors(
                        member.nik,
                        today=now,
                        birth_date=member.birth_date,
                        sex=member.sex,
                        field_name=f"body.members.{i}.nik",
                    )
                    errors += nik_errs
                    nik = nik_check.nik
                checked.append((errors, nik))
            nik_indexes = {nik: vault.index("nik", nik) for errors, nik in checked if nik and not errors}
            found = await repo.registration_lookup(
                session,
                principal,
                village_code=body.village_code,
                kampung_kb_id=body.kampung_kb_id,
                kk_index=kk_index,
                nik_indexes=list(set(nik_indexes.values())),
            )

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
            fail(kk_errors)
            if body.kampung_kb_id is not None and not found.kampung_kb_found:
                raise NotFound("Kampung KB not found")
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
            history: FamilyKkHistory | None = None
            if kk:
                if found.kk_taken:
                    raise Conflict(
                        "another family holds this KK number",
                        field="body.kk_number",
                        rule="kk.duplicate",
                    )
                sealed = vault.seal("kk", kk, family.id)
                family.kk_key_id, family.kk_ciphertext = sealed.key_id, sealed.blob
                family.kk_index, family.kk_masked = kk_index, mask_nik(kk)
                history_id = new_id()
                hs = vault.seal("kk", kk, history_id)
                history = FamilyKkHistory(
                    id=history_id,
                    family_id=family.id,
                    kk_key_id=hs.key_id,
                    kk_ciphertext=hs.blob,
                    kk_index=kk_index,
                    kk_masked=family.kk_masked,
                    valid_from=utcnow(),
                    reason="registered",
                )
            persons: list[Person] = []
            niks: dict[bytes, tuple[int, str]] = {}
            for i, (member, (errors, nik)) in enumerate(zip(body.members, checked, strict=True)):
                fail(errors)
                person = Person(
                    id=new_id(),
                    family_id=family.id,
                    name=member.name,
                    sex=member.sex,
                    birth_date=member.birth_date,
                    relation=member.relation,
                    marital_status=member.marital_status,
                    education=member.education,
                    occupation=member.occupation,
                    legal_basis=member.legal_basis,
                    guardian_person_id=member.guardian_person_id,
                )
                if nik:
                    index = nik_indexes[nik]
                    if index in niks:
                        raise Conflict(
                            "the same NIK appears twice", field=f"body.members.{i}.nik", rule="nik.duplicate"
                        )
                    niks[index] = (i, nik)
                    sealed = vault.seal("nik", nik, person.id)
                    person.nik_key_id, person.nik_ciphertext = sealed.key_id, sealed.blob
                    person.nik_index, person.nik_masked = index, mask_nik(nik)
                if member.guardian_person_id is not None:
                    await repo.get_person(session, member.guardian_person_id, principal)
                if member.relation == "kepala_keluarga":
                    family.head_person_id = person.id
                persons.append(person)
            for holder in sorted(found.nik_holders, key=lambda h: niks[h.nik_index][0]):
                i, _ = niks[holder.nik_index]
                # Never the number, even masked; the holder's id only when the caller may see them.
                extra: dict[str, Any] = {}
                if principal.can_access(holder.village_code):
                    extra["existing_person_id"] = str(holder.person_id)
                raise Conflict(
                    "a person with this NIK is already registered",
                    field=f"body.members.{i}.nik",
                    rule="nik.duplicate",
                    extra=extra,
                )
            krs_event = apply_krs(
                family,
                domain.FamilyFacts(
                    drinking_water_source=family.drinking_water_source,
                    latrine_type=family.latrine_type,
                    members=member_facts(persons),
                ),
            )
            events: list[tuple[EventData, uuid.UUID]] = [
                (FamilyRegistered(**family_facts(family)), family.id)
            ]
            events += [(PersonRegistered(**person_facts(p, family)), family.id) for p in persons]
            if krs_event is not None:
                events.append((krs_event, family.id))
            made = await repo.insert_registration(
                session,
                family=family,
                kk_history=history,
                persons=persons,
                memberships=[
                    FamilyMembership(
                        id=new_id(), person_id=p.id, family_id=family.id, relation=p.relation, started_on=now
                    )
                    for p in persons
                ],
                outbox_rows=outbox_rows(events),
            )
            for person, row in zip(persons, made, strict=True):
                person.created_at, person.updated_at = row.created_at, row.updated_at
                person.version, person.name_key = row.version, row.name_key
            family.created_at, family.updated_at = made[0].family_created_at, made[0].family_updated_at
            family.version = made[0].family_version
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
                await _set_kk(session, vault, family, _kk_number(kk) or "", reason)
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
        if body.moved_on > today():
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
            person = await _new_person(
                session, vault, principal, body, family, started_on=today(), prefix="body"
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
            now = today()
            errors = domain.person_errors(
                birth_date=person.birth_date,
                today=now,
                legal_basis=person.legal_basis,
                guardian_person_id=person.guardian_person_id,
            )
            plain: str | None = None
            if nik is not None:
                check, nik_errs = domain.nik_errors(
                    nik, today=now, birth_date=person.birth_date, sex=cast(Sex, person.sex)
                )
                errors += nik_errs
                plain = check.nik
            elif person.nik_ciphertext is not None and ("birth_date" in changes or "sex" in changes):
                # A changed birth date or sex must still agree with the NIK on file.
                stored = vault.open("nik", Sealed(person.nik_key_id or "", person.nik_ciphertext), person.id)
                _, nik_errs = domain.nik_errors(
                    stored, today=now, birth_date=person.birth_date, sex=cast(Sex, person.sex)
                )
                errors += nik_errs
            fail(errors)
            if plain is not None:
                await _set_nik(session, vault, principal, person, plain)
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
                today=today(),
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
        if body.moved_on > today() or body.moved_on < person.birth_date:
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
            membership.ended_on, membership.end_reason = today(), "deleted"
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
            AccessLog(
                actor=principal.sub,
                person_id=found[0].id if found else None,
                family_id=found[1].id if found else None,
                purpose=purpose,
                action="nik_search",
                fields=["nik"],
                request_id=current_correlation_id(),
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
