"""Bulk import use cases: plan a chunk of families against the database, then write it in bulk.

A chunk is a list of whole families. Planning checks every rule per row (the same rule codes as the API), then
COPYs the chunk's natural keys (KK and NIK blind indexes, village and Kampung KB codes) into a staging table and
finds villages, Kampung KBs, families and NIK holders with joins; members, measurements, KB statuses and
pregnancies of the families found follow in a few batched queries. A family with any bad row is rejected whole.
Accepted *new* families become plain records (no ORM objects), their numbers sealed and indexed per batch, and
are written with one COPY per table (families, KK history, persons, memberships, KB statuses, pregnancies,
measurements, stunting cases, outbox rows); families that already exist go through the ORM one by one, reusing
the registry's service functions, and only when something changed, since re-imports mostly find nothing.
Both paths emit the same events the API emits, through the outbox, in the same transaction as the data.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, cast

import numpy as np
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from registry import rules
from registry.anthropometry.domain import age_in_days, score
from registry.common import IMPORT
from registry.families import domain as fam_domain
from registry.families.facts import family_facts, krs_facts, person_facts, person_pus, refresh_krs
from registry.families.models import Family, FamilyKkHistory, FamilyMembership, Person
from registry.families.registration import new_membership, new_person, seal_nik, seal_numbers
from registry.growth import domain as growth_domain
from registry.growth.models import Measurement, StuntingCase
from registry.growth.schemas import MeasurementValues
from registry.growth.service import apply_case_rules, case_facts, measured_event, new_measurement
from registry.health import domain as health_domain
from registry.health.models import KbStatus, Pregnancy
from registry.health.service import add_kb_status
from registry.imports import domain
from registry.imports import repository as repo
from registry.imports.domain import FamilyGroup, ImportRow, Issue
from registry.imports.models import ImportIssue, ImportJob
from registry.models import outbox
from registry.outbox import emit
from registry.pii import PiiVault
from shared import ages
from shared.auth import Principal
from shared.clock import business_today
from shared.db import new_id, new_wire_ids, utcnow
from shared.errors import NotFound
from shared.events import EventData
from shared.events.registry import (
    BadutaStuntingDetected,
    FamilyRegistered,
    FamilyUpdated,
    KbStatusChanged,
    PersonRegistered,
    PersonUpdated,
    PregnancyRegistered,
    StuntingRiskChanged,
)
from shared.outbox import OUTBOX_RECORD_COLUMNS, OutboxEvent, OutboxRecord, outbox_records
from shared.regions import is_within
from shared.web.pagination import PageParams

# Person attributes an import may change on an existing record: every person column of the file but the NIK (the
# key, never changed here), and the NIK conflicts it found.
PERSON_FIELDS = (*(c for c in domain.PERSON_COLUMNS if c != "nik"), "nik_conflicts")


def job_principal(job: ImportJob) -> Principal:
    """Who the job acts for: the uploader's subject and region scope, frozen at upload."""
    return Principal(sub=job.created_by, scopes=frozenset({IMPORT}), region=job.region)


@dataclass
class PersonPlan:
    row: ImportRow
    row_no: int
    nik: str | None
    nik_index: bytes | None
    conflicts: list[str]
    existing: Person | None = None
    changes: dict[str, Any] = field(default_factory=dict)
    measurement: str | None = None  # "create" / "unchanged" / None
    kb: str | None = None  # "create" / "unchanged" / None
    kb_previous: KbStatus | None = None
    pregnancy: str | None = None  # "create" / "unchanged" / None


@dataclass
class FamilyPlan:
    group: FamilyGroup
    first: ImportRow
    kk: str
    kk_index: bytes
    persons: list[PersonPlan]
    existing: Family | None = None
    changes: dict[str, Any] = field(default_factory=dict)
    kampung_kb_id: uuid.UUID | None = None


@dataclass
class ChunkResult:
    summary: dict[str, dict[str, int]]
    issues: list[Issue]
    flagged: list[tuple[Issue, uuid.UUID | None]] = field(default_factory=list)


def _strip_prefix(errors: list[dict[str, Any]], row_no: int) -> list[Issue]:
    return [Issue(row_no, str(e["field"]).split(".")[-1], str(e["rule"]), str(e["message"])) for e in errors]


