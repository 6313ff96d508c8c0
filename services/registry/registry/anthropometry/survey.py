"""Score a WHO Anthro survey CSV: the input columns plus z-scores, flags, classes and a per-row error."""

from __future__ import annotations

import csv
import math
from datetime import date
from pathlib import Path
from typing import Final

import numpy as np

from registry.anthropometry.domain import age_in_days, parse_measure, parse_oedema, parse_sex, score

__all__ = ["OUTPUT_COLUMNS", "score_csv"]

OUTPUT_COLUMNS: Final = (
    "zlen",
    "flen",
    "zwei",
    "fwei",
    "zwfl",
    "fwfl",
    "c9mo_flag",
    "haz_class",
    "waz_class",
    "whz_class",
    "error",
)


class _RowError(ValueError):
    pass


def _number(row: dict[str, str], col: str) -> float:
    text = (row.get(col) or "").strip().replace(",", ".")
    if text == "":
        return math.nan
    try:
        value = float(text)
    except ValueError:
        raise _RowError(f"{col}: not a number: {text!r}") from None
    if not math.isfinite(value):
        raise _RowError(f"{col}: not a finite number")
    return value


def _iso_date(row: dict[str, str], col: str) -> date | None:
    text = (row.get(col) or "").strip()
    if text == "":
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise _RowError(f"{col}: not an ISO date (YYYY-MM-DD): {text!r}") from None


def _parse_row(row: dict[str, str]) -> tuple[int, float, float, float, str, bool]:
    sex_text = (row.get("sex") or "").strip()
    sex = parse_sex(sex_text)
    if sex is None:
        raise _RowError(f"sex: expected 1/2, L/P or m/f, got {sex_text!r}")
    age = _number(row, "age_days")
    if math.isnan(age):
        dob = _iso_date(row, "dob")
        measured = _iso_date(row, "date_of_measurement")
        if dob is not None and measured is not None:
            age = float(age_in_days(dob, measured))
    weight = _number(row, "weight")
    lenhei = _number(row, "lenhei")
    measure_text = (row.get("measure") or "").strip()
    measure = parse_measure(measure_text)
    if measure_text and measure is None:
        raise _RowError(f"measure: expected l or h, got {measure_text!r}")
    if measure is None and not math.isnan(lenhei):
        raise _RowError("measure: required (l or h) when lenhei is given")
    oedema = parse_oedema(row.get("oedema"))
    if oedema is None:
        raise _RowError(f"oedema: expected y/n, got {(row.get('oedema') or '').strip()!r}")
    return sex, age, weight, lenhei, measure or "", oedema


def _z(value: np.float64) -> str:
    return "" if np.isnan(value) else f"{float(value):.2f}"


def _sniff_delimiter(header: str) -> str:
    for delimiter in (",", ";", "\t"):
        if delimiter in header:
            return delimiter
    return ","


def score_csv(in_path: str | Path, out_path: str | Path) -> int:
    """Score every row of ``in_path`` and write ``out_path``; return the number of rows with an error.

    Input columns: ``sex`` (1/2, L/P, m/f), ``age_days`` or ``dob`` + ``date_of_measurement`` (ISO dates),
    ``weight`` (kg), ``lenhei`` (cm), ``measure`` (l/h), optional ``oedema`` (y/n). A row that cannot be
    parsed gets empty outputs and a message in ``error``; it never stops the file.
    """
    with Path(in_path).open(newline="", encoding="utf-8-sig") as f:
        first = f.readline()
        f.seek(0)
        reader = csv.DictReader(f, delimiter=_sniff_delimiter(first))
        in_columns = list(reader.fieldnames or [])
        rows = list(reader)

    n = len(rows)
    sex = np.zeros(n, dtype=np.int64)
    age = np.full(n, np.nan)
    weight = np.full(n, np.nan)
    lenhei = np.full(n, np.nan)
    measure = np.full(n, "", dtype="<U1")
    oedema = np.zeros(n, dtype=np.bool_)
    errors: list[str] = [""] * n
    for i, row in enumerate(rows):
        try:
            sex[i], age[i], weight[i], lenhei[i], measure[i], oedema[i] = _parse_row(row)
        except _RowError as exc:
            errors[i] = str(exc)

    result = score(sex, age, weight, lenhei, measure, oedema)
    columns = in_columns + [c for c in OUTPUT_COLUMNS if c not in in_columns]
    with Path(out_path).open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for i, row in enumerate(rows):
            out = {k: (v if isinstance(v, str) else "") for k, v in row.items() if k is not None}
            if errors[i]:
                out.update(dict.fromkeys(OUTPUT_COLUMNS, ""))
                out["error"] = errors[i]
            else:
                zlen, zwei, zwfl = result.zlen[i], result.zwei[i], result.zwfl[i]
                out.update(
                    zlen=_z(zlen),
                    flen="" if np.isnan(zlen) else str(int(result.flen[i])),
                    zwei=_z(zwei),
                    fwei="" if np.isnan(zwei) else str(int(result.fwei[i])),
                    zwfl=_z(zwfl),
                    fwfl="" if np.isnan(zwfl) else str(int(result.fwfl[i])),
                    c9mo_flag=str(int(result.c9mo_flag[i])),
                    haz_class=result.haz_class[i] or "",
                    waz_class=result.waz_class[i] or "",
                    whz_class=result.whz_class[i] or "",
                    error="",
                )
            writer.writerow(out)
    return sum(1 for e in errors if e)
