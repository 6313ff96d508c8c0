"""Use cases of child measurements: score, store, and open/resolve/retract stunting cases (with events)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from registry import rules
from registry.anthropometry.domain import age_in_days
from registry.families import repository as fam_repo
from registry.families.models import Family, Person
from registry.growth import domain
from registry.growth import repository as repo
from registry.growth.models import Measurement, StuntingCase
from registry.growth.schemas import (
    MeasurementCorrection,
    MeasurementCreate,
    MeasurementRetraction,
    MeasurementValues,
)
from registry.outbox import emit, outbox_rows
from shared.auth import Principal
from shared.clock import business_today
from shared.db import new_id, utcnow
from shared.errors import Conflict, fail
from shared.events.registry import (
    BadutaStuntingDetected,
    ChildMeasured,
    MeasurementRetracted,
    StuntingCaseRetracted,
    StuntingResolved,
)
from shared.web.etag import IfMatchCondition, check_version

# The anthropometry module names WAZ > +1 as Permenkes does ("risk of overweight"); the event vocabulary uses
# WHO's wording for the same band ("possible growth problem").
_WAZ_EVENT_CLASS = {"risk_of_overweight": "possible_growth_problem"}


def new_measurement(
    person: Person, family: Family, values: MeasurementValues, principal: Principal, prefix: str = "body"
) -> Measurement:
    """A child's measurement, checked (422 naming the field) and scored; the API and imports both record so."""
    fail(
        domain.measurement_errors(
            birth_date=person.birth_date,
            measured_on=values.measured_on,
            today=business_today(family.village_code),
            weight_kg=values.weight_kg,
            lenhei_cm=values.lenhei_cm,
            position=values.position,
            prefix=prefix,
        )
    )
    days = age_in_days(person.birth_date, values.measured_on)
    s = domain.score_child(
        sex=person.sex,
        age_days=days,
        weight_kg=values.weight_kg,
        lenhei_cm=values.lenhei_cm,
        position=values.position,
        oedema=values.oedema,
    )
    return Measurement(
        id=new_id(),
        person_id=person.id,
        family_id=family.id,
        measured_on=values.measured_on,
        age_days=days,
        weight_kg=values.weight_kg,
        lenhei_cm=values.lenhei_cm,
        position=values.position,
        oedema=values.oedema,
        haz=s.zlen,
        waz=s.zwei,
        whz=s.zwfl,
        haz_flag=bool(s.flen) or bool(s.c9mo_flag),
        waz_flag=bool(s.fwei),
        whz_flag=bool(s.fwfl),
        standing_under_9_months=bool(s.c9mo_flag),
        haz_class=s.haz_class,
        waz_class=s.waz_class,
        whz_class=s.whz_class,
        rule_version=s.rule_version,
        status="active",
        recorded_by=principal.sub,
    )


def measured_event(m: Measurement, person: Person, family: Family) -> ChildMeasured:
    """The `child.measured` event of a measurement (a first recording or a correction)."""
    return ChildMeasured(
        measurement_id=m.id,
        person_id=person.id,
        family_id=family.id,
        village_code=family.village_code,
        rw=family.rw,
        sex=person.sex,
        measured_on=m.measured_on,
        age_days=m.age_days,
        weight_kg=m.weight_kg,
        lenhei_cm=m.lenhei_cm,
        position=m.position,
        oedema=m.oedema,
        haz=m.haz,
        waz=m.waz,
        whz=m.whz,
        haz_flag=m.haz_flag,
        waz_flag=m.waz_flag,
        whz_flag=m.whz_flag,
        haz_class=m.haz_class,
        waz_class=_WAZ_EVENT_CLASS.get(m.waz_class or "", m.waz_class),
        whz_class=m.whz_class,
        corrects_measurement_id=m.corrects_measurement_id,
        rule_version=m.rule_version,
    )


def case_facts(case: StuntingCase, family: Family, m: Measurement) -> dict[str, Any]:
    """The facts every stunting-case event carries (the case, where the family lives, the measurement behind it)."""
    return {
        "case_id": case.id,
        "person_id": case.person_id,
        "family_id": family.id,
        "village_code": family.village_code,
        "rw": family.rw,
        "measurement_id": m.id,
        "measured_on": m.measured_on,
        "haz": m.haz,
        "age_days": m.age_days,
        "rule_version": rules.RULES_VERSION,
    }


