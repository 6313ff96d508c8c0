"""Use cases of KB status, catin and pregnancies: each opens the transaction and commits once."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from registry import rules
from registry.families import repository as fam_repo
from registry.families.facts import person_facts, person_pus, refresh_krs
from registry.families.models import Family, Person
from registry.families.registration import add_person
from registry.health import domain
from registry.health import repository as repo
from registry.health.models import Catin, KbStatus, Pregnancy
from registry.health.schemas import CatinCreate, KbStatusCreate, PregnancyCreate, PregnancyEnd, child_person
from registry.outbox import emit
from registry.pii import PiiVault
from shared import ages
from shared.auth import Principal
from shared.clock import business_today
from shared.errors import Conflict, fail
from shared.events.registry import (
    CatinRegistered,
    KbStatusChanged,
    PersonRegistered,
    PregnancyEnded,
    PregnancyRegistered,
)
from shared.web.etag import IfMatchCondition, check_version


async def record_kb_status(
    session: AsyncSession, principal: Principal, person_id: uuid.UUID, body: KbStatusCreate
) -> KbStatus:
    try:
        async with session.begin():
            person, family = await fam_repo.get_person(session, person_id, principal, lock=True)
            fail(
                domain.kb_status_errors(
                    method=body.method,
                    reason_non_use=body.reason_non_use,
                    since=body.since,
                    today=business_today(family.village_code),
                    sex=person.sex,
                    birth_date=person.birth_date,
                )
            )
            return await add_kb_status(
                session,
                principal,
                person,
                family,
                method=body.method,
                since=body.since,
                reason_non_use=body.reason_non_use,
                service_source=body.service_source,
            )
    except IntegrityError as exc:
        raise Conflict("the KB status changed concurrently; retry", rule="kb.concurrent") from exc


async def add_kb_status(
    session: AsyncSession,
    principal: Principal,
    person: Person,
    family: Family,
    *,
    method: str | None,
    since: date,
    reason_non_use: str | None,
    service_source: str | None,
) -> KbStatus:
    """Record a (checked) KB status in its place in the person's history, with its event; the API and imports."""
    history = await repo.kb_history(session, person.id)
    placed = domain.place_kb_status(history, since)
    if placed.current:
        # A status newer than the current one replaces it; an older one goes into the history only.
        for old in history:
            if old.current:
                old.current = False
        await session.flush()
    previous = placed.previous
    row = KbStatus(
        person_id=person.id,
        family_id=family.id,
        method=method,
        is_user=method is not None,
        mkjp=domain.is_mkjp(method),
        since=since,
        reason_non_use=reason_non_use,
        service_source=service_source,
        current=placed.current,
        recorded_by=principal.sub,
        rule_version=rules.RULES_VERSION,
    )
    session.add(row)
    await session.flush()
    await emit(
        session,
        KbStatusChanged(
            person_id=person.id,
            family_id=family.id,
            village_code=family.village_code,
            method=method,
            is_user=row.is_user,
            mkjp=row.mkjp,
            since=since,
            reason_non_use=reason_non_use,
            service_source=service_source,
            previous_method=previous.method if previous else None,
            previous_mkjp=previous.mkjp if previous else False,
            first_record=placed.first_record,
            pus=person_pus(person),
        ),
        family.id,
    )
    return row


async def register_catin(session: AsyncSession, principal: Principal, body: CatinCreate) -> Catin:
    async with session.begin():
        person, family = await fam_repo.get_person(session, body.person_id, principal)
        errors = []
        if body.screened_on > business_today(family.village_code):
            errors.append(
                {
                    "field": "body.screened_on",
                    "rule": "catin.screened_future",
                    "message": "screening date lies in the future",
                }
            )
        if body.planned_marriage_date < body.screened_on:
            errors.append(
                {
                    "field": "body.planned_marriage_date",
                    "rule": "catin.marriage_before_screening",
                    "message": "the planned marriage lies before the screening",
                }
            )
        if ages.completed_years(person.birth_date, body.screened_on) < 15:
            errors.append(
                {
                    "field": "body.person_id",
                    "rule": "catin.age",
                    "message": "a catin is at least 15 years old",
                }
            )
        fail(errors)
        risk = domain.catin_risk(
            sex=person.sex,
            weight_kg=body.weight_kg,
            height_cm=body.height_cm,
            lila_cm=body.lila_cm,
            hb_g_dl=body.hb_g_dl,
            age_at_marriage=ages.completed_years(person.birth_date, body.planned_marriage_date),
        )
        row = Catin(
            person_id=person.id,
            family_id=family.id,
            planned_marriage_date=body.planned_marriage_date,
            screened_on=body.screened_on,
            weight_kg=body.weight_kg,
            height_cm=body.height_cm,
            bmi=risk.bmi,
            lila_cm=body.lila_cm,
            hb_g_dl=body.hb_g_dl,
            at_risk=risk.at_risk,
            risks=risk.risks,
            rule_version=risk.rule_version,
        )
        session.add(row)
        await session.flush()
        await emit(
            session,
            CatinRegistered(
                catin_id=row.id,
                person_id=person.id,
                family_id=family.id,
                village_code=family.village_code,
                rw=family.rw,
                sex=person.sex,
                planned_marriage_date=body.planned_marriage_date,
                bmi=risk.bmi,
                lila_cm=body.lila_cm,
                hb_g_dl=body.hb_g_dl,
                at_risk=risk.at_risk,
                risks=risk.risks,
                welfare_decile=family.welfare_decile,
                rule_version=risk.rule_version,
            ),
            family.id,
        )
        return row