class _Planner:
    """Checks one chunk: pure rules first, then the batched look-ups, then the per-family decisions."""

    def __init__(
        self,
        session: AsyncSession,
        vault: PiiVault,
        principal: Principal,
        on_mismatch: str,
        seen_niks: dict[bytes, int],
    ) -> None:
        self.session, self.vault, self.principal = session, vault, principal
        self.on_mismatch, self.seen_niks = on_mismatch, seen_niks
        self.now = business_today()

    def _pure(self, group: FamilyGroup) -> tuple[FamilyPlan | None, list[Issue]]:
        issues: list[Issue] = [i for r in group.rows for i in r.issues]
        issues += domain.consistency_issues(group)
        if any(r.data is None for r in group.rows) or issues:
            return None, issues
        rows = [(r.row_no, cast(ImportRow, r.data)) for r in group.rows]
        first_no, first = rows[0]
        if not self.principal.can_access(first.village_code):
            return None, [
                Issue(n, "village_code", "region.out_of_scope", "the village lies outside your region")
                for n, _ in rows
            ]
        kk_check, kk_errs = fam_domain.kk_errors(first.kk_number, today=self.now, field_name="kk_number")
        issues += _strip_prefix(kk_errs, first_no)
        head = fam_domain.head_errors([d.relation for _, d in rows])
        if head:
            head_row = next((n for n, d in rows if d.relation == "kepala_keluarga"), first_no)
            issues += [
                Issue(
                    head_row if h["rule"] == "family.one_head" else first_no,
                    "relation",
                    h["rule"],
                    h["message"],
                )
                for h in head
            ]
        persons: list[PersonPlan] = []
        no_nik_keys: set[tuple[str, date]] = set()
        for n, d in rows:
            issues += _strip_prefix(
                fam_domain.person_errors(
                    birth_date=d.birth_date,
                    today=self.now,
                    legal_basis=d.legal_basis,
                    guardian_person_id=None,
                    prefix="row",
                ),
                n,
            )
            nik = index = None
            conflicts: list[str] = []
            if d.nik:
                check, nik_errs = fam_domain.nik_errors(
                    d.nik, today=self.now, birth_date=d.birth_date, sex=d.sex, field_name="nik"
                )
                for e in nik_errs:
                    if self.on_mismatch == "flag" and e["rule"] in domain.MISMATCH_RULES:
                        conflicts.append(e["rule"])
                    else:
                        issues.append(Issue(n, "nik", e["rule"], e["message"]))
                nik = check.nik
                if not nik_errs or (conflicts and len(conflicts) == len(nik_errs)):
                    index = self.vault.index("nik", nik)
                    other = self.seen_niks.setdefault(index, n)
                    if other != n:
                        issues.append(
                            Issue(
                                n, "nik", "nik.duplicate", f"the same NIK appears on row {other} of the file"
                            )
                        )
            else:
                key = (domain.name_key(d.name), d.birth_date)
                if key in no_nik_keys:
                    issues.append(
                        Issue(
                            n,
                            "name",
                            "import.person_duplicate",
                            "a person without NIK with the same name and birth date is already in this family",
                        )
                    )
                no_nik_keys.add(key)
            if d.kb_since is not None:
                issues += _health_issues(
                    health_domain.kb_status_errors(
                        method=d.kb_method,
                        reason_non_use=d.kb_reason_non_use,
                        since=d.kb_since,
                        today=self.now,
                        sex=d.sex,
                        birth_date=d.birth_date,
                    ),
                    n,
                )
            if d.pregnancy_lmp is not None:
                issues += _health_issues(
                    health_domain.pregnancy_errors(
                        lmp=d.pregnancy_lmp,
                        expected=None,
                        today=self.now,
                        sex=d.sex,
                        age=ages.completed_years(d.birth_date, self.now),
                    ),
                    n,
                )
            if d.has_measurement and d.measured_on is not None:
                issues += _strip_prefix(
                    growth_domain.measurement_errors(
                        birth_date=d.birth_date,
                        measured_on=d.measured_on,
                        today=self.now,
                        weight_kg=d.weight_kg,
                        lenhei_cm=d.lenhei_cm,
                        position=d.position,
                        prefix="row",
                    ),
                    n,
                )
            persons.append(PersonPlan(d, n, nik, index, conflicts))
        if issues:
            return None, issues
        plan = FamilyPlan(group, first, kk_check.kk, self.vault.index("kk", kk_check.kk), persons)
        return plan, []

    async def plan(self, groups: Sequence[FamilyGroup]) -> tuple[list[FamilyPlan], dict[str, list[Issue]]]:
        """Accepted family plans, and the issues of each rejected family (by group key)."""
        rejected: dict[str, list[Issue]] = {}
        plans: list[FamilyPlan] = []
        for i, g in enumerate(groups):
            p, issues = self._pure(g)
            if p is None:
                rejected[g.key] = issues
            else:
                plans.append(p)
            if i % YIELD_EVERY == YIELD_EVERY - 1:
                await asyncio.sleep(0)  # let another chunk's writes go on (`prepare_chunk`)
        stage_id = new_id()
        await repo.stage(
            self.session,
            stage_id,
            (
                (pp.row_no, p.kk_index, pp.nik_index, p.first.village_code, p.first.kampung_kb_code)
                for p in plans
                for pp in p.persons
            ),
        )
        villages = await repo.live_villages(self.session, (p.first.village_code for p in plans))
        kampung_kbs = await repo.kampung_kbs_by_code(
            self.session,
            (p.first.kampung_kb_code for p in plans if p.first.kampung_kb_code is not None),
            self.principal,
        )
        families = await repo.staged_families(self.session, stage_id)
        holders = await repo.staged_nik_holders(self.session, stage_id)
        await repo.unstage(self.session, stage_id)
        members = await repo.members_of(self.session, (f.id for f in families.values()))
        accepted: list[FamilyPlan] = []
        for i, p in enumerate(plans):
            issues = self._decide(p, villages, kampung_kbs, families, holders, members)
            if issues:
                rejected[p.group.key] = issues
            else:
                accepted.append(p)
            if i % YIELD_EVERY == YIELD_EVERY - 1:
                await asyncio.sleep(0)
        await self._measurements(accepted)
        await self._health(accepted)
        final: list[FamilyPlan] = []
        for p in accepted:
            issues = [
                Issue(
                    pp.row_no,
                    "measured_on",
                    "import.measurement_differs",
                    "another measurement of this child on this date exists; correct it through the API",
                )
                for pp in p.persons
                if pp.measurement == "differs"
            ] + [
                Issue(
                    pp.row_no,
                    "pregnancy_lmp",
                    "pregnancy.ongoing_exists",
                    "the woman has an ongoing pregnancy with another HPHT; end or correct it through the API",
                )
                for pp in p.persons
                if pp.pregnancy == "differs"
            ]
            if issues:
                rejected[p.group.key] = issues
            else:
                final.append(p)
        return final, rejected

    def _decide(
        self,
        p: FamilyPlan,
        villages: set[str],
        kampung_kbs: dict[str, uuid.UUID],
        families: dict[bytes, Family],
        holders: dict[bytes, tuple[Person, Family]],
        members: dict[uuid.UUID, list[Person]],
    ) -> list[Issue]:
        first_no = p.group.first_row
        if p.first.village_code not in villages:
            return [Issue(first_no, "village_code", "region.village_unknown", "unknown village code")]
        if p.first.kampung_kb_code is not None:
            # A Kampung KB outside the region reads as unknown, like the API's 404: no existence leak.
            kkb_id = kampung_kbs.get(p.first.kampung_kb_code)
            if kkb_id is None:
                return [
                    Issue(first_no, "kampung_kb_code", "family.kampung_kb_unknown", "unknown Kampung KB code")
                ]
            p.kampung_kb_id = kkb_id
        existing = families.get(p.kk_index)
        issues: list[Issue] = []
        if existing is not None:
            if not self.principal.can_access(existing.village_code):
                return [Issue(first_no, "kk_number", "kk.duplicate", "another family holds this KK number")]
            if existing.village_code != p.first.village_code:
                return [
                    Issue(
                        first_no,
                        "village_code",
                        "import.family_moved",
                        "the family is registered in another village; move it through the API first",
                    )
                ]
            p.existing = existing
            for col in domain.FAMILY_ATTRIBUTES:
                if getattr(existing, col) != getattr(p.first, col):
                    p.changes[col] = getattr(p.first, col)
            # An empty cell keeps the family's Kampung KB: a file without the column never unlinks families.
            if p.kampung_kb_id is not None and existing.kampung_kb_id != p.kampung_kb_id:
                p.changes["kampung_kb_id"] = p.kampung_kb_id
        current = members.get(existing.id, []) if existing is not None else []
        by_key = {(m.name_key, m.birth_date): m for m in current if m.nik_index is None}
        for pp in p.persons:
            holder = holders.get(pp.nik_index) if pp.nik_index is not None else None
            if holder is not None:
                person, _ = holder
                if existing is None or person.family_id != existing.id:
                    issues.append(
                        Issue(
                            pp.row_no,
                            "nik",
                            "nik.duplicate",
                            "a person with this NIK is registered in another family",
                        )
                    )
                    continue
                pp.existing = person
            elif existing is not None and pp.nik is None:
                pp.existing = by_key.get((domain.name_key(pp.row.name), pp.row.birth_date))
            if pp.existing is not None:
                wanted = self._person_values(pp)
                pp.changes = {k: v for k, v in wanted.items() if _norm(getattr(pp.existing, k)) != _norm(v)}
        if existing is not None and existing.head_person_id is not None:
            head = next(pp for pp in p.persons if pp.row.relation == "kepala_keluarga")
            if head.existing is None or head.existing.id != existing.head_person_id:
                issues.append(
                    Issue(
                        head.row_no,
                        "relation",
                        "family.one_head",
                        "the family already has another head; change it through the API",
                    )
                )
        return issues

    @staticmethod
    def _person_values(pp: PersonPlan) -> dict[str, Any]:
        d = pp.row
        return {
            "name": d.name,
            "sex": d.sex,
            "birth_date": d.birth_date,
            "relation": d.relation,
            "marital_status": d.marital_status,
            "education": d.education,
            "occupation": d.occupation,
            "legal_basis": d.legal_basis,
            "nik_conflicts": pp.conflicts or None,
        }

    async def _measurements(self, plans: list[FamilyPlan]) -> None:
        keys = [
            (pp.existing.id, pp.row.measured_on)
            for p in plans
            for pp in p.persons
            if pp.existing is not None and pp.row.measured_on is not None
        ]
        found = await repo.active_measurements(self.session, keys)
        for p in plans:
            for pp in p.persons:
                if pp.row.measured_on is None:
                    continue
                m = found.get((pp.existing.id, pp.row.measured_on)) if pp.existing is not None else None
                if m is None:
                    pp.measurement = "create"
                elif (m.weight_kg, m.lenhei_cm, m.position, m.oedema) == (
                    pp.row.weight_kg,
                    pp.row.lenhei_cm,
                    pp.row.position,
                    pp.row.oedema,
                ):
                    pp.measurement = "unchanged"
                else:
                    pp.measurement = "differs"

    async def _health(self, plans: list[FamilyPlan]) -> None:
        """KB status and pregnancy of each row against the person's current ones (a re-import changes nothing)."""
        known = [
            pp.existing.id
            for p in plans
            for pp in p.persons
            if pp.existing is not None and (pp.row.has_kb_status or pp.row.pregnancy_lmp is not None)
        ]
        statuses = await repo.current_kb_statuses(self.session, known)
        pregnancies = await repo.ongoing_pregnancies(self.session, known)
        for p in plans:
            for pp in p.persons:
                person_id = pp.existing.id if pp.existing is not None else None
                if pp.row.has_kb_status:
                    current = statuses.get(person_id) if person_id is not None else None
                    same = (
                        current is not None
                        and (current.method, current.since, current.reason_non_use, current.service_source)
                        == pp.row.kb_status()
                    )
                    pp.kb, pp.kb_previous = ("unchanged", None) if same else ("create", current)
                if pp.row.pregnancy_lmp is not None:
                    ongoing = pregnancies.get(person_id) if person_id is not None else None
                    if ongoing is None:
                        pp.pregnancy = "create"
                    else:
                        pp.pregnancy = "unchanged" if ongoing.lmp == pp.row.pregnancy_lmp else "differs"