async def apply_case_rules(session: AsyncSession, m: Measurement, person: Person, family: Family) -> None:
    """Open a case for a stunted baduta without one; resolve the open case on a later non-stunted measurement."""
    await _apply_case_rules_with(session, m, person, family, await repo.open_case(session, person.id))


async def _apply_case_rules_with(
    session: AsyncSession,
    m: Measurement,
    person: Person,
    family: Family,
    open_case: StuntingCase | repo.OpenCase | None,
) -> None:
    """The case rules, given the child's open case (locked), already read."""
    severity = domain.stunting_severity(m.haz, m.haz_flag, person.birth_date, m.measured_on)
    decision = domain.decide_on_measurement(
        severity=severity,
        not_stunted=domain.counts_as_not_stunted(m.haz, m.haz_flag),
        measured_on=m.measured_on,
        open_case=domain.CaseView(open_case.measurement_id, open_case.measured_on) if open_case else None,
    )
    if decision == "open" and severity is not None and m.haz is not None:
        case = StuntingCase(
            person_id=person.id,
            family_id=family.id,
            measurement_id=m.id,
            measured_on=m.measured_on,
            haz=m.haz,
            age_days=m.age_days,
            severity=severity,
            status="open",
            rule_version=rules.RULES_VERSION,
        )
        session.add(case)
        await session.flush()
        await emit(
            session,
            BadutaStuntingDetected(
                **case_facts(case, family, m),
                severity=severity,
                sex=person.sex,
                birth_date=person.birth_date,
                welfare_decile=family.welfare_decile,
                krs=family.krs,
            ),
            family.id,
        )
    elif decision == "resolve" and open_case is not None:
        # Already locked; loaded only when it changes (no statement when the session holds it already).
        resolved = await session.get_one(StuntingCase, open_case.id)
        resolved.status, resolved.resolved_by_measurement_id, resolved.resolved_on = (
            "resolved",
            m.id,
            m.measured_on,
        )
        await session.flush()
        await emit(session, StuntingResolved(**case_facts(resolved, family, m)), family.id)


async def _retract_cases(session: AsyncSession, m: Measurement, family: Family, reason: str) -> None:
    for case in await repo.cases_caused_by(session, m.id):
        case.status, case.retracted_on, case.retraction_reason = "retracted", business_today(), reason
        await session.flush()
        await emit(
            session,
            StuntingCaseRetracted(
                case_id=case.id,
                person_id=case.person_id,
                family_id=family.id,
                village_code=family.village_code,
                measurement_id=m.id,
                measured_on=m.measured_on,
                reason=reason,
                retracted_on=business_today(),
            ),
            family.id,
        )


async def _reopen_resolved(
    session: AsyncSession, old: Measurement, new: Measurement | None, person: Person, family: Family
) -> None:
    """The measurement that resolved a case is corrected or retracted: the resolution no longer stands.

    A correction that is still not stunted (and not earlier than the case) keeps the case resolved, now by the
    corrected measurement; otherwise the case opens again (unless a newer case is already open) and
    `stunting_detected` is published again for it, marked `reopened`.
    """
    case = await repo.case_resolved_by(session, old.id)
    if case is None:
        return
    if (
        new is not None
        and domain.counts_as_not_stunted(new.haz, new.haz_flag)
        and new.measured_on >= case.measured_on
    ):
        case.resolved_by_measurement_id, case.resolved_on = new.id, new.measured_on
        await session.flush()
        return
    if await repo.open_case(session, person.id) is not None:
        return
    cause = await repo.measurement_by_id(session, case.measurement_id)
    case.status, case.resolved_by_measurement_id, case.resolved_on = "open", None, None
    await session.flush()
    await emit(
        session,
        BadutaStuntingDetected(
            **case_facts(case, family, cause),
            severity=case.severity,
            sex=person.sex,
            birth_date=person.birth_date,
            welfare_decile=family.welfare_decile,
            krs=family.krs,
            reopened=True,
        ),
        family.id,
    )


