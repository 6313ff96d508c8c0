"""Indicator tables as CSV and XLSX, and charts as PNG and SVG (rendered server-side, no display).

Every file says what it holds without the request beside it: the region (code and name), the period, the unit of
each figure, when the figures stood (as of), the source and the suppression rule. Numbers stay numbers (a ratio is
0.603 shown as 60.3 %), region codes stay text, periods are dates where a spreadsheet expects them.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal
from xml.sax.saxutils import escape

import matplotlib

matplotlib.use("Agg")  # before any other matplotlib import: a server has no display

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, PercentFormatter
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from reporting.indicators import domain
from shared.clock import now_utc
from shared.errors import ValidationFailed

MEDIA_TYPES = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "png": "image/png",
    "svg": "image/svg+xml",
}
_ACCEPT = {
    "text/csv": "csv",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "image/png": "png",
    "image/svg+xml": "svg",
    "application/json": "json",
}

Lang = Literal["en", "id"]


def negotiate(fmt: str | None, accept: str | None) -> str | None:
    """The output format from `format=` (wins) or the Accept header; None = unknown `format=` value."""
    if fmt:
        return fmt if fmt in MEDIA_TYPES else None
    for part in (accept or "").split(","):
        media = part.split(";")[0].strip().lower()
        if media in _ACCEPT:
            return _ACCEPT[media]
    return "json"


Table = tuple[list[str], list[list[Any]]]

# Columns that are not indicator values.
REGION, REGION_NAME, PERIOD, INDICATOR, UNIT, VALUE = (
    "region",
    "region_name",
    "period",
    "indicator",
    "unit",
    "value",
)
PERIOD_START, PERIOD_END = "period_start", "period_end"
_TEXT_COLUMNS = {REGION, REGION_NAME, PERIOD, INDICATOR, UNIT, "indicator_label"}

_COLUMN_LABELS: dict[str, tuple[str, str]] = {
    REGION: ("Region code (Kemendagri)", "Kode wilayah (Kemendagri)"),
    REGION_NAME: ("Region name", "Nama wilayah"),
    PERIOD: ("Period", "Periode"),
    PERIOD_START: ("Period start", "Awal periode"),
    PERIOD_END: ("Period end", "Akhir periode"),
    INDICATOR: ("Indicator", "Indikator"),
    "indicator_label": ("Indicator name", "Nama indikator"),
    UNIT: ("Unit", "Satuan"),
    VALUE: ("Value", "Nilai"),
}
_UNIT_NAMES: dict[domain.Unit, tuple[str, str]] = {
    "count": ("count", "jumlah"),
    "ratio": ("percent", "persen"),
    "rupiah": ("rupiah", "rupiah"),
    "days": ("days", "hari"),
    "z": ("z-score", "skor-z"),
}
_UNIT_SYMBOLS: dict[domain.Unit, tuple[str, str]] = {
    "count": ("", ""),
    "ratio": ("%", "%"),
    "rupiah": ("Rp", "Rp"),
    "days": ("days", "hari"),
    "z": ("z", "z"),
}
# Excel number formats: ratios are stored as fractions and shown as percent; money without decimals.
_NUMBER_FORMATS: dict[domain.Unit, str] = {
    "count": "#,##0",
    "ratio": "0.0%",
    "rupiah": '"Rp" #,##0',
    "days": "#,##0.0",
    "z": "0.00",
}

_TEXTS: dict[str, tuple[str, str]] = {
    "notes": ("notes", "catatan"),
    "data": ("data", "data"),
    "title": ("Title", "Judul"),
    "as_of": ("Figures as of (UTC)", "Angka per (UTC)"),
    "generated": ("File generated (UTC)", "Berkas dibuat (UTC)"),
    "source": ("Source", "Sumber"),
    "source_text": (
        "Kencana (BKKBN): events of the family registry (Pendataan Keluarga, KB, growth monitoring), UPPKA groups "
        "and DASHAT kitchens, projected per region.",
        "Kencana (BKKBN): peristiwa pendataan keluarga (PK, KB, pemantauan pertumbuhan), kelompok UPPKA dan "
        "dapur DASHAT, diproyeksikan per wilayah.",
    ),
    "suppression": ("Suppression rule", "Aturan penyembunyian"),
    "suppression_text": (
        f"Public files (scope reporting:public): counts of 1 to {domain.PUBLIC_MIN_COUNT - 1} at village level and "
        "below are left empty, and so are the cells that would reveal them (complementary suppression). "
        f"A ratio on fewer than {domain.SMALL_N} cases (its denominator) is too few to read as a rate (DHS rule).",
        f"Berkas publik (cakupan reporting:public): jumlah 1 sampai {domain.PUBLIC_MIN_COUNT - 1} di tingkat desa "
        "ke bawah dikosongkan, begitu pula sel yang dapat mengungkapnya (penyembunyian komplementer). "
        f"Rasio dengan kurang dari {domain.SMALL_N} kasus (penyebutnya) terlalu sedikit untuk dibaca sebagai "
        "angka (aturan DHS).",
    ),
    "empty": ("Empty cell", "Sel kosong"),
    "empty_text": (
        "No value: a ratio without cases in its denominator, a figure not defined for the region, or a suppressed "
        "cell. Zero is written as 0.",
        "Tidak ada nilai: rasio tanpa kasus pada penyebutnya, angka yang tidak berlaku untuk wilayah itu, atau sel "
        "yang disembunyikan. Nol ditulis 0.",
    ),
    "public": ("Suppression applied", "Penyembunyian diterapkan"),
    "yes": ("yes", "ya"),
    "no": ("no", "tidak"),
    "column": ("Column", "Kolom"),
    "label": ("Header", "Judul kolom"),
    "definition": ("Definition", "Definisi"),
    "region_axis": ("Region", "Wilayah"),
    "period_axis": ("Period", "Periode"),
    "no_value": ("no value (undefined or suppressed)", "tidak ada nilai (tidak berlaku atau disembunyikan)"),
    "no_value_short": ("n/a", "t.a."),
    "no_events": ("(no event applied yet)", "(belum ada peristiwa yang diterapkan)"),
    "source_line": (
        "Source: Kencana (BKKBN). Figures as of {as_of}.",
        "Sumber: Kencana (BKKBN). Angka per {as_of}.",
    ),
}


def text(key: str, lang: str) -> str:
    en, id_ = _TEXTS[key]
    return id_ if lang == "id" else en


@dataclass(frozen=True)
class Export:
    """What a file says about itself, beside its table."""

    title: str
    region: str
    region_name: str | None
    period: str
    lang: str
    as_of: datetime | None
    public: bool
    generated_at: datetime = field(default_factory=now_utc)


def indicator_label(name: str, lang: str) -> str:
    """The human name of an indicator or of a ratio's numerator/denominator column, in the language asked."""
    if lang == "id":
        return domain.label(name, "id")
    ind = domain.BY_NAME.get(name)
    if ind is not None:
        return ind.label_en
    if name.startswith("krs_reason_"):
        return f"KRS reason: {name.removeprefix('krs_reason_')}"
    for suffix, word in ((domain.NUMERATOR, "numerator"), (domain.DENOMINATOR, "denominator")):
        if name.endswith(suffix) and name.removesuffix(suffix) in domain.BY_NAME:
            return f"{domain.BY_NAME[name.removesuffix(suffix)].label_en} ({word})"
    return name


