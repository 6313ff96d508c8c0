"""Indicator tables as CSV and XLSX, and charts as PNG and SVG (rendered server-side, no display)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before any other matplotlib import: a server has no display

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from openpyxl import Workbook

from reporting.indicators import domain

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


def labelled(columns: Sequence[str], lang: str) -> list[str]:
    return [domain.label(c, lang) for c in columns]


def to_csv(table: Table, lang: str) -> bytes:
    columns, rows = table
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(labelled(columns, lang))
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    # BOM so spreadsheet programs detect UTF-8 (region names carry non-ASCII letters).
    return ("\ufeff" + buf.getvalue()).encode()


def to_xlsx(table: Table, lang: str, title: str) -> bytes:
    columns, rows = table
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=title[:31] or "indikator")
    ws.append(labelled(columns, lang))
    for row in rows:
        ws.append(list(row))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _figure(title: str) -> tuple[Figure, Any]:
    fig = Figure(figsize=(8, 4.5), dpi=100)
    ax = fig.add_subplot()
    ax.set_title(title)
    return fig, ax


def _encode(fig: Figure, fmt: str) -> bytes:
    buf = io.BytesIO()
    canvas = FigureCanvasSVG(fig) if fmt == "svg" else FigureCanvasAgg(fig)
    fig.tight_layout()
    canvas.print_figure(buf, format=fmt)
    return buf.getvalue()


def line_chart(title: str, labels: list[str], values: list[float | None], fmt: str) -> bytes:
    """A time series (gaps where a value is undefined or suppressed)."""
    fig, ax = _figure(title)
    ys = [float("nan") if v is None else float(v) for v in values]
    ax.plot(range(len(labels)), ys, marker="o")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.grid(True, alpha=0.3)
    return _encode(fig, fmt)


def bar_chart(title: str, labels: list[str], values: list[float | None], fmt: str) -> bytes:
    """A breakdown over regions (suppressed or undefined values drawn as 0 and marked)."""
    fig, ax = _figure(title)
    ys = [0.0 if v is None else float(v) for v in values]
    bars = ax.bar(range(len(labels)), ys)
    for bar, v in zip(bars, values, strict=True):
        if v is None:
            bar.set_hatch("//")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    return _encode(fig, fmt)
