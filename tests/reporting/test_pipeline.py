"""Indicators from events through the real consumer, checked against hand-computed values."""

from __future__ import annotations

import io
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any

import pytest
from openpyxl import load_workbook
from reporting.config import Settings
from reporting.indicators import disclosure
from reporting.indicators.domain import unit_of as indicator_unit
from reporting.main import create_app
from reporting.rebuild import rebuild
from sqlalchemy import text

from shared.events import build_envelope
from shared.events import registry as re
from shared.testing.plugin import bearer, running_app
from tests.reporting.conftest import Projected, fact_snapshot, produce, project
from tests.reporting.dataset import V1, V2, V3, V4

pytestmark = [pytest.mark.integration, pytest.mark.kafka]

READ = "reporting:read"


async def get(p: Projected, path: str, scopes: str = READ, region: str | None = None, **headers: str) -> Any:
    async with running_app(create_app(Settings(database_url=p.url))) as client:
        return await client.get(path, headers={**bearer(scopes, region=region), **headers})


async def summary(p: Projected, code: str, period: str, **kw: Any) -> dict[str, Any]:
    r = await get(p, f"/v1/regions/{code}/summary?period={period}", **kw)
    assert r.status_code == 200, r.text
    return r.json()["indicators"]  # type: ignore[no-any-return]


async def test_family_planning_indicators_match_hand_computed(projected: Projected) -> None:
    nat = await summary(projected, "ID", "2026-03")
    # 5 families, 7 persons; PUS P1..P5; users P1 iud, P2 implant (since March), P4 suntik.
    assert (nat["families_registered"], nat["persons_registered"], nat["pus"]) == (5, 7, 5)
    assert (nat["kb_users"], nat["mkjp_users"], nat["kb_users_iud"], nat["kb_users_implant"]) == (3, 2, 1, 1)
    assert nat["kb_users_pil"] == 0
    assert nat["cpr"] == 0.6 and nat["mkjp_share"] == pytest.approx(2 / 3, abs=1e-6)
    assert nat["unmet_need"] == 0.4  # P3 iat + P5 tial over 5 PUS
    prov = await summary(projected, "15", "2026-03")
    assert (prov["pus"], prov["kb_users"], prov["cpr"], prov["unmet_need"]) == (4, 3, 0.75, 0.25)
    dist = await summary(projected, "15.71.01", "2026-03")
    assert (dist["pus"], dist["kb_users"], dist["mkjp_share"]) == (3, 2, 1.0)
    assert dist["unmet_need"] == pytest.approx(1 / 3, abs=1e-6)
    kkb = await summary(projected, projected.data.kkb, "2026-03")
    assert (kkb["families_registered"], kkb["pus"], kkb["cpr"]) == (2, 2, 1.0)


async def test_new_acceptors_and_switchers_of_the_fixture(projected: Projected) -> None:
    # Registered 10 January with no KB status; first records after that are starts: P1 iud (15 Jan) and P2
    # pil (20 Jan, arrived last) in January, P4 suntik (10 Feb) in February; P2 pil -> implant (5 Mar) switches.
    jan, feb, mar = [await summary(projected, "ID", p) for p in ("2026-01", "2026-02", "2026-03")]
    assert [(x["kb_new_acceptors"], x["mkjp_switchers"]) for x in (jan, feb, mar)] == [(2, 0), (1, 0), (0, 1)]
    q1 = await summary(projected, "ID", "2026-Q1")
    assert (q1["kb_new_acceptors"], q1["mkjp_switchers"]) == (3, 1)
    # All three March users use a modern method: mCPR = CPR = 3 / 5.
    assert (mar["mcpr"], mar["kb_modern_users"], mar["kb_lestari_mkjp"]) == (
        0.6,
        3,
        1,
    )  # P1's IUD since January


async def test_late_and_out_of_order_events_land_in_their_month(projected: Projected) -> None:
    # P2's pil (since 20 Jan) was produced after her implant (since 5 Mar).
    feb = await summary(projected, "ID", "2026-02")
    assert (feb["kb_users"], feb["kb_users_pil"], feb["mkjp_users"]) == (3, 1, 1)
    jan = await summary(projected, "ID", "2026-01")
    assert (jan["kb_users"], jan["kb_users_pil"], jan["unmet_need"]) == (2, 1, 0.2)
    # D2's February funds arrived last.
    assert feb["dashat_funds_dana_desa"] == 1_000_000
    assert (await summary(projected, "ID", "2026-03"))["dashat_funds_dana_desa"] == 0