def unit_name(unit: domain.Unit, lang: str) -> str:
    en, id_ = _UNIT_NAMES[unit]
    return id_ if lang == "id" else en


def column_unit(name: str) -> domain.Unit:
    # A ratio's numerator and denominator are counts of cases, not ratios.
    if name.endswith((domain.NUMERATOR, domain.DENOMINATOR)):
        return "count"
    return domain.unit_of(name)


def column_header(name: str, lang: str) -> str:
    """A column's header for people: its label, and the unit where the column holds figures."""
    if name in _COLUMN_LABELS:
        en, id_ = _COLUMN_LABELS[name]
        return id_ if lang == "id" else en
    unit = column_unit(name)
    symbol = _UNIT_SYMBOLS[unit][1 if lang == "id" else 0]
    label = indicator_label(name, lang)
    return f"{label} ({symbol})" if symbol else label


def labelled(columns: Sequence[str], lang: str) -> list[str]:
    """CSV headers: the machine names in English (stable for scripts), Indonesian labels with lang=id."""
    return [domain.label(c, lang) for c in columns]


# A Kemendagri code such as 32.10 reads as the number 32.1 in spreadsheet programs and pandas' default reader,
# and a text cell that starts with = + - @ runs as a formula (CSV injection). The `="…"` form keeps a code as text
# in Excel, LibreOffice and Google Sheets; other text that could start a formula gets a leading apostrophe.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMERIC_LIKE = re.compile(r"^[\d.]+$")