async def record_measurement(
    session: AsyncSession, principal: Principal, body: MeasurementCreate
) -> Measurement:
    async with session.begin():
        person, family = await fam_repo.get_person(session, body.person_id, principal, lock=True)
        m = new_measurement(person, family, body, principal)
        # The measurement, its event and the read of the open case in one statement, instead of a flush, an
        # outbox insert, a case lookup and a refresh.
        event = outbox_rows([(measured_event(m, person, family), family.id)])[0]
        open_case = await repo.insert_measurement(session, m, event)
        await _apply_case_rules_with(session, m, person, family, open_case)
        return m


async def get_measurement(
    session: AsyncSession, principal: Principal, measurement_id: uuid.UUID
) -> Measurement:
    """One measurement inside the caller's region."""
    async with session.begin():
        m, _, _ = await repo.get_measurement(session, principal, measurement_id)
        return m


async def measurement_history(
    session: AsyncSession, principal: Principal, measurement_id: uuid.UUID
) -> list[Measurement]:
    """Every version of a measurement (first recording, corrections), inside the caller's region."""
    async with session.begin():
        m, _, _ = await repo.get_measurement(session, principal, measurement_id)
        return domain.correction_chain(await repo.measurements_of_person(session, m.person_id), m.id)


async def get_case(session: AsyncSession, principal: Principal, case_id: uuid.UUID) -> StuntingCase:
    """One stunting case inside the caller's region."""
    async with session.begin():
        return await repo.get_case(session, principal, case_id)


async def correct_measurement(
    session: AsyncSession,
    principal: Principal,
    measurement_id: uuid.UUID,
    body: MeasurementCorrection,
    expected: IfMatchCondition,
) -> Measurement:
    """Replace a measurement by corrected values; what the original caused is moved, retracted or re-derived."""
    async with session.begin():
        old, person, family = await repo.get_measurement(session, principal, measurement_id, lock=True)
        check_version(expected, old.version)
        if old.status != "active":
            raise Conflict(
                f"the measurement is {old.status}; correct the current one", rule="measurement.not_active"
            )
        new = new_measurement(person, family, body, principal)
        new.corrects_measurement_id, new.change_reason = old.id, body.reason
        old.status, old.changed_by, old.change_reason = "corrected", principal.sub, body.reason
        old.version += 1
        session.add(new)
        await session.flush()
        await emit(session, measured_event(new, person, family), family.id)
        caused_cases = await repo.cases_caused_by(session, old.id, lock=True)
        caused = caused_cases[0] if caused_cases else None
        severity = domain.stunting_severity(new.haz, new.haz_flag, person.birth_date, new.measured_on)
        decision = domain.decide_on_correction(caused_case=caused is not None, new_severity=severity)
        if decision == "repoint" and caused is not None and new.haz is not None and severity is not None:
            caused.measurement_id, caused.haz, caused.severity = new.id, new.haz, severity
            caused.measured_on, caused.age_days = new.measured_on, new.age_days
        elif decision == "retract":
            await _retract_cases(session, old, family, "measurement_corrected")
        else:
            await _reopen_resolved(session, old, new, person, family)
            await apply_case_rules(session, new, person, family)
        await session.refresh(new)
        return new


async def retract_measurement(
    session: AsyncSession,
    principal: Principal,
    measurement_id: uuid.UUID,
    body: MeasurementRetraction,
    expected: IfMatchCondition,
) -> Measurement:
    async with session.begin():
        m, person, family = await repo.get_measurement(session, principal, measurement_id, lock=True)
        check_version(expected, m.version)
        if m.status != "active":
            raise Conflict(f"the measurement is {m.status}", rule="measurement.not_active")
        m.status, m.retracted_at, m.changed_by, m.change_reason = (
            "retracted",
            utcnow(),
            principal.sub,
            body.reason,
        )
        m.version += 1
        await session.flush()
        await emit(
            session,
            MeasurementRetracted(
                measurement_id=m.id,
                person_id=person.id,
                family_id=family.id,
                village_code=family.village_code,
                measured_on=m.measured_on,
                retracted_on=business_today(),
            ),
            family.id,
        )
        await _retract_cases(session, m, family, "measurement_retracted")
        await _reopen_resolved(session, m, None, person, family)
        await session.refresh(m)
        return m
