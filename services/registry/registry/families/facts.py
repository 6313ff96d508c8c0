"""What the registry's family and person events say, and the family's KRS status derived from its members.

Every module that changes a family or a person (families, health, duplicates, imports, the age sweep) builds its
events' facts here, so a `registry.person.registered.v1` says the same whichever way the person came in.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from registry import rules
from registry.families import domain
from registry.families import repository as repo
from registry.families.models import Family, Person
from registry.outbox import emit
from shared.clock import business_today
from shared.events.registry import StuntingRiskChanged


def person_pus(person: Person, on: date | None = None) -> bool:
    """Whether the person is (the wife of) a PUS couple on a day (default today); the dead and gone are not."""
    alive = person.died_on is None and person.moved_out_on is None and person.deleted_at is None
    return domain.is_pus(
        person.sex, person.marital_status, person.birth_date, on or business_today(), alive=alive
    )


def family_facts(family: Family) -> dict[str, Any]:
    """The event facts of a family (registered, updated)."""
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


def member_facts(members: list[Person]) -> list[domain.MemberFacts]:
    """What the KRS rules read of each member."""
    return [
        domain.MemberFacts(m.sex, m.birth_date, m.relation, m.marital_status, alive=m.died_on is None)
        for m in members
    ]


def apply_krs(family: Family, facts: domain.FamilyFacts) -> StuntingRiskChanged | None:
    """Set the family's KRS fields from its facts; the event to publish when status or reasons changed."""
    result = domain.evaluate_krs(facts, business_today())
    changed = (
        result.at_risk != family.krs
        or sorted(result.reasons) != sorted(family.krs_reasons or [])
        or result.target != family.krs_target
    )
    first = family.rule_version is None
    family.krs, family.krs_reasons, family.krs_target = result.at_risk, result.reasons, result.target
    family.rule_version = result.rule_version
    if changed or (first and (result.at_risk or result.target)):
        return StuntingRiskChanged(**krs_facts(family, result))
    return None


def krs_facts(family: Family, result: domain.KrsResult) -> dict[str, Any]:
    """The facts of a family's stunting-risk status (`registry.family.stunting_risk_changed`)."""
    return {
        "family_id": family.id,
        "village_code": family.village_code,
        "rw": family.rw,
        "at_risk": result.at_risk,
        "reasons": result.reasons,
        "target": result.target,
        "welfare_decile": family.welfare_decile,
        "rule_version": result.rule_version,
    }


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