def _csv_text(column: str, value: str) -> str:
    if column == REGION and _NUMERIC_LIKE.match(value):
        return f'="{value}"'
    if value.startswith(_FORMULA_START):
        return "'" + value
    return value


def to_csv(table: Table, lang: str) -> bytes:
    columns, rows = table
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(labelled(columns, lang))
    for row in rows:
        writer.writerow(
            [
                "" if v is None else _csv_text(c, v) if isinstance(v, str) else v
                for c, v in zip(columns, row, strict=True)
            ]
        )
    # BOM so spreadsheet programs detect UTF-8 (region names carry non-ASCII letters).
    return ("\ufeff" + buf.getvalue()).encode()


def _utc(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _period_dates(label: Any) -> tuple[date, date] | None:
    if not isinstance(label, str):
        return None
    try:
        period = domain.parse_period(label)
    except ValidationFailed:
        return None
    return period.start, period.end_day


def _data_sheet(ws: Worksheet, table: Table, lang: str) -> list[str]:
    """Writes the table: typed cells, number formats per unit, period dates, frozen header, autofilter."""
    columns, rows = table
    # Period labels gain their first and last day as dates beside them (spreadsheets filter and sort on dates).
    out_columns: list[str] = []
    for c in columns:
        out_columns.append(c)
        if c == PERIOD:
            out_columns += [PERIOD_START, PERIOD_END]
    ws.append([column_header(c, lang) for c in out_columns])
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    unit_column = columns.index(UNIT) if UNIT in columns else None
    for row in rows:
        values: list[Any] = []
        formats: list[str | None] = []
        for c, v in zip(columns, row, strict=True):
            if c == PERIOD:
                dates = _period_dates(v)
                values += [v, *(dates or (None, None))]
                formats += ["@", "yyyy-mm-dd", "yyyy-mm-dd"]
                continue
            values.append(v)
            if c in _TEXT_COLUMNS:
                formats.append("@")
            elif c == VALUE and unit_column is not None:
                formats.append(_NUMBER_FORMATS.get(_unit_key(row[unit_column]), "General"))
            else:
                formats.append(_NUMBER_FORMATS[column_unit(c)])
        ws.append(values)
        for cell, number_format in zip(ws[ws.max_row], formats, strict=True):
            if number_format == "@" and isinstance(cell.value, str):
                cell.data_type = "s"  # text that starts with = is text here, never a formula
            if number_format and cell.value is not None:
                cell.number_format = number_format
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(out_columns))}{max(ws.max_row, 1)}"
    for i, c in enumerate(out_columns, start=1):
        width = 14 if c not in (REGION_NAME, "indicator_label") else 28
        ws.column_dimensions[get_column_letter(i)].width = width
    return out_columns


_UNIT_BY_NAME = {name: unit for unit, names in _UNIT_NAMES.items() for name in names}


def _unit_key(unit_text: Any) -> domain.Unit:
    return _UNIT_BY_NAME.get(str(unit_text), "count")


