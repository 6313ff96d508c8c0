"""The one clock of every service: the current instant (UTC) and the business date (an Indonesian local date).

Instants are UTC (`now_utc`). A business date — "today" for a `*_on` field, a "not in the future" check, a
sweep or a due date — is the calendar day people see where the record lives: Indonesia has three legal time
zones (Keppres 41/1987), chosen here by the province part of a region code. Without a region (national
figures, the ministry's deadlines, daily jobs) the day is the programme's, WIB (Asia/Jakarta: BKKBN's seat and
the zone most villages are in). A measurement taken at 06:00 WIB on the 11th is dated the 11th everywhere,
although it is still the 10th in UTC.

Tests freeze the clock with `frozen_at` (or the `frozen_clock` fixture of the pytest plugin) instead of
patching `datetime`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from typing import Final
from zoneinfo import ZoneInfo

__all__ = [
    "PROGRAMME_ZONE",
    "WIB",
    "WIT",
    "WITA",
    "business_today",
    "frozen_at",
    "now_utc",
    "start_of_day",
    "zone_of",
]

WIB: Final = ZoneInfo("Asia/Jakarta")  # UTC+7
WITA: Final = ZoneInfo("Asia/Makassar")  # UTC+8
WIT: Final = ZoneInfo("Asia/Jayapura")  # UTC+9
PROGRAMME_ZONE: Final = WIB

# Keppres 41/1987 (Pembagian Wilayah Republik Indonesia menjadi 3 Wilayah Waktu), by Kemendagri province code;
# provinces made later keep their parent's zone (Kalimantan Utara from Kalimantan Timur, Sulawesi Barat from
# Sulawesi Selatan, Gorontalo from Sulawesi Utara, the Papua provinces of 2022 from Papua). Kalimantan is split:
# Barat (61) and Tengah (62) are WIB, Selatan, Timur and Utara (63-65) WITA. Every other province is WIB.
_WITA_PROVINCES: Final = frozenset({"51", "52", "53", "63", "64", "65", "71", "72", "73", "74", "75", "76"})
_WIT_PROVINCES: Final = frozenset({"81", "82", "91", "92", "93", "94", "95", "96", "97"})


def _system_now() -> datetime:
    return datetime.now(UTC)


_now: Callable[[], datetime] = _system_now


def now_utc() -> datetime:
    """The current instant, timezone-aware, in UTC."""
    return _now()


def zone_of(region_code: str | None) -> ZoneInfo:
    """The legal time zone of a region (any level, dotted or not, by its province); WIB without a region.

    An unknown or malformed code falls back to the programme's zone: the date is a convenience, the code's
    validity is checked where it is taken in.
    """
    province = (region_code or "").strip()[:2]
    if province in _WIT_PROVINCES:
        return WIT
    if province in _WITA_PROVINCES:
        return WITA
    return PROGRAMME_ZONE


def business_today(region_code: str | None = None) -> date:
    """Today's calendar date in the region's time zone (WIB when no region is given)."""
    return now_utc().astimezone(zone_of(region_code)).date()


def start_of_day(day: date, region_code: str | None = None) -> datetime:
    """00:00 of a business date in the region's zone (WIB without one), as an aware instant."""
    return datetime.combine(day, time.min, tzinfo=zone_of(region_code))


@contextmanager
def frozen_at(instant: datetime) -> Iterator[datetime]:
    """Within the block, `now_utc` answers `instant` (aware; a naive one is read as UTC) for every caller."""
    global _now
    fixed = instant if instant.tzinfo is not None else instant.replace(tzinfo=UTC)
    fixed = fixed.astimezone(UTC)
    previous = _now
    _now = lambda: fixed  # noqa: E731 - the clock is a callable by design
    try:
        yield fixed
    finally:
        _now = previous