async def test_duplicates_count_once(projected: Projected) -> None:
    nat = await summary(projected, "ID", "2026-03")
    assert nat["kb_users_iud"] == 1
    assert nat["dashat_portions_served"] == 60  # 38 + 22, the duplicated batch once


async def test_stunting_and_krs(projected: Projected) -> None:
    mar = await summary(projected, "ID", "2026-03")
    # Measured: C1, C2, C3, C6 (corrected to normal); not C4 (flagged), C5 (800 days), C7 (retracted).
    assert (mar["baduta_measured"], mar["baduta_stunted"], mar["baduta_severely_stunted"]) == (4, 2, 1)
    assert (mar["stunting_prevalence"], mar["severe_stunting_prevalence"]) == (0.5, 0.25)
    assert (mar["stunting_new_cases"], mar["stunting_resolved"], mar["stunting_retracted"]) == (2, 1, 1)
    assert mar["stunting_open_cases"] == 2
    q1 = await summary(projected, "ID", "2026-Q1")
    assert (q1["baduta_measured"], q1["baduta_stunted"]) == (4, 2)  # C1 measured in Feb and March: once
    assert q1["stunting_new_cases"] == 3  # + case D in January
    feb = await summary(projected, "ID", "2026-02")
    assert (feb["baduta_measured"], feb["baduta_stunted"], feb["stunting_prevalence"]) == (1, 0, 0.0)
    assert (feb["krs_families"], mar["krs_families"]) == (2, 1)
    # Over target families: these events carry no `target`, so only the families at risk are known targets.
    assert mar["krs_reason_jamban"] == 1 and mar["krs_share"] == 1.0 and mar["target_families"] == 1


async def test_uppka_indicators(projected: Projected) -> None:
    mar = await summary(projected, "ID", "2026-03")
    assert (mar["uppka_groups_existing"], mar["uppka_groups_active"], mar["uppka_groups_reporting"]) == (
        3,
        2,
        2,
    )
    # Due for March (active on 31 March): G1, G3 (G2 inactive from 10 March, G4 dissolved); G1 on time.
    assert (mar["uppka_groups_due"], mar["uppka_reports_on_time"], mar["uppka_reporting_rate"]) == (2, 1, 0.5)
    assert (
        mar["uppka_members"],
        mar["uppka_members_pus"],
        mar["uppka_members_remaja"],
        mar["uppka_members_lansia"],
    ) == (3, 2, 1, 0)
    assert (mar["uppka_members_kb_users"], mar["uppka_members_mkjp"], mar["uppka_members_mkjp_share"]) == (
        2,
        2,
        1.0,
    )
    # Over PUS members (Mb1, Mb2, both using KB), not the remaja Mb4.
    assert mar["uppka_members_kb_participation"] == 1.0
    assert (mar["uppka_members_kb_participation_denominator"], mar["uppka_members_pus_kb_users"]) == (2, 2)
    # The amended G1 report replaces the first one.
    assert (mar["uppka_omzet"], mar["uppka_profit"], mar["uppka_members_present"]) == (1_700_000, 700_000, 14)
    assert mar["uppka_attendance_rate"] == 0.7 and mar["uppka_activity_attendance"] == 25
    assert mar["uppka_dashat_contributions"] == 250_000
    # Only Kampung KB groups count towards the target: G1.
    assert mar["uppka_target_groups"] == 15 and mar["uppka_target_progress"] == pytest.approx(
        1 / 15, abs=1e-6
    )
    q1 = await summary(projected, "ID", "2026-Q1")
    assert (q1["uppka_groups_reporting"], q1["uppka_omzet"]) == (2, 2_500_000)
    # Group-months due: January 4, February 3 (G4 dissolved), March 2 = 9; on time: G1's February and March.
    assert (q1["uppka_groups_due"], q1["uppka_reports_on_time"]) == (9, 2)
    assert q1["uppka_reporting_rate"] == round(2 / 9, 6)
    feb = await summary(projected, "ID", "2026-02")
    # Mb1 iud, Mb2 pil (both PUS), Mb3 lansia, Mb4 remaja: participation 2 / 2 PUS members.
    assert (feb["uppka_members"], feb["uppka_members_mkjp_share"], feb["uppka_members_kb_participation"]) == (
        4,
        0.5,
        1.0,
    )
    prov = await summary(projected, "15", "2026-03")
    assert (prov["uppka_target_groups"], prov["uppka_target_progress"]) == (10, 0.1)