def _notes_sheet(ws: Worksheet, export: Export, columns: list[str]) -> None:
    lang = export.lang
    region = f"{export.region} {export.region_name or ''}".strip()
    for key, value in (
        ("title", export.title),
        ("region_axis", region),
        ("period_axis", export.period),
        ("as_of", _utc(export.as_of)),
        ("generated", _utc(export.generated_at)),
        ("source", text("source_text", lang)),
        ("suppression", text("suppression_text", lang)),
        ("public", text("yes" if export.public else "no", lang)),
        ("empty", text("empty_text", lang)),
    ):
        ws.append([text(key, lang), value])
    ws.append([])
    ws.append(
        [
            text("column", lang),
            text("label", lang),
            _COLUMN_LABELS[UNIT][1 if lang == "id" else 0],
            text("definition", lang),
        ]
    )
    for cell in ws[ws.max_row]:
        cell.font = Font(bold=True)
    for c in columns:
        ind = domain.BY_NAME.get(c)
        unit = (
            "" if c in _TEXT_COLUMNS or c in (PERIOD_START, PERIOD_END) else unit_name(column_unit(c), lang)
        )
        ws.append([c, column_header(c, lang), unit, ind.definition if ind is not None else ""])
    ws.column_dimensions["A"].width = 28
    ws.column_dimensions["B"].width = 48
    ws.column_dimensions["C"].width = 12
    ws.column_dimensions["D"].width = 100
    for row in ws.iter_rows():
        for cell in row:
            cell.alignment = Alignment(wrap_text=True, vertical="top")


def to_xlsx(table: Table, export: Export) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = text("data", export.lang)
    columns = _data_sheet(ws, table, export.lang)
    # A long table (one row per indicator) defines each indicator of its rows in the notes too.
    indicators = [r[table[0].index(INDICATOR)] for r in table[1]] if INDICATOR in table[0] else []
    _notes_sheet(wb.create_sheet(text("notes", export.lang)), export, [*columns, *indicators])
    wb.properties.title = export.title
    wb.properties.creator = "Kencana (BKKBN)"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


# ---- charts ----


@dataclass(frozen=True)
class Chart:
    """One indicator drawn over regions (bars) or over periods (a line), with what a reader needs beside it."""

    indicator: str
    title: str
    labels: list[str]
    values: list[float | None]
    lang: str
    as_of: datetime | None
    x_axis: Literal["region_axis", "period_axis"]

    @property
    def unit(self) -> domain.Unit:
        return column_unit(self.indicator)

    @property
    def y_label(self) -> str:
        return f"{indicator_label(self.indicator, self.lang)} ({unit_name(self.unit, self.lang)})"

    @property
    def source_line(self) -> str:
        as_of = _utc(self.as_of) + " UTC" if self.as_of is not None else text("no_events", self.lang)
        return text("source_line", self.lang).format(as_of=as_of)

    @property
    def description(self) -> str:
        missing = text("no_value_short", self.lang)
        points = "; ".join(
            f"{label}: {missing if v is None else _format_value(v, self.unit)}"
            for label, v in zip(self.labels, self.values, strict=True)
        )
        return f"{self.title}. {self.y_label}. {points}. {self.source_line}"


def _format_value(v: float, unit: domain.Unit) -> str:
    if unit == "ratio":
        return f"{v * 100:.1f}%"
    if unit == "rupiah":
        return f"Rp {v:,.0f}"
    if unit == "count":
        return f"{v:,.0f}"
    return f"{v:.2f}"


def _figure(chart: Chart) -> tuple[Figure, Any]:
    fig = Figure(figsize=(8, 4.8), dpi=100)
    ax = fig.add_subplot()
    ax.set_title(chart.title, loc="left", fontsize=11)
    ax.set_xlabel(text(chart.x_axis, chart.lang))
    ax.set_ylabel(chart.y_label)
    if chart.unit == "ratio":
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    elif chart.unit in ("count", "rupiah"):
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}"))
    defined = [v for v in chart.values if v is not None]
    # A flat or single-point series would otherwise get an axis around 0 (−0.04…0.04): figures here are not
    # negative (z-scores aside), so the axis starts at 0 and leaves room above the largest value.
    if chart.unit != "z":
        top = max(defined, default=0.0)
        ax.set_ylim(0, top * 1.15 if top > 0 else 1.0)
    fig.text(0.01, 0.01, chart.source_line, fontsize=8, color="#555555")
    return fig, ax