# The API's health rules name its body fields; an import row names its columns.
_HEALTH_FIELDS = {
    "body.method": "kb_method",
    "body.since": "kb_since",
    "body.reason_non_use": "kb_reason_non_use",
    "body.lmp": "pregnancy_lmp",
    "body.person_id": "pregnancy_lmp",
}


def _health_issues(errors: list[dict[str, Any]], row_no: int) -> list[Issue]:
    return [
        Issue(row_no, _HEALTH_FIELDS.get(str(e["field"]), str(e["field"])), str(e["rule"]), str(e["message"]))
        for e in errors
    ]


def _norm(value: Any) -> Any:
    return None if value in ([], "") else value


# ------------------------------------------------------------------------------------------ writing


@dataclass(slots=True)
class _NewFamily:
    """A new family's facts under `Family`'s attribute names (what the event builders read), without the ORM."""

    id: uuid.UUID
    village_code: str
    rw: str | None
    rt: str | None
    kampung_kb_id: uuid.UUID | None
    welfare_decile: int | None
    drinking_water_source: str | None
    latrine_type: str | None
    krs: bool = False


@dataclass(slots=True)
class _NewPerson:
    """A new person's facts under `Person`'s attribute names (what the event builders read), without the ORM."""

    id: uuid.UUID
    sex: str
    birth_date: date
    relation: str
    marital_status: str
    nik_index: bytes | None
    died_on: date | None = None
    moved_out_on: date | None = None
    deleted_at: datetime | None = None


