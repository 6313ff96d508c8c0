"""WHO 2006 Child Growth Standards z-scores (HAZ, WAZ, WHZ), vectorised, following WHO's reference rules.

Rules as in docs `anthropometry.md` (WHO Anthro / the `anthro` R package): age in integer days (round
half up), scored while 0 <= days and days / 30.4375 < 60; +0.7 cm for standing under 731 days, -0.7 cm for
lying from 731 days; standing under 9 months is flagged (``c9mo_flag``) and left uncorrected; HAZ plain LMS at
the integer day, WAZ and WHZ LMS with WHO's restricted rule beyond +/-3 SD; WHZ interpolated between 0.1 cm
rows with the row found in integer millimetres; z rounded to 2 decimals, then flagged and classified on the
rounded value; oedema nulls WAZ and WHZ. Tables: see ``data/PROVENANCE.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Final, Literal, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "DATA_DIR",
    "DAYS_PER_MONTH",
    "MAX_AGE_DAYS",
    "RULE_VERSION",
    "HazClass",
    "Score",
    "ScoreResult",
    "WazClass",
    "WhzClass",
    "age_in_days",
    "classify_haz",
    "classify_waz",
    "classify_whz",
    "days_from_months",
    "parse_measure",
    "parse_oedema",
    "parse_sex",
    "score",
    "score_one",
]

RULE_VERSION: Final = "who2006-anthro-1"
DAYS_PER_MONTH: Final = 30.4375
# Scored while age in months < 60, i.e. up to day 1826 (1826.25 days is 60 months).
MAX_AGE_DAYS: Final = 1826
DATA_DIR: Final = Path(__file__).resolve().parent / "data"

HazClass = Literal["severely_stunted", "stunted", "normal", "tall"]
WhzClass = Literal[
    "severely_wasted", "wasted", "normal", "possible_risk_of_overweight", "overweight", "obese"
]
WazClass = Literal["severely_underweight", "underweight", "normal", "risk_of_overweight"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
FlagArray = NDArray[np.int8]
BoolArray = NDArray[np.bool_]

_LYING: Final = 1
_ADJUSTED_DECIMALS: Final = 6  # the grid (in cm) the position-adjusted length is snapped to
_STANDING: Final = 2
_SEX_CODES: Final[dict[str, int]] = {
    "1": 1, "m": 1, "l": 1, "male": 1, "boy": 1, "laki-laki": 1, "laki laki": 1, "lk": 1,
    "2": 2, "f": 2, "p": 2, "female": 2, "girl": 2, "perempuan": 2, "pr": 2,
}  # fmt: skip
_MEASURE_CODES: Final[dict[str, int]] = {"l": _LYING, "h": _STANDING}
_OEDEMA_YES: Final = frozenset({"y", "yes", "1", "true", "ya"})
_OEDEMA_NO: Final = frozenset({"n", "no", "2", "0", "false", "tidak", ""})


@dataclass(frozen=True, slots=True)
class _Table:
    """LMS rows for both sexes: row ``index - start`` of ``l[sex - 1]``; index is a day or a length in mm."""

    start: int
    l: FloatArray  # noqa: E741  (the LMS method's own name)
    m: FloatArray
    s: FloatArray

    @property
    def stop(self) -> int:
        return self.start + int(self.l.shape[1]) - 1


def _read_table(name: str, scale: int) -> _Table:
    raw = np.loadtxt(DATA_DIR / name, delimiter="\t", skiprows=1, usecols=(0, 1, 2, 3, 4), dtype=np.float64)
    index = np.rint(raw[:, 1] * scale).astype(np.int64)
    start = int(index.min())
    width = int(index.max()) - start + 1
    l_ = np.full((2, width), np.nan)
    m_ = np.full((2, width), np.nan)
    s_ = np.full((2, width), np.nan)
    sex = raw[:, 0].astype(np.int64) - 1
    col = index - start
    l_[sex, col], m_[sex, col], s_[sex, col] = raw[:, 2], raw[:, 3], raw[:, 4]
    if np.isnan(l_).any() or np.isnan(m_).any() or np.isnan(s_).any():
        raise ValueError(f"{name}: rows missing")
    return _Table(start, l_, m_, s_)


@lru_cache(maxsize=1)
def _tables() -> dict[str, _Table]:
    return {
        "lhfa": _read_table("lenanthro.tsv", 1),
        "wfa": _read_table("weianthro.tsv", 1),
        "wfl": _read_table("wflanthro.tsv", 10),  # millimetres
        "wfh": _read_table("wfhanthro.tsv", 10),
    }


# ---------------------------------------------------------------------------------------------------- inputs


def age_in_days(birth: date, measured: date) -> int:
    """Age in days at measurement (negative if measured before birth; such rows are not scored)."""
    return (measured - birth).days


def days_from_months(months: float) -> int:
    """Integer age in days from an age in months: round half up of months x 30.4375."""
    return math.floor(months * DAYS_PER_MONTH + 0.5)


def parse_sex(value: object) -> Literal[1, 2] | None:
    """1 (boy) or 2 (girl) from 1/2, L/P, laki-laki/perempuan, m/f; None if unknown."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | np.integer | np.floating):
        return 1 if value == 1 else 2 if value == 2 else None
    if isinstance(value, str):
        code = _SEX_CODES.get(value.strip().lower())
        return 1 if code == 1 else 2 if code == 2 else None
    return None


