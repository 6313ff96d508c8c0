"""NIK and KK number rules (docs `regions-and-ids.md`): pure checks, masking, and test-data generators.

A NIK is personal data (UU 27/2022): results here never show it in ``repr`` and messages never quote it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Final, Literal

from shared.regions import is_within, load_regions, normalize_code

__all__ = [
    "KkCheck",
    "NikCheck",
    "NikRule",
    "RuleCode",
    "Sex",
    "make_kk",
    "make_nik",
    "mask_nik",
    "validate_kk",
    "validate_nik",
]

Sex = Literal["L", "P"]
RuleCode = Literal[
    "nik.length",
    "nik.digits",
    "nik.province_unknown",
    "nik.regency_zero",
    "nik.district_zero",
    "nik.district_unknown",
    "nik.birth_date_invalid",
    "nik.birth_date_future",
    "nik.serial_zero",
    "nik.birth_date_mismatch",
    "nik.sex_mismatch",
    "kk.length",
    "kk.digits",
    "kk.province_unknown",
    "kk.regency_zero",
    "kk.district_zero",
    "kk.district_unknown",
    "kk.date_invalid",
    "kk.date_future",
    "kk.serial_zero",
]

LENGTH: Final = 16
_SEPARATORS = re.compile(r"[\s.\-]")
_FEMALE_DAY_OFFSET: Final = 40
_NIK_CODES: Final[dict[str, RuleCode]] = {
    "digits": "nik.digits",
    "length": "nik.length",
    "province_unknown": "nik.province_unknown",
    "regency_zero": "nik.regency_zero",
    "district_zero": "nik.district_zero",
    "district_unknown": "nik.district_unknown",
}
_KK_CODES: Final[dict[str, RuleCode]] = {
    "digits": "kk.digits",
    "length": "kk.length",
    "province_unknown": "kk.province_unknown",
    "regency_zero": "kk.regency_zero",
    "district_zero": "kk.district_zero",
    "district_unknown": "kk.district_unknown",
}


@dataclass(frozen=True, slots=True)
class NikRule:
    """A broken rule: a stable ``code`` (``nik.length``) and a human message that never quotes the number."""

    code: RuleCode
    message: str


@dataclass(frozen=True, slots=True)
class _Parts:
    province: str | None = None
    regency: str | None = None
    district: str | None = None


@dataclass(frozen=True, slots=True)
class NikCheck:
    """Outcome of :func:`validate_nik`; ``nik`` is the normalised number (hidden from repr)."""

    nik: str = field(repr=False)
    province_code: str | None
    regency_code: str | None
    district_code: str | None
    birth_date: date | None
    sex: Sex | None
    errors: list[NikRule]
    warnings: list[NikRule]

    @property
    def valid(self) -> bool:
        """True when no rule is broken (warnings allowed)."""
        return not self.errors

    @property
    def masked(self) -> str:
        """The number masked for display."""
        return mask_nik(self.nik)

    @property
    def error_codes(self) -> list[RuleCode]:
        """Codes of the broken rules, in check order."""
        return [e.code for e in self.errors]


@dataclass(frozen=True, slots=True)
class KkCheck:
    """Outcome of :func:`validate_kk`; ``kk`` is the normalised number (hidden from repr)."""

    kk: str = field(repr=False)
    province_code: str | None
    regency_code: str | None
    district_code: str | None
    registration_date: date | None
    errors: list[NikRule]
    warnings: list[NikRule]

    @property
    def valid(self) -> bool:
        """True when no rule is broken (warnings allowed)."""
        return not self.errors

    @property
    def error_codes(self) -> list[RuleCode]:
        """Codes of the broken rules, in check order."""
        return [e.code for e in self.errors]


def _strip(raw: str) -> str:
    return _SEPARATORS.sub("", raw)


def _resolve_century(day: int, month: int, yy: int, today: date) -> date | None:
    """20YY unless that is after ``today``, then 19YY; None when the date does not exist."""
    for year in (2000 + yy, 1900 + yy):
        try:
            d = date(year, month, day)
        except ValueError:
            continue
        if d <= today or year < 2000:
            return d
    return None


def _shape_and_region(
    number: str, codes: dict[str, RuleCode], label: str, errors: list[NikRule], warnings: list[NikRule]
) -> _Parts | None:
    """Shared checks 1-2 for NIK and KK; return the region parts, or None when the shape is wrong."""
    if number and not (number.isascii() and number.isdigit()):
        errors.append(
            NikRule(codes["digits"], f"{label} may contain only the digits 0-9 (plus spaces, dots, dashes)")
        )
    if len(number) != LENGTH:
        errors.append(
            NikRule(codes["length"], f"{label} must have exactly 16 digits, got {len(number)} characters")
        )
    if errors:
        return None
    regions = load_regions()
    province = number[0:2]
    regency = f"{province}.{number[2:4]}"
    district = f"{regency}.{number[4:6]}"
    parts = _Parts(province, regency, district)
    province_known = regions.get(province) is not None
    if not province_known:
        errors.append(NikRule(codes["province_unknown"], f"{label} province code {province} is unknown"))
    if number[2:4] == "00":
        errors.append(NikRule(codes["regency_zero"], f"{label} regency digits must not be 00"))
    if number[4:6] == "00":
        errors.append(NikRule(codes["district_zero"], f"{label} district digits must not be 00"))
    elif province_known and number[2:4] != "00" and not regions.exists(district):
        # Old or split district codes are common in real NIKs: warn, never reject.
        warnings.append(
            NikRule(codes["district_unknown"], f"{label} district code {district} is not in the current list")
        )
    return parts


def validate_nik(
    raw: str, *, today: date, birth_date: date | None = None, sex: Sex | None = None
) -> NikCheck:
    """Check a NIK against every rule; compare with the known birth date and sex when given."""
    nik = _strip(raw)
    errors: list[NikRule] = []
    warnings: list[NikRule] = []
    parts = _shape_and_region(nik, _NIK_CODES, "NIK", errors, warnings)
    if parts is None:
        return NikCheck(nik, None, None, None, None, None, errors, warnings)

    dd, mm, yy = int(nik[6:8]), int(nik[8:10]), int(nik[10:12])
    derived_sex: Sex | None = None
    day = dd
    if 1 <= dd <= 31:
        derived_sex = "L"
    elif _FEMALE_DAY_OFFSET + 1 <= dd <= _FEMALE_DAY_OFFSET + 31:
        derived_sex = "P"
        day = dd - _FEMALE_DAY_OFFSET
    derived = _resolve_century(day, mm, yy, today) if derived_sex is not None else None
    if derived is None:
        errors.append(
            NikRule(
                "nik.birth_date_invalid",
                "NIK digits 7-12 must be a real date DDMMYY (day + 40 for women)",
            )
        )
    elif derived > today:
        errors.append(NikRule("nik.birth_date_future", "NIK birth date is in the future"))
    if nik[12:16] == "0000":
        errors.append(NikRule("nik.serial_zero", "NIK serial (last 4 digits) must not be 0000"))

    if birth_date is not None and derived_sex is not None:
        # The NIK carries no century: compare day, month and two-digit year, then trust the known date.
        if (birth_date.day, birth_date.month, birth_date.year % 100) != (day, mm, yy):
            errors.append(
                NikRule("nik.birth_date_mismatch", "NIK birth date does not match the person's birth date")
            )
        else:
            derived = birth_date
    if sex is not None and derived_sex is not None and sex != derived_sex:
        errors.append(
            NikRule("nik.sex_mismatch", "NIK sex (day + 40 for women) does not match the person's sex")
        )
    return NikCheck(
        nik, parts.province, parts.regency, parts.district, derived, derived_sex, errors, warnings
    )


def validate_kk(raw: str, *, today: date) -> KkCheck:
    """Check a KK (family card) number: issuing region, registration date DDMMYY, serial."""
    kk = _strip(raw)
    errors: list[NikRule] = []
    warnings: list[NikRule] = []
    parts = _shape_and_region(kk, _KK_CODES, "KK number", errors, warnings)
    if parts is None:
        return KkCheck(kk, None, None, None, None, errors, warnings)
    registered = _resolve_century(int(kk[6:8]), int(kk[8:10]), int(kk[10:12]), today)
    if registered is None:
        errors.append(NikRule("kk.date_invalid", "KK number digits 7-12 must be a real date DDMMYY"))
    elif registered > today:
        errors.append(NikRule("kk.date_future", "KK registration date is in the future"))
    if kk[12:16] == "0000":
        errors.append(NikRule("kk.serial_zero", "KK serial (last 4 digits) must not be 0000"))
    return KkCheck(kk, parts.province, parts.regency, parts.district, registered, errors, warnings)


def mask_nik(nik: str) -> str:
    """Mask a NIK (or KK number) for display: first 4 and last 2 digits kept, e.g. ``1571**********01``."""
    n = _strip(nik)
    if len(n) != LENGTH:
        return "*" * len(n)
    return n[:4] + "*" * (LENGTH - 6) + n[-2:]


def _district_digits(district_code: str) -> str:
    code = normalize_code(district_code)
    if code.count(".") != 2 or not is_within(code, code[:2]):
        raise ValueError(f"not a district code (PP.KK.CC): {district_code!r}")
    return code.replace(".", "")


def _serial(serial: int) -> str:
    if not 1 <= serial <= 9999:
        raise ValueError(f"serial must be 1..9999, got {serial}")
    return f"{serial:04d}"


def make_nik(district_code: str, birth_date: date, sex: Sex, serial: int) -> str:
    """Build a well-formed NIK for test and demo data (day + 40 for women)."""
    if sex not in ("L", "P"):
        raise ValueError(f"sex must be 'L' or 'P', got {sex!r}")
    day = birth_date.day + (_FEMALE_DAY_OFFSET if sex == "P" else 0)
    dob = f"{day:02d}{birth_date.month:02d}{birth_date.year % 100:02d}"
    return _district_digits(district_code) + dob + _serial(serial)


def make_kk(district_code: str, registration_date: date, serial: int) -> str:
    """Build a well-formed KK number for test and demo data."""
    d = registration_date
    return _district_digits(district_code) + f"{d.day:02d}{d.month:02d}{d.year % 100:02d}" + _serial(serial)