@dataclass(slots=True)
class _NewMeasurement:
    """A new measurement under `Measurement`'s attribute names (what the event builders read), without the ORM."""

    id: uuid.UUID
    person_id: uuid.UUID
    family_id: uuid.UUID
    measured_on: date
    age_days: int
    weight_kg: float | None
    lenhei_cm: float | None
    position: str | None
    oedema: bool
    haz: float | None
    waz: float | None
    whz: float | None
    haz_flag: bool
    waz_flag: bool
    whz_flag: bool
    standing_under_9_months: bool
    haz_class: str | None
    waz_class: str | None
    whz_class: str | None
    rule_version: str
    status: str
    recorded_by: str
    corrects_measurement_id: uuid.UUID | None = None


@dataclass(slots=True)
class _NewCase:
    """A new stunting case under `StuntingCase`'s attribute names, without the ORM."""

    id: uuid.UUID
    person_id: uuid.UUID
    family_id: uuid.UUID
    measurement_id: uuid.UUID
    measured_on: date
    haz: float
    age_days: int
    severity: str
    status: str
    rule_version: str


class _Ids:
    """Fresh ids drawn in blocks (one read of the system's randomness per block), printed and COPYed in C."""

    def __init__(self) -> None:
        self._pool: list[uuid.UUID] = []

    def __call__(self) -> uuid.UUID:
        if not self._pool:
            self._pool = new_wire_ids(4096)
        return self._pool.pop()