def parse_measure(value: object) -> Literal["l", "h"] | None:
    """'l' (lying, length) or 'h' (standing, height), case-insensitive; None if missing or unknown."""
    if isinstance(value, str):
        v = value.strip().lower()
        if v == "l":
            return "l"
        if v == "h":
            return "h"
    return None


def parse_oedema(value: object) -> bool | None:
    """True for y/1/yes, False for n/2/no/empty/None, None if unrecognised."""
    if value is None:
        return False
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return True if value == 1 else False if value in (0, 2) else None
    if isinstance(value, str):
        v = value.strip().lower()
        return True if v in _OEDEMA_YES else False if v in _OEDEMA_NO else None
    return None


def _sex_codes(sex: ArrayLike, n: int) -> IntArray:
    arr = np.asarray(sex)
    if arr.dtype.kind in "iuf":
        a = np.broadcast_to(arr, (n,))
        return np.where(a == 1, 1, np.where(a == 2, 2, 0)).astype(np.int64)
    flat = np.broadcast_to(arr, (n,)).tolist()
    return np.fromiter(((parse_sex(v) or 0) for v in flat), dtype=np.int64, count=n)


def _measure_codes(measure: ArrayLike | Sequence[str | None] | None, n: int) -> IntArray:
    if measure is None:
        return np.zeros(n, dtype=np.int64)
    arr = np.asarray(measure)
    if arr.dtype.kind == "U":
        low = np.char.lower(np.char.strip(np.broadcast_to(arr, (n,))))
        return np.where(low == "l", _LYING, np.where(low == "h", _STANDING, 0)).astype(np.int64)
    flat = np.broadcast_to(arr, (n,)).tolist()
    return np.fromiter((_MEASURE_CODES.get(parse_measure(v) or "", 0) for v in flat), dtype=np.int64, count=n)


def _oedema_mask(oedema: ArrayLike | Sequence[object] | None, n: int) -> BoolArray:
    if oedema is None:
        return np.zeros(n, dtype=np.bool_)
    arr = np.asarray(oedema)
    if arr.dtype.kind == "b":
        return np.broadcast_to(arr, (n,)).copy()
    flat = np.broadcast_to(arr, (n,)).tolist()
    return np.fromiter((parse_oedema(v) is True for v in flat), dtype=np.bool_, count=n)


def _floats(values: ArrayLike, n: int) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    return np.broadcast_to(arr, (n,)).astype(np.float64, copy=True)


# ---------------------------------------------------------------------------------------------------- LMS