async def test_dashat_indicators(projected: Projected) -> None:
    mar = await summary(projected, "ID", "2026-03")
    assert (mar["dashat_kitchens_active"], mar["dashat_beneficiaries"], mar["dashat_enrolled"]) == (2, 3, 3)
    assert (mar["dashat_beneficiaries_baduta_stunting"], mar["dashat_beneficiaries_ibu_hamil"]) == (2, 1)
    assert (
        mar["dashat_exited_completed"],
        mar["dashat_waitlisted"],
        mar["dashat_waitlisted_no_kitchen"],
    ) == (1, 2, 1)
    assert (mar["dashat_enrolment_days_median"], mar["dashat_enrolment_days_p90"]) == (4.0, 5.6)
    assert (mar["dashat_expenses"], mar["dashat_cost_per_portion"]) == (1_500_000, 25_000.0)
    assert (mar["dashat_funds"], mar["dashat_funds_uppka_contribution"]) == (250_000, 250_000)
    # D1: balance 1,050,000 after spending 1,200,000 in March (27 days of runway); D2: 72 days.
    assert mar["dashat_kitchens_low_runway"] == 1
    assert (mar["dashat_haz_children"], mar["dashat_haz_change_mean"]) == (1, 0.4)
    kitchen = await summary(projected, projected.data.kitchen, "2026-03")
    assert (
        kitchen["dashat_beneficiaries"],
        kitchen["dashat_portions_served"],
        kitchen["dashat_kitchens_low_runway"],
    ) == (2, 38, 1)


async def test_breakdown_over_children_and_levels(projected: Projected) -> None:
    r = await get(projected, "/v1/indicators?period=2026-03")
    body = r.json()
    assert r.status_code == 200 and body["breakdown_level"] == "province"
    assert [row["region"] for row in body["rows"]] == ["15", "32"]
    assert {t["topic"] for t in body["freshness"]} == {"kencana.registry", "kencana.uppka", "kencana.dashat"}
    assert all(t["last_event_time"] and t["events_applied"] > 0 for t in body["freshness"])
    assert all(t["offset_lag"] == 0 and t["lag_seconds"] is not None for t in body["freshness"])
    r = await get(projected, "/v1/indicators?region=15.71&level=village&period=2026-03")
    rows = {row["region"]: row["indicators"] for row in r.json()["rows"]}
    assert set(rows) >= {V1, V2, V3}
    assert (rows[V1]["pus"], rows[V2]["unmet_need"], rows[V3]["cpr"]) == (2, 1.0, 1.0)
    r = await get(projected, "/v1/indicators?region=15&level=kampung_kb&period=2026-03")
    assert [row["region"] for row in r.json()["rows"]] == [projected.data.kkb]
    r = await get(projected, "/v1/indicators?region=15.71.01.1001&period=2026-03")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.level"
    r = await get(projected, "/v1/indicators?period=2026-13")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.period"


async def test_series(projected: Projected) -> None:
    r = await get(projected, "/v1/indicators/kb_users/series?from=2026-01&to=2026-03")
    assert [(p["period"], p["value"]) for p in r.json()["points"]] == [
        ("2026-01", 2),
        ("2026-02", 3),
        ("2026-03", 3),
    ]
    r = await get(projected, "/v1/indicators/nope/series?from=2026-01&to=2026-03")
    assert r.status_code == 404


