"""The one definition of ages and age bands (baduta, balita, completed years)."""

from __future__ import annotations

from datetime import date

from shared import ages


def test_baduta_ends_on_the_second_birthday() -> None:
    born = date(2024, 3, 15)
    assert ages.is_baduta(born, date(2026, 3, 14))
    assert not ages.is_baduta(born, date(2026, 3, 15))
    assert ages.leaves_baduta_on(born) == date(2026, 3, 15)
    assert not ages.is_baduta(born, date(2024, 3, 14))  # not yet born


def test_month_ends_and_leap_days() -> None:
    assert ages.completed_months(date(2025, 1, 31), date(2025, 2, 27)) == 0
    assert ages.completed_months(date(2025, 1, 31), date(2025, 2, 28)) == 1
    assert ages.leaves_baduta_on(date(2024, 2, 29)) == date(2026, 2, 28)
    assert ages.completed_years(date(2008, 2, 29), date(2027, 2, 28)) == 19


def test_balita_and_years() -> None:
    born = date(2021, 7, 1)
    assert ages.is_balita(born, date(2026, 6, 30))
    assert not ages.is_balita(born, date(2026, 7, 1))
    assert ages.completed_years(date(1976, 12, 2), date(2026, 12, 1)) == 49
    assert ages.completed_years(date(1976, 12, 1), date(2026, 12, 1)) == 50
    assert ages.reaches_age_on(date(1976, 12, 2), 50) == date(2026, 12, 2)


def test_births_completing_a_day() -> None:
    assert ages.births_completing(12 * 25, date(2026, 6, 15)) == (date(2001, 6, 15), date(2001, 6, 15))
    # 28 Feb 2026 is February's last day: those born 29 Feb 2000 complete 26 years on it too.
    assert ages.births_completing(12 * 26, date(2026, 2, 28)) == (date(2000, 2, 28), date(2000, 2, 29))
    # 30 April: born 31 March completes a month on 30 April (April has no 31st).
    assert ages.births_completing(1, date(2026, 4, 30)) == (date(2026, 3, 30), date(2026, 3, 31))