class _Batch:
    """Rows and events of new families as plain records, written with one COPY per table.

    Numbers are sealed and indexed for the whole batch at once, events become outbox records in one pass; the
    ORM is only used for the few measurements and cases, whose event builders the API shares.
    """

    def __init__(self, vault: PiiVault, principal: Principal, correlation_id: str | None) -> None:
        self.vault, self.principal, self.correlation_id = vault, principal, correlation_id
        self.families: list[list[Any]] = []
        self.history: list[list[Any]] = []
        self.persons: list[list[Any]] = []
        self.memberships: list[tuple[Any, ...]] = []
        self.measurements: list[tuple[Any, ...]] = []
        self.cases: list[tuple[Any, ...]] = []
        self.kb_statuses: list[tuple[Any, ...]] = []
        self.pregnancies: list[tuple[Any, ...]] = []
        # Events as (type, facts) where the type's payload can be written without its model (`outbox_records`).
        self.events: list[tuple[OutboxEvent, uuid.UUID]] = []
        self.outbox: list[OutboxRecord] = []
        # What to seal once the batch is complete: (number, owning row id) and where the blob goes.
        self.kk_seals: list[tuple[str, uuid.UUID, bytes | None]] = []
        self.nik_seals: list[tuple[str, uuid.UUID, bytes | None]] = []
        self.nik_rows: list[list[Any]] = []
        self.person_ids: dict[int, uuid.UUID] = {}
        self.pending: list[tuple[PersonPlan, _NewPerson, _NewFamily]] = []
        self.now = business_today()
        self.at = utcnow()
        self.new_id = _Ids()

    def event(self, data: EventData, family_id: uuid.UUID) -> None:
        self.events.append((data, family_id))

    def facts(self, model: type[EventData], facts: dict[str, Any], family_id: uuid.UUID) -> None:
        self.events.append(((model, facts), family_id))

    def add(self, p: FamilyPlan) -> None:
        d = p.first
        family = _NewFamily(
            self.new_id(), d.village_code, d.rw, d.rt, p.kampung_kb_id, d.welfare_decile, d.drinking_water_source,
            d.latrine_type,
        )  # fmt: skip
        history_id = self.new_id()
        # Sealed for the whole batch in `_seal`, which fills the number's four columns of both rows.
        self.kk_seals += [(p.kk, family.id, p.kk_index), (p.kk, history_id, p.kk_index)]
        self.history.append([history_id, family.id, None, None, None, None, self.at, "imported"])
        persons: list[tuple[PersonPlan, _NewPerson]] = []
        head_id: uuid.UUID | None = None
        for pp in p.persons:
            r = pp.row
            person = _NewPerson(
                self.new_id(), r.sex, r.birth_date, r.relation, r.marital_status, pp.nik_index
            )
            record: list[Any] = [
                person.id, family.id, None, None, None, None, r.name, r.sex, r.birth_date, r.relation,
                r.marital_status, r.education, r.occupation, r.legal_basis, pp.conflicts or None,
            ]  # fmt: skip
            if pp.nik is not None and pp.nik_index is not None:
                self.nik_seals.append((pp.nik, person.id, pp.nik_index))
                self.nik_rows.append(record)
            if r.relation == "kepala_keluarga":
                head_id = person.id
            self.persons.append(record)
            persons.append((pp, person))
            self.person_ids[pp.row_no] = person.id
        krs = fam_domain.evaluate_krs(
            fam_domain.FamilyFacts(
                drinking_water_source=family.drinking_water_source,
                latrine_type=family.latrine_type,
                members=[
                    fam_domain.MemberFacts(x.sex, x.birth_date, x.relation, x.marital_status)
                    for _, x in persons
                ],
                pregnant=any(pp.pregnancy == "create" for pp, _ in persons),
            ),
            self.now,
        )
        family.krs = krs.at_risk
        self.families.append(
            [
                family.id, None, None, None, None, family.village_code, family.rw, family.rt,
                d.street, family.kampung_kb_id, family.welfare_decile, family.drinking_water_source,
                family.latrine_type, head_id, krs.at_risk, krs.reasons, krs.target, krs.rule_version,
            ]
        )  # fmt: skip
        as_family = cast(Family, family)
        self.facts(FamilyRegistered, family_facts(as_family), family.id)
        for _, person in persons:
            self.memberships.append((self.new_id(), person.id, family.id, person.relation, self.now))
            # PUS as of the batch's date (the date its KRS is evaluated on): not a clock read per person.
            self.facts(PersonRegistered, person_facts(cast(Person, person), as_family, self.now), family.id)
        if krs.at_risk or krs.target:
            self.facts(StuntingRiskChanged, krs_facts(as_family, krs), family.id)
        for pp, person in persons:
            if pp.kb == "create":
                self._kb_status(pp.row, cast(Person, person), as_family)
            if pp.pregnancy == "create":
                self._pregnancy(pp.row, cast(Person, person), as_family)
            if pp.measurement == "create":
                self.pending.append((pp, person, family))

    def _kb_status(self, r: ImportRow, person: Person, family: Family) -> None:
        method, since, reason, source = r.kb_status()
        assert since is not None
        mkjp = health_domain.is_mkjp(method)
        self.kb_statuses.append(
            (self.new_id(), person.id, family.id, method, method is not None, mkjp, since, reason, source, True,
             self.principal.sub, rules.RULES_VERSION)
        )  # fmt: skip
        self.facts(
            KbStatusChanged,
            {
                "person_id": person.id, "family_id": family.id, "village_code": family.village_code,
                "method": method, "is_user": method is not None, "mkjp": mkjp, "since": since,
                "reason_non_use": reason, "service_source": source, "previous_method": None,
                "previous_mkjp": False, "first_record": True, "pus": person_pus(person, self.now),
            },
            family.id,
        )  # fmt: skip

    def _pregnancy(self, r: ImportRow, person: Person, family: Family) -> None:
        lmp = cast(date, r.pregnancy_lmp)
        pregnancy_id, expected = self.new_id(), health_domain.expected_delivery(lmp)
        kek, anaemia = health_domain.kek(None), health_domain.pregnancy_anaemia(None)
        self.pregnancies.append(
            (pregnancy_id, person.id, family.id, lmp, expected, kek, anaemia, "ongoing", rules.RULES_VERSION)
        )
        self.event(
            PregnancyRegistered(
                pregnancy_id=pregnancy_id, person_id=person.id, family_id=family.id,
                village_code=family.village_code, rw=family.rw, lmp=lmp, expected_delivery=expected, kek=kek,
                anaemia=anaemia, mother_age_years=ages.completed_years(person.birth_date, self.now),
                welfare_decile=family.welfare_decile, krs=family.krs, rule_version=rules.RULES_VERSION,
            ),
            family.id,
        )  # fmt: skip

    def _seal(self) -> None:
        """Seal every number of the batch at once (each bound to its row), into the rows' four number columns."""
        kks = seal_numbers(self.vault, "kk", self.kk_seals)
        for i, (fam, hist) in enumerate(zip(self.families, self.history, strict=True)):
            fam[1:5], hist[2:6] = kks[2 * i], kks[2 * i + 1]
        for record, sealed in zip(
            self.nik_rows, seal_numbers(self.vault, "nik", self.nik_seals), strict=True
        ):
            record[2:6] = sealed
        self.kk_seals, self.nik_seals, self.nik_rows = [], [], []

    def _score_pending(self) -> None:
        """Z-scores of every new measurement of the chunk in one vectorised call (same rules as the API)."""
        if not self.pending:
            return
        rows = [pp.row for pp, _, _ in self.pending]
        ages = [age_in_days(person.birth_date, cast(date, r.measured_on)) for (_, person, _), r in zip(
            self.pending, rows, strict=True)]  # fmt: skip
        nan = float("nan")
        s = score(
            np.array([1 if person.sex == "L" else 2 for _, person, _ in self.pending]),
            np.array(ages, dtype=np.float64),
            np.array([nan if r.weight_kg is None else r.weight_kg for r in rows], dtype=np.float64),
            np.array([nan if r.lenhei_cm is None else r.lenhei_cm for r in rows], dtype=np.float64),
            np.array([r.position or "" for r in rows]),
            np.array([r.oedema for r in rows]),
        )
        for i, (pp, person, family) in enumerate(self.pending):
            r = pp.row

            def opt(x: Any) -> float | None:
                return None if np.isnan(x) else float(x)

            m = _NewMeasurement(
                id=self.new_id(),
                person_id=person.id,
                family_id=family.id,
                measured_on=cast(date, r.measured_on),
                age_days=ages[i],
                weight_kg=r.weight_kg,
                lenhei_cm=r.lenhei_cm,
                position=r.position,
                oedema=r.oedema,
                haz=opt(s.zlen[i]),
                waz=opt(s.zwei[i]),
                whz=opt(s.zwfl[i]),
                haz_flag=bool(s.flen[i]) or bool(s.c9mo_flag[i]),
                waz_flag=bool(s.fwei[i]),
                whz_flag=bool(s.fwfl[i]),
                standing_under_9_months=bool(s.c9mo_flag[i]),
                haz_class=s.haz_class[i],
                waz_class=s.waz_class[i],
                whz_class=s.whz_class[i],
                rule_version=s.rule_version,
                status="active",
                recorded_by=self.principal.sub,
            )
            self._measured(cast(Measurement, m), cast(Person, person), cast(Family, family))
        self.pending = []

    def _measured(self, m: Measurement, person: Person, family: Family) -> None:
        self.measurements.append(_columns(m, _MEASUREMENT_COLS))
        self.event(measured_event(m, person, family), family.id)
        severity = growth_domain.stunting_severity(m.haz, m.haz_flag, person.birth_date, m.measured_on)
        if severity is not None and m.haz is not None:
            new_case = _NewCase(
                id=self.new_id(),
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
            case = cast(StuntingCase, new_case)
            self.cases.append(_columns(case, _CASE_COLS))
            self.event(
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

    async def finish(self) -> None:
        """Score, seal and turn the events into outbox rows: the batch's CPU work, before any write."""
        self._score_pending()
        await asyncio.sleep(0)
        self._seal()
        await asyncio.sleep(0)
        self.outbox = outbox_records(self.events, correlation_id=self.correlation_id)

    async def write(self, session: AsyncSession) -> None:
        """One COPY per table (`finish` first)."""
        await repo.copy_records(session, Family.__tablename__, _FAMILY_COLS, self.families)
        await repo.copy_records(session, FamilyKkHistory.__tablename__, _HISTORY_COLS, self.history)
        await repo.copy_records(session, Person.__tablename__, _PERSON_COLS, self.persons)
        await repo.copy_records(session, FamilyMembership.__tablename__, _MEMBERSHIP_COLS, self.memberships)
        await repo.copy_records(session, KbStatus.__tablename__, _KB_STATUS_COLS, self.kb_statuses)
        await repo.copy_records(session, Pregnancy.__tablename__, _PREGNANCY_COLS, self.pregnancies)
        await repo.copy_records(session, Measurement.__tablename__, _MEASUREMENT_COLS, self.measurements)
        await repo.copy_records(session, StuntingCase.__tablename__, _CASE_COLS, self.cases)
        await repo.copy_records(
            session,
            outbox.name,
            OUTBOX_RECORD_COLUMNS,
            self.outbox,
        )


_FAMILY_COLS = (
    "id", "kk_key_id", "kk_ciphertext", "kk_index", "kk_masked", "village_code", "rw", "rt", "street",
    "kampung_kb_id", "welfare_decile", "drinking_water_source", "latrine_type", "head_person_id", "krs", "krs_reasons",
    "krs_target", "rule_version",
)  # fmt: skip
_PERSON_COLS = (
    "id", "family_id", "nik_key_id", "nik_ciphertext", "nik_index", "nik_masked", "name", "sex", "birth_date",
    "relation", "marital_status", "education", "occupation", "legal_basis", "nik_conflicts",
)  # fmt: skip
_MEASUREMENT_COLS = (
    "id", "person_id", "family_id", "measured_on", "age_days", "weight_kg", "lenhei_cm", "position", "oedema",
    "haz", "waz", "whz", "haz_flag", "waz_flag", "whz_flag", "standing_under_9_months", "haz_class",
    "waz_class", "whz_class", "rule_version", "status", "recorded_by",
)  # fmt: skip
_CASE_COLS = (
    "id", "person_id", "family_id", "measurement_id", "measured_on", "haz", "age_days", "severity", "status",
    "rule_version",
)  # fmt: skip


_HISTORY_COLS = (
    "id",
    "family_id",
    "kk_key_id",
    "kk_ciphertext",
    "kk_index",
    "kk_masked",
    "valid_from",
    "reason",
)
_MEMBERSHIP_COLS = ("id", "person_id", "family_id", "relation", "started_on")
_KB_STATUS_COLS = (
    "id", "person_id", "family_id", "method", "is_user", "mkjp", "since", "reason_non_use", "service_source",
    "current", "recorded_by", "rule_version",
)  # fmt: skip
_PREGNANCY_COLS = (
    "id", "person_id", "family_id", "lmp", "expected_delivery", "kek", "anaemia", "status", "rule_version",
)  # fmt: skip


def _columns(obj: Any, cols: Sequence[str]) -> tuple[Any, ...]:
    return tuple(getattr(obj, c) for c in cols)


def _values(r: ImportRow) -> MeasurementValues:
    assert r.measured_on is not None
    return MeasurementValues.model_construct(
        measured_on=r.measured_on, weight_kg=r.weight_kg, lenhei_cm=r.lenhei_cm, position=r.position,
        oedema=r.oedema,
    )  # fmt: skip


async def _apply_existing(
    session: AsyncSession, vault: PiiVault, principal: Principal, p: FamilyPlan
) -> dict[int, uuid.UUID]:
    """An existing family: update what differs through the ORM, with the API's events and KRS refresh."""
    family = p.existing
    assert family is not None
    changed = False
    ids: dict[int, uuid.UUID] = {}
    if p.changes:
        for key, value in p.changes.items():
            setattr(family, key, value)
        family.version += 1
        await session.flush()
        await emit(session, FamilyUpdated(**family_facts(family)), family.id)
        changed = True
    for pp in p.persons:
        person = pp.existing
        if person is None:
            person = new_person(family.id, pp.row, nik_conflicts=pp.conflicts or None)
            if pp.nik is not None and pp.nik_index is not None:
                seal_nik(vault, person, pp.nik, pp.nik_index)
            session.add(person)
            await session.flush()
            session.add(new_membership(person, family.id, business_today()))
            if person.relation == "kepala_keluarga":
                family.head_person_id = person.id
            await session.flush()
            await emit(session, PersonRegistered(**person_facts(person, family)), family.id)
            changed = True
        elif pp.changes:
            for key, value in pp.changes.items():
                setattr(person, key, value)
            person.version += 1
            await session.flush()
            await emit(session, PersonUpdated(**person_facts(person, family)), family.id)
            changed = True
        ids[pp.row_no] = person.id
        if pp.kb == "create":
            await _record_kb_status(session, principal, pp, person, family)
            changed = True
    pregnancies: list[tuple[Pregnancy, Person]] = []
    for pp in p.persons:
        if pp.pregnancy == "create":
            person = await repo.person_by_id(session, ids[pp.row_no])
            pregnancies.append((_new_pregnancy(pp.row, person, family), person))
    if pregnancies:
        session.add_all([row for row, _ in pregnancies])
        await session.flush()
        changed = True
    if changed:
        await refresh_krs(session, family)
    for row, person in pregnancies:
        await emit(session, _pregnancy_event(row, person, family), family.id)
    for pp in p.persons:
        if pp.measurement == "create":
            person = await repo.person_by_id(session, ids[pp.row_no])
            m = new_measurement(person, family, _values(pp.row), principal)
            session.add(m)
            await session.flush()
            await emit(session, measured_event(m, person, family), family.id)
            await apply_case_rules(session, m, person, family)
    return ids


async def _record_kb_status(
    session: AsyncSession, principal: Principal, pp: PersonPlan, person: Person, family: Family
) -> None:
    """A new KB status of an existing family's member: the previous one closes (as the KB-status API does)."""
    method, since, reason, source = pp.row.kb_status()
    assert since is not None
    await add_kb_status(
        session,
        principal,
        person,
        family,
        method=method,
        since=since,
        reason_non_use=reason,
        service_source=source,
    )


def _new_pregnancy(r: ImportRow, person: Person, family: Family) -> Pregnancy:
    lmp = cast(date, r.pregnancy_lmp)
    return Pregnancy(
        id=new_id(), person_id=person.id, family_id=family.id, lmp=lmp,
        expected_delivery=health_domain.expected_delivery(lmp), kek=health_domain.kek(None),
        anaemia=health_domain.pregnancy_anaemia(None), status="ongoing", rule_version=rules.RULES_VERSION,
    )  # fmt: skip


def _pregnancy_event(row: Pregnancy, person: Person, family: Family) -> PregnancyRegistered:
    return PregnancyRegistered(
        pregnancy_id=row.id, person_id=person.id, family_id=family.id, village_code=family.village_code,
        rw=family.rw, lmp=row.lmp, expected_delivery=row.expected_delivery, kek=row.kek, anaemia=row.anaemia,
        mother_age_years=ages.completed_years(person.birth_date, business_today()), welfare_decile=family.welfare_decile,
        krs=family.krs, rule_version=rules.RULES_VERSION,
    )  # fmt: skip


def _has_work(p: FamilyPlan) -> bool:
    """Whether an existing family has anything to write (a re-import mostly finds nothing: no savepoint then)."""
    return bool(p.changes) or any(
        pp.existing is None or pp.changes or "create" in (pp.measurement, pp.kb, pp.pregnancy)
        for pp in p.persons
    )


def _count(summary: dict[str, dict[str, int]], p: FamilyPlan) -> None:
    if p.existing is None:
        summary["families"]["created"] += 1
    elif p.changes:
        summary["families"]["updated"] += 1
    else:
        summary["families"]["unchanged"] += 1
    for pp in p.persons:
        outcome = "created" if pp.existing is None else ("updated" if pp.changes else "unchanged")
        summary["persons"][outcome] += 1
        summary["rows"][outcome] += 1
        for kind, decision in (
            ("measurements", pp.measurement), ("kb_statuses", pp.kb), ("pregnancies", pp.pregnancy)
        ):  # fmt: skip
            if decision == "create":
                summary[kind]["created"] += 1
            elif decision == "unchanged":
                summary[kind]["unchanged"] += 1


def _reject(summary: dict[str, dict[str, int]], group: FamilyGroup, issues: list[Issue]) -> list[Issue]:
    """Count a rejected family and give every row without its own issue the reason (atomic per family)."""
    summary["families"]["rejected"] += 1
    with_issue = {i.row_no for i in issues}
    out = list(issues)
    for r in group.rows:
        summary["rows"]["rejected"] += 1
        summary["persons"]["rejected"] += 1
        if r.data is not None and r.data.has_measurement:
            summary["measurements"]["rejected"] += 1
        if r.data is not None and r.data.has_kb_status:
            summary["kb_statuses"]["rejected"] += 1
        if r.data is not None and r.data.pregnancy_lmp is not None:
            summary["pregnancies"]["rejected"] += 1
        if r.row_no not in with_issue:
            out.append(
                Issue(
                    r.row_no,
                    "kk_number",
                    "import.family_rejected",
                    "another row of this family is rejected; the family is imported whole or not at all",
                )
            )
    return sorted(out, key=lambda i: i.row_no)


@dataclass
class PreparedChunk:
    """A chunk planned against the database and, in commit mode, its new families' rows and events built.

    Everything but the writes: what runs in Python while the previous chunk's writes run in PostgreSQL.
    """

    groups: Sequence[FamilyGroup]
    plans: list[FamilyPlan]
    summary: dict[str, dict[str, int]]
    issues: list[Issue]
    batch: _Batch | None


# Families planned or built between two yields to the event loop: the other chunk's writes wait at most that long
# for their next statement (about a millisecond of work at 5 families).
YIELD_EVERY = 5


async def prepare_chunk(
    session: AsyncSession,
    vault: PiiVault,
    principal: Principal,
    groups: Sequence[FamilyGroup],
    *,
    mode: str,
    on_mismatch: str,
    seen_niks: dict[bytes, int],
    correlation_id: str | None = None,
    isolate: bool = False,
) -> PreparedChunk:
    """Plan one chunk in the caller's transaction and, in commit mode, build its new families' batch (no writes).

    Its look-ups read only what other chunks of the same file never write (every KK number is one family of the
    file, every NIK of an earlier row is in `seen_niks`), so it may run before the previous chunk committed.
    """
    summary = domain.empty_summary()
    plans, rejected = await _Planner(session, vault, principal, on_mismatch, seen_niks).plan(groups)
    issues: list[Issue] = []
    for g in groups:
        if g.key in rejected:
            issues += _reject(summary, g, rejected[g.key])
    batch: _Batch | None = None
    if mode == "commit" and not isolate:
        batch = _Batch(vault, principal, correlation_id)
        for i, p in enumerate(p for p in plans if p.existing is None):
            batch.add(p)
            if i % YIELD_EVERY == YIELD_EVERY - 1:
                await asyncio.sleep(0)
        await batch.finish()
    return PreparedChunk(groups, plans, summary, issues, batch)


async def write_chunk(
    session: AsyncSession,
    vault: PiiVault,
    principal: Principal,
    prepared: PreparedChunk,
    *,
    mode: str,
    correlation_id: str | None = None,
    isolate: bool = False,
) -> ChunkResult:
    """Write a prepared chunk inside the caller's transaction (nothing in validate mode) and count it.

    `isolate` writes each new family in its own savepoint: the fallback when the bulk write of a chunk hit
    a uniqueness violation (a NIK or KK registered concurrently through the API), so only that family fails.
    """
    summary, issues, plans = prepared.summary, list(prepared.issues), prepared.plans
    flagged: list[tuple[Issue, uuid.UUID | None]] = []
    person_ids: dict[int, uuid.UUID] = {}
    if mode == "commit":
        if isolate:
            kept: list[FamilyPlan] = []
            for p in (p for p in plans if p.existing is None):
                batch = _Batch(vault, principal, correlation_id)
                batch.add(p)
                await batch.finish()
                try:
                    async with session.begin_nested():
                        await batch.write(session)
                except IntegrityError:
                    issues += _reject(
                        summary,
                        p.group,
                        [
                            Issue(
                                p.group.first_row,
                                "kk_number",
                                "unique",
                                "the family collides with data registered meanwhile (NIK or KK number)",
                            )
                        ],
                    )
                    continue
                person_ids.update(batch.person_ids)
                kept.append(p)
            plans = [p for p in plans if p.existing is not None] + kept
        elif prepared.batch is not None:
            await prepared.batch.write(session)
            person_ids.update(prepared.batch.person_ids)
        for p in plans:
            if p.existing is not None and _has_work(p):
                async with session.begin_nested():
                    person_ids.update(await _apply_existing(session, vault, principal, p))
    for p in plans:
        _count(summary, p)
        for pp in p.persons:
            for rule in pp.conflicts:
                flagged.append(
                    (
                        Issue(
                            pp.row_no,
                            "nik",
                            rule,
                            "NIK disagrees with the birth date/sex; imported, flagged",
                            "flagged",
                        ),
                        person_ids.get(pp.row_no) or (pp.existing.id if pp.existing else None),
                    )
                )
    issues.sort(key=lambda i: i.row_no)
    summary["issues"]["errors"] = len(issues)
    summary["issues"]["flagged"] = len(flagged)
    return ChunkResult(summary, issues, flagged)


async def process_chunk(
    session: AsyncSession,
    vault: PiiVault,
    principal: Principal,
    groups: Sequence[FamilyGroup],
    *,
    mode: str,
    on_mismatch: str,
    seen_niks: dict[bytes, int],
    correlation_id: str | None = None,
    isolate: bool = False,
) -> ChunkResult:
    """Plan and (in commit mode) write one chunk inside the caller's transaction."""
    prepared = await prepare_chunk(
        session, vault, principal, groups, mode=mode, on_mismatch=on_mismatch, seen_niks=seen_niks,
        correlation_id=correlation_id, isolate=isolate,
    )  # fmt: skip
    return await write_chunk(
        session, vault, principal, prepared, mode=mode, correlation_id=correlation_id, isolate=isolate
    )


async def record_chunk(
    session: AsyncSession, job_id: uuid.UUID, chunk_no: int, rows: int, result: ChunkResult
) -> None:
    """The chunk marker and its issues, in the chunk's transaction (so a resumed job skips it exactly)."""
    await repo.add_chunk(session, job_id, chunk_no, rows, result.summary)
    issue_rows = [
        {"id": new_id(), "job_id": job_id, "row_no": i.row_no, "field": i.field, "rule": i.rule,
         "message": i.message, "level": i.level, "person_id": None}
        for i in result.issues
    ] + [
        {"id": new_id(), "job_id": job_id, "row_no": i.row_no, "field": i.field, "rule": i.rule,
         "message": i.message, "level": i.level, "person_id": pid}
        for i, pid in result.flagged
    ]  # fmt: skip
    await repo.insert_rows(session, ImportIssue.__table__, issue_rows)


async def chunk_done(session: AsyncSession, job_id: uuid.UUID, chunk_no: int) -> bool:
    return await repo.chunk_exists(session, job_id, chunk_no)


def nik_indexes(vault: PiiVault, groups: Sequence[FamilyGroup]) -> dict[bytes, int]:
    """NIK blind indexes of the rows of chunks already done (a resumed job still detects in-file duplicates)."""
    out: dict[bytes, int] = {}
    for g in groups:
        for r in g.rows:
            if r.data is not None and r.data.nik:
                out.setdefault(vault.index("nik", domain.digits(r.data.nik)), r.row_no)
    return out


# ------------------------------------------------------------------------------------------ reads


def _visible(job: ImportJob, principal: Principal) -> bool:
    """A job is seen by callers whose region contains the uploader's region (national callers see all)."""
    if principal.region is None:
        return True
    return job.region is not None and is_within(job.region, principal.region)


async def _job(session: AsyncSession, job_id: uuid.UUID, principal: Principal) -> ImportJob:
    job = await repo.get_job(session, job_id)
    if job is None or not _visible(job, principal):
        raise NotFound("import not found")
    return job


@dataclass(frozen=True)
class ImportProgress:
    """A job with how far it got: rows and chunks done, and the summary so far (the job's own once it is done,
    else the sum of its finished chunks'; None before any). The API model is made at the edge (`ImportRead`)."""

    job: ImportJob
    processed_rows: int
    chunks_done: int
    summary: dict[str, Any] | None


async def _progress(session: AsyncSession, job: ImportJob) -> ImportProgress:
    processed, chunks_done = await repo.progress(session, job.id)
    summary = job.summary
    if summary is None and chunks_done:
        summary = domain.empty_summary()
        for c in await repo.done_chunks(session, job.id):
            summary = domain.add_summaries(summary, c.summary)
    return ImportProgress(job, processed, chunks_done, summary)


async def import_progress(session: AsyncSession, job: ImportJob) -> ImportProgress:
    """Status, progress and summary of a job the caller has just submitted."""
    async with session.begin():
        return await _progress(session, job)


async def get_import(session: AsyncSession, principal: Principal, job_id: uuid.UUID) -> ImportProgress:
    """Status, progress and summary of a job visible to the caller."""
    async with session.begin():
        return await _progress(session, await _job(session, job_id, principal))


async def import_issues(
    session: AsyncSession, principal: Principal, job_id: uuid.UUID, params: PageParams, level: str | None
) -> tuple[list[ImportIssue], str | None]:
    """A page of a visible job's rejected rows and flagged conflicts, in row order."""
    async with session.begin():
        await _job(session, job_id, principal)
        return await repo.issues_page(session, job_id, params, level)
