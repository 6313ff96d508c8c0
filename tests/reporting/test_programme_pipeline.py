"""Issue 11's programme figures through real Kafka and PostgreSQL, against hand computations.

The dataset is dated relative to today (the reporting rate depends on which deadlines have passed):
`cur` is this month (its report is never due yet), Q is the quarter holding the month five months back (all its
deadlines have passed), with months Qa, Qb, Qc. Groups are registered now but were founded before the window.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from reporting.config import Settings
from reporting.consumer import TOPICS
from reporting.main import create_app
from reporting.rebuild import rebuild

from shared.ages import add_months
from shared.clock import business_today
from shared.db import create_engine
from shared.events import CloudEvent, build_envelope
from shared.events import dashat as de
from shared.events import registry as re
from shared.events import uppka as ue
from shared.kafka import delete_topics
from shared.migrations import upgrade
from shared.runtime import ensure_service_topics
from shared.testing.plugin import CHECKOUT_TAG, bearer, recreate_database, running_app, unique
from tests.reporting.conftest import Projected, fact_snapshot, produce, project

pytestmark = [pytest.mark.integration, pytest.mark.kafka]

VA, VB = "15.71.01.1001", "15.71.02.1002"


@dataclass
class Dates:
    today: date
    cur: date  # this month
    qa: date
    qb: date
    qc: date

    @property
    def quarter(self) -> str:
        return f"{self.qa.year}-Q{(self.qa.month - 1) // 3 + 1}"


def dates() -> Dates:
    today = business_today()
    cur = today.replace(day=1)
    back = add_months(cur, -5)
    qa = date(back.year, 3 * ((back.month - 1) // 3) + 1, 1)
    return Dates(today, cur, qa, add_months(qa, 1), add_months(qa, 2))


def label(d: date) -> str:
    return f"{d.year:04d}-{d.month:02d}"


def _at(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, 5, tzinfo=UTC)


def build(t: Dates) -> tuple[dict[str, uuid.UUID], list[CloudEvent]]:
    i: dict[str, uuid.UUID] = {}

    def id_(name: str) -> uuid.UUID:
        return i.setdefault(name, uuid.uuid4())

    out: list[CloudEvent] = []
    now = datetime.now(UTC)

    def emit(data: Any, key: str, when: date | datetime | None = None) -> None:
        time = _at(when) if isinstance(when, date) and not isinstance(when, datetime) else when or now
        out.append(build_envelope(data, key=str(id_(key)), time=time))

    # --- UPPKA: four groups, all registered now (the events arrive today), founded earlier.
    k1 = id_("K1")
    year_before = add_months(t.qa, -12)
    founded = {
        "GA": (VA, k1, year_before),  # Kampung KB K1, founded a year before the quarter
        "GB": (VB, None, t.qb.replace(day=15)),  # founded mid-quarter: due from Qb
        "GC": (VA, k1, year_before),  # K1, inactive from Qc day 5: due Qa, Qb
        "GD": (VB, None, year_before),  # dissolved two months before the quarter: never due in Q
    }
    for g, (village, kkb, on) in founded.items():
        emit(
            ue.GroupRegistered(
                group_id=id_(g),
                code=g,
                village_code=village,
                kampung_kb_id=kkb,
                status="active",
                founded_on=on,
                name=f"UPPKA {g}",
            ),
            g,
        )
    for g, village, status, on in (
        ("GC", VA, "inactive", t.qc.replace(day=5)),
        ("GD", VB, "dissolved", add_months(t.qa, -2).replace(day=3)),
    ):
        emit(
            ue.GroupStatusChanged(
                group_id=id_(g), village_code=village, status=status, previous_status="active", changed_on=on
            ),
            g,
        )

    def report(g: str, village: str, month: date, late: bool) -> None:
        emit(
            ue.ReportSubmitted(
                group_id=id_(g),
                report_id=uuid.uuid4(),
                village_code=village,
                period=label(month),
                omzet=100_000,
                costs=50_000,
                profit=50_000,
                capital_balance=0,
                members_present=5,
                active_members=6,
                new_kb_acceptors=0,
                mkjp_switchers=0,
                submitted_on=add_months(month, 2) if late else add_months(month, 1).replace(day=5),
                late=late,
            ),
            g,
        )

    report("GA", VA, t.qa, False)
    report("GA", VA, t.qb, True)  # late
    report("GB", VB, t.qb, False)
    report("GB", VB, t.qc, False)
    report("GC", VA, t.qa, False)
    report("GC", VA, t.qc, False)  # not due (inactive at Qc's end): not counted
    report("GA", VA, t.cur, False)  # this month's, early: the month is not due yet
    emit(
        ue.TargetSet(target_id=id_("T"), year=t.cur.year, province_code="15", target_groups=4),
        "T",
    )
    emit(
        ue.ActivityHeld(
            group_id=id_("GA"),
            activity_id=uuid.uuid4(),
            village_code=VA,
            activity_type="pek_stunting",
            held_on=t.qb.replace(day=8),
            attendance=30,
        ),
        "GA",
    )
    for b, supplies in (("B1", True), ("B2", False)):
        emit(
            ue.BusinessRegistered(
                group_id=id_("GA"),
                business_id=id_(b),
                village_code=VA,
                sector="food_processing",
                supplies_dashat=supplies,
            ),
            "GA",
            t.qb.replace(day=2),
        )

    # --- registry: families F1 (K1, target, at risk), F2 (K1, target), F3 (VB, no Kampung KB).
    for f, village, kkb in (("F1", VA, k1), ("F2", VA, k1), ("F3", VB, None)):
        emit(re.FamilyRegistered(family_id=id_(f), village_code=village, kampung_kb_id=kkb), f, t.qa)
    emit(
        re.StuntingRiskChanged(
            family_id=id_("F1"), village_code=VA, at_risk=True, reasons=["latrine_improper"],
            rule_version="r", target=True,
        ),
        "F1",
        t.qa,
    )  # fmt: skip
    emit(
        re.StuntingRiskChanged(
            family_id=id_("F2"), village_code=VA, at_risk=False, reasons=[], rule_version="r", target=True
        ),
        "F2",
        t.qa,
    )

    measured_on = t.qb.replace(day=12)

    def child(c: str, f: str, village: str, born: date, haz: float, cls: str, *, flag: bool = False) -> None:
        emit(
            re.ChildMeasured(
                measurement_id=uuid.uuid4(),
                person_id=id_(c),
                family_id=id_(f),
                village_code=village,
                sex="P",
                measured_on=measured_on,
                age_days=(measured_on - born).days,
                haz=haz,
                haz_flag=flag,
                haz_class=cls,
                rule_version="who",
            ),
            f,
            measured_on,
        )

    child("X1", "F1", VA, add_months(measured_on, -12), -2.4, "stunted")  # baduta, stunted
    child("X2", "F1", VA, add_months(measured_on, -36), -3.2, "severely_stunted")  # balita
    child("X3", "F2", VA, add_months(measured_on, -48), -0.5, "normal")  # balita
    child("X4", "F3", VB, add_months(measured_on, -72), -2.5, "stunted")  # six: neither
    child("X5", "F3", VB, add_months(measured_on, -30), -6.5, "severely_stunted", flag=True)  # flagged
    child("X6", "F2", VA, add_months(measured_on, -24), -2.1, "stunted")  # 2nd birthday: balita, not baduta
    for case, c, f, village in (("CS1", "X1", "F1", VA), ("CS2", "X4", "F3", VB)):
        emit(
            re.BadutaStuntingDetected(
                case_id=id_(case), person_id=id_(c), family_id=id_(f), village_code=village,
                measurement_id=uuid.uuid4(), measured_on=measured_on, haz=-2.4, age_days=365,
                rule_version="r", severity="stunted", sex="P", birth_date=date(2020, 1, 1),
            ),
            f,
            measured_on,
        )  # fmt: skip

    screened = t.qb.replace(day=3)
    for c, f, at_risk, marriage in (
        ("CA1", "F1", True, add_months(t.qb, 4)),  # a target until after Qc
        ("CA2", "F2", False, t.qb.replace(day=20)),  # married in Qb: no longer a target at Qc's end
        ("CA3", "F3", True, add_months(t.qb, 4)),  # outside any kitchen's area
    ):
        emit(
            re.CatinRegistered(
                catin_id=id_(c), person_id=uuid.uuid4(), family_id=id_(f), village_code=VA if f != "F3" else VB,
                sex="P", planned_marriage_date=marriage, at_risk=at_risk, rule_version="r",
            ),
            f,
            screened,
        )  # fmt: skip
    for pg, f, village, kek, lila, hb, anaemia in (
        ("PG1", "F1", VA, True, 22.0, 10.5, "mild"),
        ("PG2", "F2", VA, False, 25.0, None, None),
        ("PG3", "F3", VB, False, None, 9.0, "moderate"),
    ):
        emit(
            re.PregnancyRegistered(
                pregnancy_id=id_(pg), person_id=id_(pg + "m"), family_id=id_(f), village_code=village,
                expected_delivery=add_months(screened, 5), lila_cm=lila, hb_g_dl=hb, kek=kek, anaemia=anaemia,
                mother_age_years=28, krs=False, rule_version="r",
            ),
            f,
            screened,
        )  # fmt: skip
    emit(
        re.PregnancyEnded(
            pregnancy_id=id_("PG2"), person_id=id_("PG2m"), family_id=id_("F2"), village_code=VA,
            outcome="birth", ended_on=t.qc.replace(day=1), child_person_id=uuid.uuid4(),
        ),
        "F2",
        t.qc,
    )  # fmt: skip

    # --- DASHAT: D1 serves K1; D2 in VB has no Kampung KB.
    for k, village, kkb in (("D1", VA, k1), ("D2", VB, None)):
        emit(
            de.KitchenOpened(
                kitchen_id=id_(k), name=k, village_code=village, kampung_kb_id=kkb, management_model="social",
                capacity_per_day=40, opened_on=year_before,
            ),
            k,
            year_before,
        )  # fmt: skip
    for e, k, person, village, category in (
        ("E1", "D1", "X1", VA, "baduta_stunting"),
        ("E2", "D1", "PG1m", VA, "ibu_hamil"),
        ("E3", "D1", "CA1p", VA, "catin"),
        ("E4", "D2", "X4", VB, "baduta_stunting"),
    ):
        emit(
            de.BeneficiaryEnrolled(
                enrolment_id=id_(e), kitchen_id=id_(k), person_id=id_(person), family_id=uuid.uuid4(),
                village_code=village, category=category, source="manual", enrolled_at=_at(t.qb),
                start_date=t.qb.replace(day=14), planned_end_date=add_months(t.qb, 6), priority=1,
            ),
            k,
            t.qb,
        )  # fmt: skip
    for k, village, spent, portions in (("D1", VA, 600_000, 40), ("D2", VB, 200_000, 0)):
        emit(
            de.ExpenseRecorded(
                kitchen_id=id_(k), entry_id=uuid.uuid4(), village_code=village, category="ingredients",
                amount=spent, spent_on=t.qc.replace(day=6),
            ),
            k,
            t.qc,
        )  # fmt: skip
        if portions:
            emit(
                de.MealsServed(
                    kitchen_id=id_(k), batch_id=uuid.uuid4(), village_code=village, served_on=t.qc.replace(day=7),
                    slot="lunch", portions_cooked=portions, portions_delivered=portions,
                    portions_consumed=portions, beneficiaries_served=portions,
                ),
                k,
                t.qc,
            )  # fmt: skip
    return i, out


@dataclass
class Programme:
    projected: Projected
    t: Dates
    id: dict[str, uuid.UUID]


@pytest.fixture(scope="module")
async def programme(kafka_bootstrap: str) -> AsyncIterator[Programme]:
    url = await recreate_database(f"test_reporting_prog_{CHECKOUT_TAG}")
    await upgrade("reporting", url)
    settings = Settings(database_url=url, topic_suffix="." + unique(), topic_partitions=3)
    await ensure_service_topics(settings, TOPICS)
    engine = create_engine(url, pool_size=4)
    t = dates()
    ids, envelopes = build(t)
    await produce(settings, envelopes)
    await project(settings, engine, len(envelopes))
    try:
        yield Programme(Projected(url, settings, engine, None), t, ids)  # type: ignore[arg-type]
    finally:
        await engine.dispose()
        await delete_topics(settings.kafka_bootstrap_servers, [settings.topic(x) for x in TOPICS])


async def summary(p: Programme, code: str, period: str, scopes: str = "reporting:read") -> dict[str, Any]:
    async with running_app(create_app(Settings(database_url=p.projected.url))) as client:
        r = await client.get(f"/v1/regions/{code}/summary?period={period}", headers=bearer(scopes))
    assert r.status_code == 200, r.text
    return r.json()["indicators"]  # type: ignore[no-any-return]


async def test_reporting_rate_per_month_quarter_and_not_due(programme: Programme) -> None:
    t = programme.t
    qb = await summary(programme, "ID", label(t.qb))
    # Qb: due GA, GB (founded on the 15th), GC; GB on time, GA late, GC missing -> 1/3; completeness 2/3.
    assert (qb["uppka_groups_due"], qb["uppka_reports_on_time"], qb["uppka_reports_late"]) == (3, 1, 1)
    assert qb["uppka_reports_missing"] == 1 and qb["uppka_reporting_rate"] == round(1 / 3, 6)
    assert qb["uppka_reporting_completeness"] == round(2 / 3, 6)
    qa = await summary(programme, "ID", label(t.qa))
    # Past months are not empty although every group event arrived today: Qa has GA and GC due, both on time.
    assert (qa["uppka_groups_due"], qa["uppka_reporting_rate"], qa["uppka_groups_existing"]) == (2, 1.0, 2)
    q = await summary(programme, "ID", t.quarter)
    # Quarter: due Qa 2 + Qb 3 + Qc 2 (GA, GB; GC inactive from Qc day 5) = 7 group-months; on time GA-Qa,
    # GC-Qa, GB-Qb, GB-Qc = 4 (GC's Qc report is not due); late GA-Qb = 1; missing GC-Qb, GA-Qc = 2.
    assert (q["uppka_groups_due"], q["uppka_reports_on_time"], q["uppka_reports_late"]) == (7, 4, 1)
    assert q["uppka_reports_missing"] == 2 and q["uppka_reports_not_due"] == 0
    assert q["uppka_reporting_rate"] == round(4 / 7, 6) and q["uppka_reporting_rate"] <= 1.0
    assert (q["uppka_reporting_rate_numerator"], q["uppka_reporting_rate_denominator"]) == (4, 7)
    assert q["uppka_groups_existing"] == 3  # GA, GB, GC (inactive, not dissolved) at Qc's end
    now = await summary(programme, "ID", label(t.cur))
    # This month: GA and GB are active, their reports not due yet: not_due, no rate (not 0%), none missing.
    assert (now["uppka_groups_due"], now["uppka_reports_not_due"], now["uppka_reporting_rate"]) == (
        0,
        2,
        None,
    )
    assert now["uppka_reports_missing"] == 0
    # Target progress: Kampung KB groups active (GA; GC inactive; GB and GD outside a Kampung KB) / 4.
    assert (now["uppka_groups_active_kampung_kb"], now["uppka_target_progress"]) == (1, 0.25)


async def test_programme_figures(programme: Programme) -> None:
    t = programme.t
    qb = await summary(programme, "ID", label(t.qb))
    # Measured in Qb: X1 (12 months, stunted) is the only baduta; balita X1, X2 (36 m, severe), X3 (48 m),
    # X6 (24 m, stunted: its second birthday); X4 (72 m) is neither, X5 flagged.
    assert (qb["baduta_measured"], qb["baduta_stunted"], qb["stunting_prevalence"]) == (1, 1, 1.0)
    assert (qb["balita_measured"], qb["balita_stunted"], qb["balita_severely_stunted"]) == (4, 3, 1)
    assert qb["balita_stunting_prevalence"] == 0.75
    # KRS: F1 at risk over target families F1, F2 (F3 is not a target family).
    assert (qb["krs_families"], qb["target_families"], qb["krs_share"]) == (1, 2, 0.5)
    # Catin screened in Qb: CA1, CA2, CA3; at risk CA1, CA3.
    assert (qb["catin_screened"], qb["catin_at_risk"], qb["catin_at_risk_share"]) == (3, 2, round(2 / 3, 6))
    # Pregnancies: KEK PG1 over LiLA measured PG1, PG2; anaemia PG1 (mild), PG3 (moderate) over Hb measured.
    assert (qb["pregnancies_registered"], qb["pregnancies_kek"], qb["pregnancies_kek_share"]) == (3, 1, 0.5)
    assert (qb["pregnancies_anaemia"], qb["pregnancies_anaemia_share"]) == (2, 1.0)
    assert (qb["pregnancies_anaemia_mild"], qb["pregnancies_anaemia_moderate"]) == (1, 1)
    assert (qb["uppka_activities_pek_stunting"], qb["uppka_activity_attendance_pek_stunting"]) == (1, 30)
    assert (qb["uppka_businesses"], qb["uppka_businesses_supplying_dashat"]) == (2, 1)
    qc = await summary(programme, "ID", label(t.qc))
    assert qc["uppka_businesses"] == 2 and qc["uppka_businesses_new"] == 0  # a stock, registered in Qb


async def test_dashat_coverage_and_cost_per_portion(programme: Programme) -> None:
    t = programme.t
    qc = await summary(programme, "ID", label(t.qc))
    # Eligible at Qc's end in K1 (the only area a kitchen serves): CA1 (CA2 married in Qb; CA3 is in VB), PG1
    # (PG2 ended on Qc's first day), PG2's mother breastfeeding (baby under six months), X1's open case (X4's
    # is in VB) = 4. Enrolled at D1: X1, PG1's mother, CA1 = 3 (D2 has no Kampung KB: left out) -> 0.75.
    assert (qc["dashat_eligible_catin"], qc["dashat_eligible_ibu_hamil"]) == (1, 1)
    assert (qc["dashat_eligible_ibu_menyusui"], qc["dashat_eligible_stunted_children"]) == (1, 1)
    assert (qc["dashat_coverage"], qc["dashat_coverage_numerator"], qc["dashat_eligible_targets"]) == (
        0.75,
        3,
        4,
    )
    # Cost per portion: D1 600,000 / 40 portions; D2's 200,000 without portions is not divided by D1's.
    assert (qc["dashat_cost_per_portion"], qc["dashat_cost_per_portion_numerator"]) == (15_000.0, 600_000)
    assert qc["dashat_expenses"] == 800_000
    kkb = await summary(programme, f"kkb:{programme.id['K1']}", label(t.qc))
    assert kkb["dashat_coverage"] == 0.75
    district_b = await summary(programme, "15.71.02", label(t.qc))
    assert district_b["dashat_coverage"] is None and district_b["dashat_eligible_targets"] == 0


async def test_public_role_sees_the_new_small_figures_suppressed(programme: Programme) -> None:
    village = await summary(programme, VA, label(programme.t.qb), scopes="reporting:public")
    assert village["balita_measured"] is None and village["balita_stunting_prevalence"] is None
    assert village["catin_at_risk_share"] is None and village["uppka_reporting_rate"] is None


async def test_rebuild_equals_incremental(programme: Programme) -> None:
    before = await fact_snapshot(programme.projected.engine)
    await rebuild(programme.projected.settings, timeout=60)
    assert await fact_snapshot(programme.projected.engine) == before
    assert (await summary(programme, "ID", programme.t.quarter))["uppka_reporting_rate"] == round(4 / 7, 6)


def test_dates_are_as_the_comments_say() -> None:
    t = dates()
    assert t.qc < add_months(t.cur, -2) and t.qa.month in (1, 4, 7, 10)
    assert t.today - t.qc > timedelta(days=40)
