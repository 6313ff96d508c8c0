"""Exports and charts as an analyst opens them: openpyxl and pandas read the files back, the SVG is parsed."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime

import pandas as pd
from openpyxl import load_workbook
from reporting.indicators import render

AS_OF = datetime(2026, 12, 1, 3, 4, 5, tzinfo=UTC)
BREAKDOWN: render.Table = (
    ["region", "region_name", "period", "pus", "cpr", "uppka_omzet", "cpr_denominator"],
    [
        ["32.10", "Kab. Majalengka", "2026-03", 1200, 0.603, 15_000_000, 1200],
        ["32.11", "=Kab. Sumedang", "2026-03", 0, None, 0, 0],
    ],
)
SUMMARY: render.Table = (
    ["region", "region_name", "period", "indicator", "indicator_label", "unit", "value"],
    [
        ["15", "Jambi", "2026-Q1", "pus", "Pasangan Usia Subur (PUS)", "jumlah", 4],
        ["15", "Jambi", "2026-Q1", "cpr", "Angka prevalensi kontrasepsi (CPR)", "persen", 0.75],
        ["15", "Jambi", "2026-Q1", "uppka_omzet", "Omzet UPPKA", "rupiah", 2_500_000],
    ],
)


def export(lang: str = "en", period: str = "2026-03", public: bool = False) -> render.Export:
    return render.Export(
        title="Indicators by region — Jawa Barat (32), 2026-03",
        region="32",
        region_name="Jawa Barat",
        period=period,
        lang=lang,
        as_of=AS_OF,
        public=public,
    )


def sheets(body: bytes) -> dict[str, list[list[object]]]:
    wb = load_workbook(io.BytesIO(body))
    return {ws.title: [[c.value for c in row] for row in ws.iter_rows()] for ws in wb.worksheets}


def test_xlsx_cells_are_typed_and_formatted() -> None:
    wb = load_workbook(io.BytesIO(render.to_xlsx(BREAKDOWN, export())))
    ws = wb["data"]
    header = [c.value for c in ws[1]]
    assert header[:5] == [
        "Region code (Kemendagri)",
        "Region name",
        "Period",
        "Period start",
        "Period end",
    ]
    assert header[5:] == [
        render.column_header("pus", "en"),
        "Contraceptive prevalence rate (CPR) (%)",
        render.column_header("uppka_omzet", "en"),
        "Contraceptive prevalence rate (CPR) (denominator)",
    ]
    assert header[7].endswith("(Rp)")
    first = {h: c for h, c in zip(header, ws[2], strict=True)}
    assert first["Region code (Kemendagri)"].value == "32.10"
    assert first["Region code (Kemendagri)"].data_type == "s"
    assert first["Period start"].value.date() == date(2026, 3, 1)
    assert first["Period end"].value.date() == date(2026, 3, 31)
    assert first["Period start"].is_date
    cpr = first["Contraceptive prevalence rate (CPR) (%)"]
    assert cpr.value == 0.603 and cpr.number_format == "0.0%"
    assert first[header[7]].number_format == '"Rp" #,##0'
    assert first[header[5]].number_format == "#,##0"
    assert first[header[8]].number_format == "#,##0"  # a ratio's denominator counts cases
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == "A1:I3"
    second = {h: c.value for h, c in zip(header, ws[3], strict=True)}
    assert second["Contraceptive prevalence rate (CPR) (%)"] is None  # undefined stays empty, never 0
    assert second["Region name"] == "=Kab. Sumedang"  # a string cell, not a formula
    assert ws["B3"].data_type == "s"


def test_xlsx_notes_sheet_says_what_the_file_holds() -> None:
    notes = sheets(render.to_xlsx(BREAKDOWN, export(public=True)))["notes"]
    items = {row[0]: row[1] for row in notes if row and row[0]}
    assert items["Region"] == "32 Jawa Barat"
    assert items["Period"] == "2026-03"
    assert items["Figures as of (UTC)"] == "2026-12-01 03:04:05"
    assert "BKKBN" in items["Source"]
    assert "1 to 4" in items["Suppression rule"] and "25" in items["Suppression rule"]
    assert items["Suppression applied"] == "yes"
    columns = {row[0]: row for row in notes[notes.index(["Column", "Header", "Unit", "Definition"]) + 1 :]}
    assert columns["cpr"][1:3] == ["Contraceptive prevalence rate (CPR) (%)", "percent"]
    assert columns["cpr"][3].startswith("cpr = kb_users / pus")
    assert columns["uppka_omzet"][2] == "rupiah"
    assert columns["region"][2] in ("", None)


def test_xlsx_in_indonesian_and_long_tables_carry_the_unit_per_row() -> None:
    wb = load_workbook(io.BytesIO(render.to_xlsx(SUMMARY, export(lang="id", period="2026-Q1"))))
    assert wb.sheetnames == ["data", "catatan"]
    ws = wb["data"]
    header = [c.value for c in ws[1]]
    assert header == [
        "Kode wilayah (Kemendagri)",
        "Nama wilayah",
        "Periode",
        "Awal periode",
        "Akhir periode",
        "Indikator",
        "Nama indikator",
        "Satuan",
        "Nilai",
    ]
    formats = {ws.cell(r, 6).value: ws.cell(r, 9).number_format for r in range(2, 5)}
    assert formats == {"pus": "#,##0", "cpr": "0.0%", "uppka_omzet": '"Rp" #,##0'}
    assert ws.cell(2, 4).value.date() == date(2026, 1, 1) and ws.cell(2, 5).value.date() == date(2026, 3, 31)
    frame = pd.read_excel(io.BytesIO(render.to_xlsx(SUMMARY, export())), sheet_name="data", dtype={0: str})
    assert frame["Value"].tolist() == [4, 0.75, 2_500_000]
    assert frame["Unit"].tolist() == ["jumlah", "persen", "rupiah"]


def test_csv_keeps_region_codes_as_text_and_defuses_formulas() -> None:
    body = render.to_csv(BREAKDOWN, "en")
    frame = pd.read_csv(io.BytesIO(body), encoding="utf-8-sig")
    # pandas' default reader: the code is not turned into the number 32.1.
    assert frame["region"].dtype != float
    codes = [str(v) for v in frame["region"]]
    assert codes == ['="32.10"', '="32.11"']
    assert frame["region_name"].tolist() == ["Kab. Majalengka", "'=Kab. Sumedang"]
    assert frame["cpr"].tolist()[0] == 0.603 and pd.isna(frame["cpr"].tolist()[1])
    assert frame["pus"].tolist() == [1200, 0]


def svg_of(chart: render.Chart, kind: str = "bar") -> ET.Element:
    body = (render.bar_chart if kind == "bar" else render.line_chart)(chart, "svg")
    return ET.fromstring(body)  # noqa: S314 (our own output)


def texts(root: ET.Element) -> list[str]:
    return ["".join(e.itertext()) for e in root.iter() if e.tag.endswith("}text")]


def test_bar_chart_svg_is_readable_text_with_title_axes_legend_and_source() -> None:
    chart = render.Chart(
        indicator="cpr",
        title="Contraceptive prevalence rate (CPR) — Indonesia (ID), 2026-12",
        labels=["Jambi", "Jawa Barat", "Bali"],
        values=[0.5, None, 0.0],
        lang="en",
        as_of=AS_OF,
        x_axis="region_axis",
    )
    root = svg_of(chart)
    title = root.find("{http://www.w3.org/2000/svg}title")
    assert title is not None and title.text == chart.title
    desc = root.find("{http://www.w3.org/2000/svg}desc")
    assert desc is not None and "Jawa Barat: n/a" in (desc.text or "") and "Bali: 0.0%" in (desc.text or "")
    words = " ".join(texts(root))
    assert chart.title in words
    assert "Region" in words and "Contraceptive prevalence rate (CPR) (percent)" in words
    assert "n/a" in words  # the missing bar is marked, not drawn as 0
    assert "50.0%" in words and "0.0%" in words  # each bar says its value: 0 is 0, apart from n/a
    assert "no value (undefined or suppressed)" in words  # legend
    assert "Source: Kencana (BKKBN). Figures as of 2026-12-01 03:04:05 UTC." in words
    assert "cpr —" not in words


def test_line_chart_in_indonesian_and_a_single_point_starts_at_zero() -> None:
    chart = render.Chart(
        indicator="stunting_prevalence",
        title="Prevalensi stunting — Jambi (15), 2026-03 – 2026-03",
        labels=["2026-03"],
        values=[0.0],
        lang="id",
        as_of=None,
        x_axis="period_axis",
    )
    words = " ".join(texts(svg_of(chart, "line")))
    assert "Periode" in words and "Sumber: Kencana (BKKBN)" in words
    assert "belum ada peristiwa yang diterapkan" in words  # no as-of time yet: said, not a dash
    assert "−0.04" not in words and "-0.04" not in words
    assert "0%" in words