def _no_value_marks(ax: Any, chart: Chart, xs: Sequence[float]) -> bool:
    """Marks a missing value where its bar or point would be, so it never looks like 0."""
    marked = False
    for x, v in zip(xs, chart.values, strict=True):
        if v is None:
            ax.annotate(
                text("no_value_short", chart.lang),
                (x, 0),
                xytext=(0, 4),
                textcoords="offset points",
                ha="center",
                fontsize=8,
                color="#a00000",
            )
            marked = True
    return marked


def _encode(fig: Figure, chart: Chart, fmt: str) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    if fmt == "svg":
        # Text as <text> elements (searchable, read by screen readers), not glyph outlines.
        with matplotlib.rc_context({"svg.fonttype": "none"}):
            FigureCanvasSVG(fig).print_figure(buf, format="svg", metadata={"Title": chart.title})
        return _with_svg_title(buf.getvalue(), chart)
    FigureCanvasAgg(fig).print_figure(
        buf, format="png", metadata={"Title": chart.title, "Description": chart.description}
    )
    return buf.getvalue()


_SVG_OPEN = re.compile(rb"<svg\b[^>]*>")


def _with_svg_title(svg: bytes, chart: Chart) -> bytes:
    """The accessible name and description of the image: <title> and <desc> first inside <svg>, role img."""
    match = _SVG_OPEN.search(svg)
    if match is None:
        return svg
    head = match.group(0)[:-1] + b' role="img" aria-labelledby="chart-title chart-desc">'
    inner = (
        f'<title id="chart-title">{escape(chart.title)}</title>'
        f'<desc id="chart-desc">{escape(chart.description)}</desc>'
    ).encode()
    return svg[: match.start()] + head + inner + svg[match.end() :]


def line_chart(chart: Chart, fmt: str) -> bytes:
    """A time series (gaps where a value is undefined or suppressed, each marked)."""
    fig, ax = _figure(chart)
    xs = list(range(len(chart.labels)))
    ys = [float("nan") if v is None else float(v) for v in chart.values]
    ax.plot(xs, ys, marker="o", label=indicator_label(chart.indicator, chart.lang))
    ax.set_xticks(xs, chart.labels, rotation=45, ha="right")
    ax.grid(True, alpha=0.3)
    handles, _ = ax.get_legend_handles_labels()
    if _no_value_marks(ax, chart, xs):
        handles.append(Patch(facecolor="none", edgecolor="#a00000", label=text("no_value", chart.lang)))
    ax.legend(handles=handles, loc="best", fontsize=8)
    return _encode(fig, chart, fmt)


def bar_chart(chart: Chart, fmt: str) -> bytes:
    """A breakdown over regions (an undefined or suppressed value has no bar and is marked n/a)."""
    fig, ax = _figure(chart)
    xs = list(range(len(chart.labels)))
    ys = [0.0 if v is None else float(v) for v in chart.values]
    bars = ax.bar(xs, ys, label=indicator_label(chart.indicator, chart.lang))
    for bar, v in zip(bars, chart.values, strict=True):
        if v is None:
            bar.set_visible(False)
    # Each bar says its value, so a 0 reads as 0 and stands apart from a missing value (n/a).
    ax.bar_label(
        bars,
        labels=["" if v is None else _format_value(v, chart.unit) for v in chart.values],
        fontsize=8,
        padding=2,
    )
    ax.set_xticks(xs, chart.labels, rotation=45, ha="right")
    handles: list[Any] = [
        Patch(
            facecolor=bars.patches[0].get_facecolor() if bars.patches else "C0",
            label=indicator_label(chart.indicator, chart.lang),
        )
    ]
    if _no_value_marks(ax, chart, xs):
        handles.append(Patch(facecolor="none", edgecolor="#a00000", label=text("no_value", chart.lang)))
    ax.legend(handles=handles, loc="best", fontsize=8)
    return _encode(fig, chart, fmt)