async def test_region_scope(projected: Projected) -> None:
    assert (await get(projected, "/v1/regions/32/summary?period=2026-03", region="15.71")).status_code == 404
    assert (await get(projected, "/v1/regions/ID/summary?period=2026-03", region="15.71")).status_code == 404
    assert (
        await get(projected, "/v1/indicators?region=15&period=2026-03", region="15.71")
    ).status_code == 404
    assert (
        await get(projected, f"/v1/regions/{V4}/summary?period=2026-03", region="15.71")
    ).status_code == 404
    ok = await get(projected, "/v1/regions/15.71.01/summary?period=2026-03", region="15.71")
    assert ok.status_code == 200
    assert (
        await get(projected, f"/v1/regions/{projected.data.kkb}/summary?period=2026-03", region="32")
    ).status_code == 404
    assert (
        await get(projected, "/v1/regions/15/summary?period=2026-03", scopes="uppka:read")
    ).status_code == 403


async def test_small_cells_suppressed_for_public_at_village_level(projected: Projected) -> None:
    r = await get(projected, "/v1/indicators?region=15.71.01&period=2026-03", scopes="reporting:public")
    body = r.json()
    assert body["suppressed"] is True
    v1 = next(row["indicators"] for row in body["rows"] if row["region"] == V1)
    assert v1["pus"] is None and v1["cpr"] is None and v1["families_registered"] is None
    assert v1["kb_users_pil"] == 0  # zero is not a small cell
    district = await summary(projected, "15.71.01", "2026-03", scopes="reporting:public")
    # 3 couples in the district, all in V1: a visible 3 would give V1's hidden cell back, so it is hidden too.
    assert district["pus"] is None
    assert (await summary(projected, "15.71.01", "2026-03"))["pus"] == 3
    full = await get(projected, "/v1/indicators?region=15.71.01&period=2026-03")
    assert next(row["indicators"] for row in full.json()["rows"] if row["region"] == V1)["pus"] == 2


async def test_public_cells_cannot_be_recovered_by_subtraction(projected: Projected) -> None:
    """The audit's attack: a district's public figure minus its other villages, a total minus its parts."""
    period = "2026-03"
    district = await summary(projected, "15.71.01", period, scopes="reporting:public")
    breakdown = await get(
        projected, f"/v1/indicators?region=15.71.01&period={period}", scopes="reporting:public"
    )
    rows = {row["region"]: row["indicators"] for row in breakdown.json()["rows"]}
    truth = {
        row["region"]: row["indicators"]
        for row in (await get(projected, f"/v1/indicators?region=15.71.01&period={period}")).json()["rows"]
    }
    recovered = 0
    for name, total in district.items():
        if not isinstance(total, int) or isinstance(total, bool) or indicator_unit(name) != "count":
            continue
        hidden = [code for code in rows if rows[code].get(name) is None and truth[code].get(name)]
        if len(hidden) == 1:
            derived = total - sum(rows[c].get(name) or 0 for c in rows if c not in hidden)
            recovered += derived == truth[hidden[0]][name]
    assert recovered == 0
    for code, values in rows.items():
        # A village summary asked for on its own shows the same cells as its row in the breakdown.
        assert await summary(projected, code, period, scopes="reporting:public") == values
        for total, parts in disclosure.relations(values):
            hidden = [c for c in (total, *parts) if values[c] is None and truth[code][c]]
            if hidden == [total] and not any(truth[code][p] for p in parts):
                continue  # parts all zero under a non-zero total: the relation is not exact, nothing to solve
            assert len(hidden) != 1, (code, total)