async def register_pregnancy(session: AsyncSession, principal: Principal, body: PregnancyCreate) -> Pregnancy:
    try:
        async with session.begin():
            person, family = await fam_repo.get_person(session, body.person_id, principal, lock=True)
            now = business_today()
            age = ages.completed_years(person.birth_date, now)
            fail(
                domain.pregnancy_errors(
                    lmp=body.lmp, expected=body.expected_delivery, today=now, sex=person.sex, age=age
                )
            )
            if person.died_on is not None:
                fail(
                    [
                        {
                            "field": "body.person_id",
                            "rule": "pregnancy.person_dead",
                            "message": "the person has died",
                        }
                    ]
                )
            ongoing = await repo.ongoing_pregnancy_id(session, person.id)
            if ongoing is not None:
                raise Conflict(
                    "the woman has an ongoing pregnancy",
                    rule="pregnancy.ongoing_exists",
                    extra={"existing_pregnancy_id": str(ongoing)},
                )
            expected = body.expected_delivery or domain.expected_delivery(body.lmp)  # type: ignore[arg-type]
            row = Pregnancy(
                person_id=person.id,
                family_id=family.id,
                lmp=body.lmp,
                expected_delivery=expected,
                lila_cm=body.lila_cm,
                hb_g_dl=body.hb_g_dl,
                kek=domain.kek(body.lila_cm),
                anaemia=domain.pregnancy_anaemia(body.hb_g_dl),
                status="ongoing",
                rule_version=rules.RULES_VERSION,
            )
            session.add(row)
            await session.flush()
            await refresh_krs(session, family)
            await emit(
                session,
                PregnancyRegistered(
                    pregnancy_id=row.id,
                    person_id=person.id,
                    family_id=family.id,
                    village_code=family.village_code,
                    rw=family.rw,
                    lmp=body.lmp,
                    expected_delivery=expected,
                    lila_cm=body.lila_cm,
                    hb_g_dl=body.hb_g_dl,
                    kek=row.kek,
                    anaemia=row.anaemia,
                    mother_age_years=age,
                    welfare_decile=family.welfare_decile,
                    krs=family.krs,
                    rule_version=rules.RULES_VERSION,
                ),
                family.id,
            )
            return row
    except IntegrityError as exc:
        raise Conflict("the woman has an ongoing pregnancy", rule="pregnancy.ongoing_exists") from exc


async def end_pregnancy(
    session: AsyncSession,
    vault: PiiVault,
    principal: Principal,
    pregnancy_id: uuid.UUID,
    body: PregnancyEnd,
    expected: IfMatchCondition,
) -> Pregnancy:
    """End with a loss, or a birth that registers the child in the mother's family."""
    async with session.begin():
        row = await repo.get_pregnancy(session, principal, pregnancy_id, lock=True)
        check_version(expected, row.version)
        if row.status != "ongoing":
            raise Conflict("the pregnancy has already ended", rule="pregnancy.already_ended")
        mother, family = await fam_repo.get_person(session, row.person_id, principal)
        errors = []
        if body.ended_on > business_today():
            errors.append(
                {
                    "field": "body.ended_on",
                    "rule": "pregnancy.ended_future",
                    "message": "ended_on lies in the future",
                }
            )
        if body.ended_on < domain.pregnancy_began(row.lmp, row.expected_delivery):
            errors.append(
                {
                    "field": "body.ended_on",
                    "rule": "pregnancy.ended_before_lmp",
                    "message": "ended before the pregnancy began (the LMP, or expected delivery - 280 days)",
                }
            )
        if body.outcome == "birth" and body.child is None:
            errors.append(
                {
                    "field": "body.child",
                    "rule": "pregnancy.child_required",
                    "message": "a birth registers the child",
                }
            )
        if body.outcome == "loss" and body.child is not None:
            errors.append(
                {"field": "body.child", "rule": "pregnancy.child_for_loss", "message": "a loss has no child"}
            )
        fail(errors)
        child = None
        if body.child is not None:
            child = await add_person(
                session,
                vault,
                principal,
                child_person(body.child, body.ended_on),
                family,
                started_on=body.ended_on,
                prefix="body.child",
            )
        row.status, row.outcome, row.ended_on = "ended", body.outcome, body.ended_on
        row.child_person_id = child.id if child else None
        row.version += 1
        await session.flush()
        await emit(
            session,
            PregnancyEnded(
                pregnancy_id=row.id,
                person_id=mother.id,
                family_id=family.id,
                village_code=family.village_code,
                outcome=body.outcome,
                ended_on=body.ended_on,
                child_person_id=row.child_person_id,
            ),
            family.id,
        )
        if child is not None:
            await session.refresh(child)
            await emit(session, PersonRegistered(**person_facts(child, family)), family.id)
        await refresh_krs(session, family)
        await session.refresh(row)
        return row


async def get_pregnancy(session: AsyncSession, principal: Principal, pregnancy_id: uuid.UUID) -> Pregnancy:
    """One pregnancy inside the caller's region."""
    async with session.begin():
        return await repo.get_pregnancy(session, principal, pregnancy_id)


async def kb_history(session: AsyncSession, principal: Principal, person_id: uuid.UUID) -> list[KbStatus]:
    """A person's KB status history (404 outside the caller's region)."""
    async with session.begin():
        await fam_repo.get_person(session, person_id, principal)
        return await repo.kb_history(session, person_id)


async def get_catin(session: AsyncSession, principal: Principal, catin_id: uuid.UUID) -> Catin:
    """One catin screening inside the caller's region."""
    async with session.begin():
        return await repo.get_catin(session, principal, catin_id)