def _lms_z(x: FloatArray, l_: FloatArray, m: FloatArray, s: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        safe_l = np.where(l_ == 0, 1.0, l_)
        z = np.where(l_ == 0, np.log(x / m) / s, (np.power(x / m, safe_l) - 1.0) / (safe_l * s))
    return np.asarray(z, dtype=np.float64)


def _sd_value(k: float, l_: FloatArray, m: FloatArray, s: FloatArray) -> FloatArray:
    """The measurement at k SD from the LMS parameters."""
    with np.errstate(divide="ignore", invalid="ignore"):
        safe_l = np.where(l_ == 0, 1.0, l_)
        v = np.where(l_ == 0, m * np.exp(s * k), m * np.power(1.0 + safe_l * s * k, 1.0 / safe_l))
    return np.asarray(v, dtype=np.float64)


def _restricted_z(x: FloatArray, l_: FloatArray, m: FloatArray, s: FloatArray) -> FloatArray:
    """LMS z, then WHO's linear extension beyond +/-3 SD (fixed SD spacing of the 2-3 SD interval)."""
    z = _lms_z(x, l_, m, s)
    with np.errstate(invalid="ignore"):
        high = z > 3
        low = z < -3
    if high.any():
        sd3 = _sd_value(3.0, l_, m, s)
        sd2 = _sd_value(2.0, l_, m, s)
        z = np.where(high, 3.0 + (x - sd3) / (sd3 - sd2), z)
    if low.any():
        sd3n = _sd_value(-3.0, l_, m, s)
        sd2n = _sd_value(-2.0, l_, m, s)
        z = np.where(low, -3.0 + (x - sd3n) / (sd2n - sd3n), z)
    return z


def _round2(z: FloatArray) -> FloatArray:
    # + 0.0 turns -0.0 into 0.0 so that "-0.00" is never written.
    return np.asarray(np.round(z, 2) + 0.0, dtype=np.float64)


def _by_age(table: _Table, sex: IntArray, day: IntArray, ok: BoolArray) -> tuple[FloatArray, ...]:
    row = np.clip(day - table.start, 0, table.l.shape[1] - 1)
    sx = np.clip(sex - 1, 0, 1)
    lms = (table.l[sx, row], table.m[sx, row], table.s[sx, row])
    return tuple(np.where(ok, v, np.nan) for v in lms)


def _by_length(table: _Table, sex: IntArray, mm: FloatArray, ok: BoolArray) -> tuple[FloatArray, ...]:
    """L, M, S interpolated linearly between the 1 mm rows around ``mm``."""
    width = table.l.shape[1]
    safe = np.where(ok, mm, float(table.start))
    lo = np.floor(safe)
    frac = np.clip(safe - lo, 0.0, 1.0)
    row = np.clip(lo.astype(np.int64) - table.start, 0, width - 1)
    nxt = np.minimum(row + 1, width - 1)
    sx = np.clip(sex - 1, 0, 1)
    out = []
    for col in (table.l, table.m, table.s):
        a = col[sx, row]
        b = col[sx, nxt]
        out.append(np.where(ok, a + frac * (b - a), np.nan))
    return tuple(out)


# ---------------------------------------------------------------------------------------------------- classes


def _labels(
    z: FloatArray, flag: FlagArray, cuts: Sequence[tuple[str, BoolArray]], rest: str
) -> list[str | None]:
    out = np.full(z.shape, None, dtype=object)
    usable = ~np.isnan(z) & (flag == 0)
    out[usable] = rest
    taken = ~usable
    for label, cond in cuts:
        hit = cond & ~taken
        out[hit] = label
        taken |= hit
    labels: list[str | None] = out.tolist()
    return labels


def classify_haz(z: FloatArray, flag: FlagArray) -> list[HazClass | None]:
    """Per-row HAZ class on the rounded z; None where there is no z or it is flagged implausible."""
    with np.errstate(invalid="ignore"):
        cuts = [("severely_stunted", z < -3), ("stunted", z < -2), ("tall", z > 3)]
    return _labels(z, flag, cuts, "normal")  # type: ignore[return-value]


def classify_whz(z: FloatArray, flag: FlagArray) -> list[WhzClass | None]:
    """Per-row WHZ class (wasting/overweight) on the rounded z; None where no z or flagged."""
    with np.errstate(invalid="ignore"):
        cuts = [
            ("severely_wasted", z < -3),
            ("wasted", z < -2),
            ("obese", z > 3),
            ("overweight", z > 2),
            ("possible_risk_of_overweight", z > 1),
        ]
    return _labels(z, flag, cuts, "normal")  # type: ignore[return-value]


def classify_waz(z: FloatArray, flag: FlagArray) -> list[WazClass | None]:
    """Per-row WAZ class on the rounded z (> +1: Permenkes 2/2020 overweight risk); None if no z/flagged."""
    with np.errstate(invalid="ignore"):
        cuts = [("severely_underweight", z < -3), ("underweight", z < -2), ("risk_of_overweight", z > 1)]
    return _labels(z, flag, cuts, "normal")  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------------- scoring


@dataclass(frozen=True, slots=True)
class ScoreResult:
    """Per-row results of :func:`score`: z is NaN where not computed; a flag is 1 only for a flagged z."""

    zlen: FloatArray
    flen: FlagArray
    zwei: FloatArray
    fwei: FlagArray
    zwfl: FloatArray
    fwfl: FlagArray
    c9mo_flag: FlagArray  # standing measurement under 9 months: implausible, not corrected
    clenhei: FloatArray  # length/height after the 0.7 cm correction
    haz_class: list[HazClass | None]
    waz_class: list[WazClass | None]
    whz_class: list[WhzClass | None]
    rule_version: str = RULE_VERSION

    def __len__(self) -> int:
        return int(self.zlen.shape[0])


def score(
    sex: ArrayLike,
    age_days: ArrayLike,
    weight_kg: ArrayLike,
    lenhei_cm: ArrayLike,
    measure: ArrayLike | Sequence[str | None] | None,
    oedema: ArrayLike | Sequence[object] | None = None,
) -> ScoreResult:
    """Score many children at once: HAZ, WAZ and WHZ with WHO flags and classes.

    ``sex`` 1/2 (or L/P, m/f strings), ``age_days`` (NaN if unknown), ``weight_kg`` and ``lenhei_cm`` (NaN if
    not measured), ``measure`` 'l'/'h' (None/'' if unknown), ``oedema`` booleans or y/n. Scalars broadcast.
    """
    given = [sex, age_days, weight_kg, lenhei_cm] + [x for x in (measure, oedema) if x is not None]
    shape = np.broadcast_shapes(*(np.shape(cast(Any, x)) for x in given))
    if len(shape) > 1:
        raise ValueError(f"score() takes 1-d inputs, got shape {shape}")
    n = int(shape[0]) if shape else 1
    sx = _sex_codes(sex, n)
    age = _floats(age_days, n)
    weight = _floats(weight_kg, n)
    lenhei = _floats(lenhei_cm, n)
    pos = _measure_codes(measure, n)
    oed = _oedema_mask(oedema, n)
    t = _tables()

    sex_ok = sx > 0
    age_known = ~np.isnan(age)
    with np.errstate(invalid="ignore"):
        months = age / DAYS_PER_MONTH
        day = np.where(age_known & (age >= 0), np.floor(age + 0.5), -1.0).astype(np.int64)
        age_ok = age_known & (age >= 0) & (months < 60)
        weight_ok = weight > 0
        lenhei_ok = lenhei > 0
    age_bad = age_known & ~age_ok

    # Standing under 9 months is implausible: flag it and treat the position as unknown (no correction).
    with np.errstate(invalid="ignore"):
        c9mo = age_ok & (pos == _STANDING) & (months < 9)
    pos = np.where(c9mo, 0, pos)
    under_2y = age_ok & (day < 731)
    clen = np.where(under_2y & (pos == _STANDING), lenhei + 0.7, lenhei)
    clen = np.where(age_ok & (day >= 731) & (pos == _LYING), lenhei - 0.7, clen)
    # The +/-0.7 cm is decimal arithmetic on a decimal reading, but binary floating point lands beside it
    # (103.1 - 0.7 = 102.39999999999999, just below the table point 102.4). Snap the adjusted length to a
    # 1e-6 cm grid, far finer than any length board (0.1 cm): that gives the double nearest to the exact decimal
    # result, i.e. what Decimal arithmetic would give, so every later use (HAZ, the WHZ row, the interpolation
    # fraction, clenhei) sees the table point itself.
    clen = np.asarray(np.round(clen, _ADJUSTED_DECIMALS), dtype=np.float64)

    # HAZ: plain LMS at the integer day.
    haz_ok = sex_ok & age_ok & lenhei_ok
    lh = _by_age(t["lhfa"], sx, day, haz_ok)
    zlen = _round2(_lms_z(np.where(haz_ok, clen, np.nan), *lh))
    with np.errstate(invalid="ignore"):
        flen = (np.abs(zlen) > 6).astype(np.int8)

    # WAZ: restricted LMS at the integer day; none with oedema.
    waz_ok = sex_ok & age_ok & weight_ok & ~oed
    wa = _by_age(t["wfa"], sx, day, waz_ok)
    zwei = _round2(_restricted_z(np.where(waz_ok, weight, np.nan), *wa))
    with np.errstate(invalid="ignore"):
        fwei = ((zwei < -6) | (zwei > 5)).astype(np.int8)

    # WHZ: length table under 731 days, height table from 731; without age by position, then by 87 cm.
    with np.errstate(invalid="ignore"):
        no_age = ~age_known
        use_l = under_2y | (no_age & (pos == _LYING)) | (no_age & (pos == 0) & (clen < 87))
        use_h = (age_ok & (day >= 731)) | (no_age & (pos == _STANDING)) | (no_age & (pos == 0) & (clen >= 87))
        # Row index in millimetres, on the same grid: 1024.0 x 0.1 stays on the row (no 1023.9999...).
        mm = np.round(clen * 10.0, _ADJUSTED_DECIMALS - 1)
        wfl, wfh = t["wfl"], t["wfh"]
        in_l = use_l & (mm >= wfl.start) & (mm <= wfl.stop)
        in_h = use_h & (mm >= wfh.start) & (mm <= wfh.stop)
    whz_base = sex_ok & weight_ok & lenhei_ok & ~oed & ~age_bad
    ok_l = whz_base & in_l
    ok_h = whz_base & in_h & ~ok_l
    zl = _restricted_z(np.where(ok_l, weight, np.nan), *_by_length(wfl, sx, mm, ok_l))
    zh = _restricted_z(np.where(ok_h, weight, np.nan), *_by_length(wfh, sx, mm, ok_h))
    zwfl = _round2(np.where(ok_l, zl, zh))
    with np.errstate(invalid="ignore"):
        fwfl = (np.abs(zwfl) > 5).astype(np.int8)

    return ScoreResult(
        zlen=zlen,
        flen=flen,
        zwei=zwei,
        fwei=fwei,
        zwfl=zwfl,
        fwfl=fwfl,
        c9mo_flag=c9mo.astype(np.int8),
        clenhei=clen,
        haz_class=classify_haz(zlen, flen),
        waz_class=classify_waz(zwei, fwei),
        whz_class=classify_whz(zwfl, fwfl),
    )


@dataclass(frozen=True, slots=True)
class Score:
    """One child's z-scores (None where not computed), flags (0/1) and classes."""

    zlen: float | None
    flen: int
    zwei: float | None
    fwei: int
    zwfl: float | None
    fwfl: int
    c9mo_flag: int
    clenhei: float | None
    haz_class: HazClass | None
    waz_class: WazClass | None
    whz_class: WhzClass | None
    rule_version: str = RULE_VERSION


def _opt(x: np.float64) -> float | None:
    return None if np.isnan(x) else float(x)


def score_one(
    sex: int | str,
    age_days: float | None,
    weight_kg: float | None,
    lenhei_cm: float | None,
    measure: str | None,
    oedema: bool | str | None = False,
) -> Score:
    """Score one child; same rules as :func:`score` (None for unknown values)."""
    r = score(
        np.array([parse_sex(sex) or 0]),
        np.array([np.nan if age_days is None else age_days], dtype=np.float64),
        np.array([np.nan if weight_kg is None else weight_kg], dtype=np.float64),
        np.array([np.nan if lenhei_cm is None else lenhei_cm], dtype=np.float64),
        np.array([parse_measure(measure) or ""]),
        np.array([parse_oedema(oedema) is True]),
    )
    return Score(
        zlen=_opt(r.zlen[0]),
        flen=int(r.flen[0]),
        zwei=_opt(r.zwei[0]),
        fwei=int(r.fwei[0]),
        zwfl=_opt(r.zwfl[0]),
        fwfl=int(r.fwfl[0]),
        c9mo_flag=int(r.c9mo_flag[0]),
        clenhei=_opt(r.clenhei[0]),
        haz_class=r.haz_class[0],
        waz_class=r.waz_class[0],
        whz_class=r.whz_class[0],
    )