async def test_csv_and_xlsx_exports_equal_the_json(projected: Projected) -> None:
    path = "/v1/indicators?region=15.71&level=village&period=2026-03"
    rows = {row["region"]: row["indicators"] for row in (await get(projected, path)).json()["rows"]}
    r = await get(projected, path + "&format=xlsx")
    assert r.status_code == 200 and r.content[:2] == b"PK"
    book = load_workbook(io.BytesIO(r.content), read_only=True)
    notes = [list(row) for row in book["notes"].iter_rows(values_only=True)]
    # The notes sheet names the column behind each header (headers are labels with units).
    columns = notes[notes.index(["Column", "Header", "Unit", "Definition"]) + 1 :]
    key_of = {header: key for key, header, *_ in columns}
    sheet = [list(row) for row in book["data"].iter_rows(values_only=True)]
    header = [key_of[h] for h in sheet[0]]
    for line in sheet[1:]:
        # Trailing empty cells are not stored in the sheet.
        record = dict(zip(header, line + [None] * (len(header) - len(line)), strict=True))
        assert record["period"] == "2026-03" and record["period_start"].date().isoformat() == "2026-03-01"
        for name, value in rows[record["region"]].items():
            assert record[name] == value, name
    csv = await get(projected, path, accept="text/csv")
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.content.decode("utf-8-sig").splitlines()
    assert len(lines) == len(rows) + 1 and lines[0].startswith(
        "region,region_name,period,families_registered"
    )
    import csv as csvmod

    parsed = list(csvmod.DictReader(lines))
    for rec in parsed:
        # Region codes come as ="15.71..." so spreadsheet programs keep them as text.
        assert rec["region"].startswith('="') and rec["region"].endswith('"')
        rec["region"] = rec["region"][2:-1]
        assert float(rec["pus"]) == rows[rec["region"]]["pus"]
        assert rec["cpr"] == ("" if rows[rec["region"]]["cpr"] is None else str(rows[rec["region"]]["cpr"]))
    indo = await get(projected, path + "&format=csv&lang=id&indicators=pus,cpr")
    assert indo.content.decode("utf-8-sig").splitlines()[0] == (
        "kode_wilayah,nama_wilayah,periode,Pasangan Usia Subur (PUS),Angka prevalensi kontrasepsi (CPR)"
    )
    s = await get(projected, "/v1/regions/15/summary?period=2026-03&format=xlsx&lang=id")
    ws = load_workbook(io.BytesIO(s.content), read_only=True)["data"]
    # One row per indicator: ..., Nama indikator, Satuan, Nilai (an undefined value: trailing cell not stored).
    values = {row[6]: (row[8] if len(row) > 8 else None) for row in ws.iter_rows(min_row=2, values_only=True)}
    assert values["Pasangan Usia Subur (PUS)"] == 4 and values["Angka prevalensi kontrasepsi (CPR)"] == 0.75


async def test_charts_are_real_images(projected: Projected) -> None:
    png = await get(
        projected, "/v1/indicators/stunting_prevalence/series?region=15.71&from=2026-01&to=2026-03&format=png"
    )
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image as mpimg

    image = mpimg.imread(io.BytesIO(png.content), format="png")
    assert image.shape[0] > 100 and image.shape[1] > 100
    svg = await get(
        projected,
        f"/v1/indicators?region={projected.data.kitchen}&level=kitchen&period=2026-03",
        accept="image/svg+xml",
    )
    assert svg.status_code == 422  # a chart needs one indicator
    svg = await get(
        projected,
        "/v1/indicators?region=15.71&level=village&period=2026-03&indicators=dashat_beneficiaries",
        accept="image/svg+xml",
    )
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert ET.fromstring(svg.content).tag.endswith("svg")  # noqa: S314 (our own output)


async def test_a_family_joining_a_kampung_kb_brings_its_people(projected: Projected) -> None:
    p, i = projected, projected.data.id
    k2 = uuid.uuid4()
    event = re.FamilyUpdated(family_id=i["F5"], village_code=V4, kampung_kb_id=k2)
    await produce(
        p.settings, [build_envelope(event, key=str(i["F5"]), time=datetime(2026, 3, 1, tzinfo=UTC))]
    )
    await project(p.settings, p.engine, 1)
    k = await summary(p, f"kkb:{k2}", "2026-03")
    # F5's wife P5 (PUS, not using KB: TIAL) and the family now count in the new Kampung KB as well.
    assert (k["families_registered"], k["pus"], k["non_users_tial"], k["unmet_need"]) == (1, 1, 1, 1.0)
    assert (await summary(p, "ID", "2026-03"))["families_registered"] == 5


async def test_rebuild_equals_incremental(projected: Projected) -> None:
    before = await fact_snapshot(projected.engine)
    report = await rebuild(projected.settings, timeout=60)
    assert report.events_applied == len(projected.data.envelopes) + 1 and report.duplicates == len(
        projected.data.duplicates
    )
    after = await fact_snapshot(projected.engine)
    assert after == before and len(after) > 100
    async with projected.engine.connect() as conn:
        schemas = (
            await conn.execute(text("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'reporting_%'"))
        ).scalar_one()
    assert schemas == 0
    assert (await summary(projected, "ID", "2026-03"))["cpr"] == 0.6
