"""The shared clock: business dates by the region's legal time zone (Keppres 41/1987), frozen in tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest

from shared import clock
from shared.db import utcnow


@pytest.mark.parametrize(
    ("region", "zone"),
    [
        (None, "Asia/Jakarta"),
        ("", "Asia/Jakarta"),
        ("15.71.01.1001", "Asia/Jakarta"),  # Jambi
        ("61", "Asia/Jakarta"),  # Kalimantan Barat: WIB
        ("62.01", "Asia/Jakarta"),  # Kalimantan Tengah: WIB
        ("63.71", "Asia/Makassar"),  # Kalimantan Selatan: WITA
        ("6501", "Asia/Makassar"),  # Kalimantan Utara, undotted
        ("51.71.01.1001", "Asia/Makassar"),  # Bali
        ("76", "Asia/Makassar"),  # Sulawesi Barat
        ("81.71", "Asia/Jayapura"),  # Maluku
        ("94.01", "Asia/Jayapura"),  # Papua Tengah (2022)
        ("96", "Asia/Jayapura"),  # Papua Barat Daya (2022)
        ("xx", "Asia/Jakarta"),  # not a code: the programme's zone
    ],
)
def test_zone_of_a_region(region: str | None, zone: str) -> None:
    assert str(clock.zone_of(region)) == zone


def test_business_date_at_23_utc_is_the_next_day_everywhere(
    frozen_clock: Callable[[datetime], datetime],
) -> None:
    frozen_clock(datetime(2026, 11, 10, 23, 0, tzinfo=UTC))
    assert clock.now_utc() == datetime(2026, 11, 10, 23, 0, tzinfo=UTC) == utcnow()
    assert clock.business_today() == date(2026, 11, 11)  # 06:00 WIB
    assert clock.business_today("63.71") == date(2026, 11, 11)  # 07:00 WITA
    assert clock.business_today("91") == date(2026, 11, 11)  # 08:00 WIT


def test_between_15_and_17_utc_the_zones_disagree(frozen_clock: Callable[[datetime], datetime]) -> None:
    frozen_clock(datetime(2026, 11, 10, 15, 30, tzinfo=UTC))  # 22:30 WIB, 23:30 WITA, 00:30 WIT
    assert clock.business_today("15.71") == date(2026, 11, 10)
    assert clock.business_today("73.71") == date(2026, 11, 10)
    assert clock.business_today("91.71") == date(2026, 11, 11)
    frozen_clock(datetime(2026, 11, 10, 16, 30, tzinfo=UTC))  # freezing again moves it: 00:30 WITA
    assert clock.business_today("73.71") == date(2026, 11, 11)


def test_start_of_day_is_midnight_local() -> None:
    assert clock.start_of_day(date(2026, 11, 11)).isoformat() == "2026-11-11T00:00:00+07:00"
    assert clock.start_of_day(date(2026, 11, 11), "91") - clock.start_of_day(date(2026, 11, 11)) == timedelta(
        hours=-2
    )


def test_the_clock_is_given_back() -> None:
    with clock.frozen_at(datetime(2000, 1, 1)) as at:  # a naive instant is read as UTC
        assert at == datetime(2000, 1, 1, tzinfo=UTC) == clock.now_utc()
    assert clock.now_utc().year >= 2026
