"""A small fixture dataset of registry, UPPKA and DASHAT events whose indicators are computed by hand.

Hand-computed values (see test_pipeline.py) are stated next to the events that produce them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from shared.events import CloudEvent, build_envelope
from shared.events import dashat as de
from shared.events import registry as re
from shared.events import uppka as ue

V1, V2, V3, V4 = "15.71.01.1001", "15.71.01.1002", "15.71.02.1002", "32.01.01.1001"


def ids(*names: str) -> dict[str, uuid.UUID]:
    return {n: uuid.uuid4() for n in names}


@dataclass
class Dataset:
    id: dict[str, uuid.UUID]
    envelopes: list[CloudEvent]  # in production order (late ones come last)
    duplicates: list[CloudEvent]  # produced a second time

    @property
    def kkb(self) -> str:
        return f"kkb:{self.id['K1']}"

    @property
    def kitchen(self) -> str:
        return f"dapur:{self.id['D1']}"


def _at(d: date, hour: int = 12) -> datetime:
    return datetime(d.year, d.month, d.day, hour, tzinfo=UTC)


def build() -> Dataset:
    i = ids(
        *[
            "F1",
            "F2",
            "F3",
            "F4",
            "F5",
            "K1",
            "P1",
            "P2",
            "P3",
            "P4",
            "P5",
            "C1",
            "H1",
            "C2",
            "C3",
            "C4",
            "C5",
            "C6",
            "C7",
            "C8",
        ],
        *["M0", "M1", "M2", "M3", "M4", "M5", "M6", "M6b", "M7", "M8", "caseA", "caseB", "caseC", "caseD"],
        *[
            "G1",
            "G2",
            "G3",
            "G4",
            "Mb1",
            "Mb2",
            "Mb3",
            "Mb4",
            "R1",
            "R2",
            "R3",
            "T15",
            "T32",
            "CO1",
            "A1",
            "B1",
        ],
        *[
            "D1",
            "D2",
            "E1",
            "E2",
            "E3",
            "E4",
            "W1",
            "W2",
            "ML1",
            "ML2",
            "FU1",
            "FU2",
            "FU3",
            "EX1",
            "EX2",
            "EX3",
        ],
    )
    out: list[CloudEvent] = []
    late: list[CloudEvent] = []

    def emit(
        data: Any, key: uuid.UUID, when: date, *, hour: int = 12, to: list[CloudEvent] = out
    ) -> CloudEvent:
        env = build_envelope(data, key=str(key), time=_at(when, hour))
        to.append(env)
        return env

    jan10 = date(2026, 1, 10)
    fam = {"F1": (V1, i["K1"]), "F2": (V1, i["K1"]), "F3": (V2, None), "F4": (V3, None), "F5": (V4, None)}
    for f, (village, kkb) in fam.items():
        emit(re.FamilyRegistered(family_id=i[f], village_code=village, kampung_kb_id=kkb), i[f], jan10)
    # KRS: end of Feb F3 + F4, end of March only F3.
    emit(
        re.StuntingRiskChanged(
            family_id=i["F3"],
            village_code=V2,
            at_risk=True,
            reasons=["air_minum", "jamban"],
            rule_version="krs-1",
        ),
        i["F3"],
        date(2026, 2, 5),
    )
    emit(
        re.StuntingRiskChanged(
            family_id=i["F4"], village_code=V3, at_risk=True, reasons=["air_minum"], rule_version="krs-1"
        ),
        i["F4"],
        date(2026, 2, 5),
    )
    emit(
        re.StuntingRiskChanged(
            family_id=i["F4"], village_code=V3, at_risk=False, reasons=[], rule_version="krs-1"
        ),
        i["F4"],
        date(2026, 3, 20),
    )

    def person(p: str, f: str, village: str, pus: bool, relation: str = "istri", sex: str = "P") -> None:
        emit(
            re.PersonRegistered(
                person_id=i[p],
                family_id=i[f],
                village_code=village,
                sex=sex,
                birth_date=date(1995, 1, 1),
                relation=relation,
                marital_status="kawin",
                has_nik=True,
                pus=pus,
                rule_version="pus-1",
            ),
            i[f],
            jan10,
        )

    for p, f, v in (("P1", "F1", V1), ("P2", "F2", V1), ("P3", "F3", V2), ("P4", "F4", V3), ("P5", "F5", V4)):
        person(p, f, v, True)
    person("H1", "F1", V1, False, "kepala_keluarga", "L")
    person("C1", "F1", V1, False, "anak", "L")  # a boy: the fold derives PUS from sex, marriage and age

    def kb(
        p: str,
        f: str,
        village: str,
        since: date,
        method: str | None,
        reason: str | None = None,
        to: list[CloudEvent] = out,
    ) -> CloudEvent:
        from shared.events.vocab import MKJP_METHODS

        return emit(
            re.KbStatusChanged(
                person_id=i[p],
                family_id=i[f],
                village_code=village,
                method=method,
                is_user=method is not None,
                mkjp=method in MKJP_METHODS,
                since=since,
                reason_non_use=reason,
                pus=True,
            ),
            i[f],
            since,
            to=to,
        )

    kb_p1 = kb("P1", "F1", V1, date(2026, 1, 15), "iud")
    kb("P2", "F2", V1, date(2026, 3, 5), "implant")  # the later change arrives first...
    kb("P2", "F2", V1, date(2026, 1, 20), "pil", to=late)  # ...the earlier one last (late, out of order)
    kb("P3", "F3", V2, date(2026, 2, 1), None, "iat")
    kb("P4", "F4", V3, date(2026, 2, 10), "suntik")
    kb("P5", "F5", V4, date(2026, 1, 5), None, "tial")

    def measured(
        m: str,
        child: str,
        f: str,
        village: str,
        on: date,
        age: int,
        haz: float,
        cls: str,
        *,
        flag: bool = False,
        corrects: str | None = None,
    ) -> None:
        emit(
            re.ChildMeasured(
                measurement_id=i[m],
                person_id=i[child],
                family_id=i[f],
                village_code=village,
                sex="L",
                measured_on=on,
                age_days=age,
                haz=haz,
                haz_flag=flag,
                haz_class=cls,
                corrects_measurement_id=i[corrects] if corrects else None,
                rule_version="who-2006",
            ),
            i[f],
            on,
        )

    measured("M0", "C1", "F1", V1, date(2026, 2, 10), 280, -1.8, "normal")
    measured("M1", "C1", "F1", V1, date(2026, 3, 3), 300, -2.5, "stunted")
    measured("M2", "C2", "F3", V2, date(2026, 3, 10), 400, -3.5, "severely_stunted")
    measured("M3", "C3", "F4", V3, date(2026, 3, 12), 500, -1.0, "normal")
    measured(
        "M4", "C4", "F3", V2, date(2026, 3, 15), 200, -6.5, "severely_stunted", flag=True
    )  # flagged: excluded
    measured("M5", "C5", "F4", V3, date(2026, 3, 16), 800, -2.5, "stunted")  # not a baduta: excluded
    measured("M6", "C6", "F2", V1, date(2026, 3, 5), 250, -2.2, "stunted")
    measured("M6b", "C6", "F2", V1, date(2026, 3, 5), 250, -1.5, "normal", corrects="M6")  # correction wins
    measured("M7", "C7", "F2", V1, date(2026, 3, 7), 260, -2.4, "stunted")
    emit(
        re.MeasurementRetracted(
            measurement_id=i["M7"],
            person_id=i["C7"],
            family_id=i["F2"],
            village_code=V1,
            measured_on=date(2026, 3, 7),
            retracted_on=date(2026, 3, 8),
        ),
        i["F2"],
        date(2026, 3, 8),
    )
    measured("M8", "C1", "F1", V1, date(2026, 3, 28), 325, -2.1, "stunted")

    def case(c: str, child: str, f: str, village: str, m: str, on: date, sev: str) -> None:
        emit(
            re.BadutaStuntingDetected(
                case_id=i[c],
                person_id=i[child],
                family_id=i[f],
                village_code=village,
                measurement_id=i[m],
                measured_on=on,
                haz=-2.5,
                age_days=300,
                rule_version="who-2006",
                severity=sev,
                sex="L",
                birth_date=date(2025, 5, 1),
            ),
            i[f],
            on,
        )

    case("caseA", "C1", "F1", V1, "M1", date(2026, 3, 3), "stunted")
    case("caseB", "C2", "F3", V2, "M2", date(2026, 3, 10), "severely_stunted")
    case("caseC", "C6", "F2", V1, "M6", date(2026, 3, 5), "stunted")
    emit(
        re.StuntingCaseRetracted(
            case_id=i["caseC"],
            person_id=i["C6"],
            family_id=i["F2"],
            village_code=V1,
            measurement_id=i["M6"],
            measured_on=date(2026, 3, 5),
            reason="measurement_corrected",
            retracted_on=date(2026, 3, 6),
        ),
        i["F2"],
        date(2026, 3, 6),
    )
    case("caseD", "C8", "F4", V3, "M3", date(2026, 1, 15), "stunted")
    emit(
        re.StuntingResolved(
            case_id=i["caseD"],
            person_id=i["C8"],
            family_id=i["F4"],
            village_code=V3,
            measurement_id=i["M3"],
            measured_on=date(2026, 3, 20),
            haz=-1.5,
            age_days=400,
            rule_version="who-2006",
        ),
        i["F4"],
        date(2026, 3, 20),
    )

    # --- UPPKA
    jan5 = date(2026, 1, 5)
    for g, village, kkb in (("G1", V1, i["K1"]), ("G2", V3, None), ("G3", V4, None), ("G4", V2, None)):
        emit(
            ue.GroupRegistered(
                group_id=i[g],
                code=g,
                village_code=village,
                kampung_kb_id=kkb,
                status="active",
                name=f"UPPKA {g}",
            ),
            i[g],
            jan5,
        )
    emit(
        ue.GroupStatusChanged(
            group_id=i["G2"],
            village_code=V3,
            status="inactive",
            previous_status="active",
            changed_on=date(2026, 3, 10),
        ),
        i["G2"],
        date(2026, 3, 10),
    )
    emit(
        ue.GroupStatusChanged(
            group_id=i["G4"],
            village_code=V2,
            status="dissolved",
            previous_status="active",
            changed_on=date(2026, 2, 15),
        ),
        i["G4"],
        date(2026, 2, 15),
    )
    emit(ue.TargetSet(target_id=i["T15"], year=2026, province_code="15", target_groups=10), i["T15"], jan5)
    emit(ue.TargetSet(target_id=i["T32"], year=2026, province_code="32", target_groups=5), i["T32"], jan5)

    def join(mb: str, g: str, p: str, village: str, cat: str, on: date, method: str | None) -> None:
        emit(
            ue.MemberJoined(
                group_id=i[g],
                member_id=i[mb],
                person_id=i[p],
                family_id=i["F1"],
                village_code=village,
                category=cat,
                role="anggota",
                joined_on=on,
                kb_method=method,
                kb_user=method is not None,
                mkjp=method in ("iud", "implant"),
            ),
            i[g],
            on,
        )

    join("Mb1", "G1", "P1", V1, "pus", jan10, "iud")
    join("Mb2", "G1", "P2", V1, "pus", jan10, "pil")
    join("Mb3", "G1", "H1", V1, "lansia", jan10, None)
    join("Mb4", "G3", "P5", V4, "remaja", date(2026, 2, 1), None)
    emit(
        ue.MemberKbStatusChanged(
            group_id=i["G1"],
            member_id=i["Mb2"],
            person_id=i["P2"],
            village_code=V1,
            kb_method="implant",
            kb_user=True,
            mkjp=True,
            previous_mkjp=False,
            changed_on=date(2026, 3, 5),
        ),
        i["G1"],
        date(2026, 3, 5),
    )
    emit(
        ue.MemberLeft(
            group_id=i["G1"],
            member_id=i["Mb3"],
            person_id=i["H1"],
            village_code=V1,
            left_on=date(2026, 3, 25),
            reason="resigned",
        ),
        i["G1"],
        date(2026, 3, 25),
    )

    def report(
        r: str, g: str, village: str, period: str, omzet: int, costs: int, present: int, amendment: int = 0
    ) -> None:
        fields = dict(
            group_id=i[g],
            report_id=i[r],
            village_code=village,
            period=period,
            omzet=omzet,
            costs=costs,
            profit=omzet - costs,
            capital_balance=0,
            members_present=present,
            active_members=10,
            new_kb_acceptors=0,
            mkjp_switchers=0,
            submitted_on=date(2026, 4, 2),
            late=False,
        )
        data = (
            ue.ReportAmended(**fields, amendment_no=amendment) if amendment else ue.ReportSubmitted(**fields)
        )
        emit(data, i[g], date(2026, 4, 2 + amendment))

    report("R1", "G1", V1, "2026-03", 1_000_000, 600_000, 8)
    report("R1", "G1", V1, "2026-03", 1_200_000, 700_000, 9, amendment=1)
    report("R2", "G2", V3, "2026-03", 500_000, 300_000, 5)
    report("R3", "G1", V1, "2026-02", 800_000, 500_000, 7)
    emit(
        ue.DashatContributionMade(
            group_id=i["G1"],
            contribution_id=i["CO1"],
            kitchen_id=i["D1"],
            village_code=V1,
            kind="cash",
            amount=250_000,
            contributed_on=date(2026, 3, 8),
        ),
        i["G1"],
        date(2026, 3, 8),
    )
    emit(
        ue.ActivityHeld(
            group_id=i["G1"],
            activity_id=i["A1"],
            village_code=V1,
            activity_type="socialisation",
            held_on=date(2026, 3, 9),
            attendance=25,
        ),
        i["G1"],
        date(2026, 3, 9),
    )

    # --- DASHAT
    emit(
        de.KitchenOpened(
            kitchen_id=i["D1"],
            name="Dapur 1",
            village_code=V1,
            kampung_kb_id=i["K1"],
            management_model="social",
            capacity_per_day=50,
            opened_on=date(2026, 1, 1),
        ),
        i["D1"],
        date(2026, 1, 1),
    )
    emit(
        de.KitchenOpened(
            kitchen_id=i["D2"],
            name="Dapur 2",
            village_code=V3,
            management_model="combined",
            capacity_per_day=30,
            opened_on=date(2026, 2, 1),
        ),
        i["D2"],
        date(2026, 2, 1),
    )

    def enrol(
        e: str,
        k: str,
        p: str,
        village: str,
        cat: str,
        start: date,
        trig: datetime | None,
        enrolled_at: datetime,
    ) -> None:
        emit(
            de.BeneficiaryEnrolled(
                enrolment_id=i[e],
                kitchen_id=i[k],
                person_id=i[p],
                family_id=i["F1"],
                village_code=village,
                category=cat,
                source="automatic" if trig else "manual",
                triggered_at=trig,
                enrolled_at=enrolled_at,
                start_date=start,
                planned_end_date=date(2026, 6, 30),
                priority=1,
            ),
            i[k],
            start,
        )

    enrol(
        "E1",
        "D1",
        "C1",
        V1,
        "baduta_stunting",
        date(2026, 3, 5),
        datetime(2026, 3, 3, 8, tzinfo=UTC),
        datetime(2026, 3, 5, 8, tzinfo=UTC),
    )
    enrol("E2", "D1", "P2", V1, "ibu_hamil", date(2026, 3, 1), None, datetime(2026, 3, 1, 8, tzinfo=UTC))
    enrol(
        "E3",
        "D2",
        "C2",
        V2,
        "baduta_stunting",
        date(2026, 3, 16),
        datetime(2026, 3, 10, tzinfo=UTC),
        datetime(2026, 3, 16, tzinfo=UTC),
    )
    enrol(
        "E4",
        "D1",
        "P1",
        V1,
        "catin",
        date(2026, 2, 1),
        datetime(2026, 1, 31, tzinfo=UTC),
        datetime(2026, 2, 1, tzinfo=UTC),
    )
    emit(
        de.BeneficiaryExited(
            enrolment_id=i["E4"],
            kitchen_id=i["D1"],
            person_id=i["P1"],
            village_code=V1,
            category="catin",
            reason="completed",
            exited_on=date(2026, 3, 15),
        ),
        i["D1"],
        date(2026, 3, 15),
    )
    emit(
        de.BeneficiaryWaitlisted(
            waitlist_id=i["W1"],
            person_id=i["P4"],
            family_id=i["F4"],
            village_code=V3,
            category="ibu_menyusui",
            reason="no_kitchen",
            waitlisted_at=datetime(2026, 3, 11, tzinfo=UTC),
        ),
        i["F4"],
        date(2026, 3, 11),
    )
    emit(
        de.BeneficiaryWaitlisted(
            waitlist_id=i["W2"],
            kitchen_id=i["D1"],
            person_id=i["C7"],
            family_id=i["F2"],
            village_code=V1,
            category="baduta_stunting",
            reason="kitchen_full",
            waitlisted_at=datetime(2026, 3, 12, tzinfo=UTC),
        ),
        i["D1"],
        date(2026, 3, 12),
    )
    meals1 = emit(
        de.MealsServed(
            kitchen_id=i["D1"],
            batch_id=i["ML1"],
            village_code=V1,
            served_on=date(2026, 3, 5),
            slot="lunch",
            portions_cooked=40,
            portions_delivered=38,
            portions_consumed=35,
            beneficiaries_served=35,
            by_category={"baduta_stunting": 10, "ibu_hamil": 25},
        ),
        i["D1"],
        date(2026, 3, 5),
    )
    emit(
        de.MealsServed(
            kitchen_id=i["D2"],
            batch_id=i["ML2"],
            village_code=V3,
            served_on=date(2026, 3, 16),
            slot="lunch",
            portions_cooked=22,
            portions_delivered=22,
            portions_consumed=20,
            beneficiaries_served=20,
        ),
        i["D2"],
        date(2026, 3, 16),
    )
    emit(
        de.FundsReceived(
            kitchen_id=i["D1"],
            entry_id=i["FU1"],
            village_code=V1,
            source="apbn_bokb",
            amount=2_000_000,
            received_on=date(2026, 1, 5),
        ),
        i["D1"],
        date(2026, 1, 5),
    )
    emit(
        de.FundsReceived(
            kitchen_id=i["D1"],
            entry_id=i["FU2"],
            village_code=V1,
            source="uppka_contribution",
            amount=250_000,
            received_on=date(2026, 3, 8),
            contribution_id=i["CO1"],
        ),
        i["D1"],
        date(2026, 3, 8),
    )
    emit(
        de.FundsReceived(
            kitchen_id=i["D2"],
            entry_id=i["FU3"],
            village_code=V3,
            source="dana_desa",
            amount=1_000_000,
            received_on=date(2026, 2, 1),
        ),
        i["D2"],
        date(2026, 2, 1),
        to=late,
    )
    emit(
        de.ExpenseRecorded(
            kitchen_id=i["D1"],
            entry_id=i["EX1"],
            village_code=V1,
            category="ingredients",
            amount=900_000,
            spent_on=date(2026, 3, 10),
        ),
        i["D1"],
        date(2026, 3, 10),
    )
    emit(
        de.ExpenseRecorded(
            kitchen_id=i["D2"],
            entry_id=i["EX2"],
            village_code=V3,
            category="ingredients",
            amount=300_000,
            spent_on=date(2026, 3, 16),
        ),
        i["D2"],
        date(2026, 3, 16),
    )
    emit(
        de.ExpenseRecorded(
            kitchen_id=i["D1"],
            entry_id=i["EX3"],
            village_code=V1,
            category="fuel",
            amount=300_000,
            spent_on=date(2026, 3, 20),
        ),
        i["D1"],
        date(2026, 3, 20),
    )

    return Dataset(id=i, envelopes=out + late, duplicates=[kb_p1, meals1])
