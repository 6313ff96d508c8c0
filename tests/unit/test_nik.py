"""NIK and KK number rules, masking and generators."""

from __future__ import annotations

from datetime import date

import pytest
from registry.identity.domain import make_kk, make_nik, mask_nik, validate_kk, validate_nik

TODAY = date(2025, 6, 1)
# Kota Jambi, Kecamatan 15.71.01; a man born 15 Aug 1995, serial 0001.
MALE = "1571011508950001"
# Same district, a woman born 5 Mar 2021 (day 05 + 40 = 45), serial 0002.
FEMALE = "1571014503210002"


def codes(nik: str, **kwargs: object) -> list[str]:
    return list(validate_nik(nik, today=TODAY, **kwargs).error_codes)  # type: ignore[arg-type]


def test_valid_male() -> None:
    check = validate_nik(MALE, today=TODAY)
    assert check.valid
    assert check.errors == [] and check.warnings == []
    assert check.nik == MALE
    assert (check.province_code, check.regency_code, check.district_code) == ("15", "15.71", "15.71.01")
    assert check.birth_date == date(1995, 8, 15)
    assert check.sex == "L"


def test_valid_female_day_plus_40() -> None:
    check = validate_nik(FEMALE, today=TODAY)
    assert check.valid
    assert check.birth_date == date(2021, 3, 5)
    assert check.sex == "P"


@pytest.mark.parametrize(
    "raw", ["1571 0115 0895 0001", "1571.0115.0895.0001", "1571-011508-950001", " 1571011508950001\t"]
)
def test_separators_are_stripped(raw: str) -> None:
    check = validate_nik(raw, today=TODAY)
    assert check.valid
    assert check.nik == MALE


def test_repr_hides_the_number() -> None:
    check = validate_nik(MALE, today=TODAY)
    assert MALE not in repr(check)
    assert check.masked == "1571**********01"
    for rule in validate_nik("1571011508950000", today=TODAY, sex="P").errors:
        assert "1571011508950000" not in rule.message


@pytest.mark.parametrize("raw", ["157101150895001", "15710115089500011", "", "1571"])
def test_length(raw: str) -> None:
    assert codes(raw) == ["nik.length"]


@pytest.mark.parametrize(
    "raw",
    [
        "157101150895000A",
        "\uff11\uff15\uff17\uff11\uff10\uff11\uff11\uff15\uff10\uff18\uff19\uff15\uff10\uff10\uff10\uff11",
        "1571011508950\u066001",
        "15710115/8950001",
    ],
)
def test_digits(raw: str) -> None:
    result = codes(raw)
    assert result[0] == "nik.digits"
    assert set(result) <= {"nik.digits", "nik.length"}


def test_digits_and_length_both_reported() -> None:
    assert codes("12ab") == ["nik.digits", "nik.length"]


def test_province_unknown() -> None:
    assert codes("9971011508950001") == ["nik.province_unknown"]
    assert codes("0071011508950001") == ["nik.province_unknown"]


def test_regency_zero() -> None:
    check = validate_nik("1500011508950001", today=TODAY)
    assert check.error_codes == ["nik.regency_zero"]
    assert check.warnings == []


def test_district_zero() -> None:
    check = validate_nik("1571001508950001", today=TODAY)
    assert check.error_codes == ["nik.district_zero"]
    assert check.warnings == []


def test_district_unknown_is_only_a_warning() -> None:
    check = validate_nik("1571991508950001", today=TODAY)
    assert check.valid
    assert [w.code for w in check.warnings] == ["nik.district_unknown"]
    assert "15.71.99" in check.warnings[0].message


def test_unknown_regency_is_a_district_warning() -> None:
    check = validate_nik("1598011508950001", today=TODAY)
    assert check.valid
    assert [w.code for w in check.warnings] == ["nik.district_unknown"]


@pytest.mark.parametrize(
    "ddmmyy",
    [
        "000895",  # day 0
        "320895",  # day 32
        "400895",  # day 40 (female 0)
        "720895",  # female day 32
        "151395",  # month 13
        "150095",  # month 0
        "310495",  # 31 April
        "300295",  # 30 Feb
        "290223",  # 29 Feb 2023 / 1923, neither leap
        "690223",  # female 29 Feb 2023
    ],
)
def test_birth_date_invalid(ddmmyy: str) -> None:
    check = validate_nik("157101" + ddmmyy + "0001", today=TODAY)
    assert check.error_codes == ["nik.birth_date_invalid"]
    assert check.birth_date is None


def test_leap_day_accepted() -> None:
    assert validate_nik("1571012902200001", today=TODAY).birth_date == date(2020, 2, 29)
    assert validate_nik("1571016902960001", today=TODAY).birth_date == date(1996, 2, 29)
    # 29 Feb 2000 exists (2000 is a leap year).
    assert validate_nik("1571012902000001", today=TODAY).birth_date == date(2000, 2, 29)


def test_century_from_reference_date() -> None:
    assert validate_nik("1571010106250001", today=TODAY).birth_date == date(2025, 6, 1)
    assert validate_nik("1571010206250001", today=TODAY).birth_date == date(1925, 6, 2)
    assert validate_nik("1571010101260001", today=TODAY).birth_date == date(1926, 1, 1)
    assert validate_nik("1571010101000001", today=TODAY).birth_date == date(2000, 1, 1)


def test_birth_date_future() -> None:
    # Before 2000 every YY is resolvable in the past only if 19YY <= today.
    check = validate_nik("1571010101990001", today=date(1995, 1, 1))
    assert check.error_codes == ["nik.birth_date_future"]


def test_serial_zero() -> None:
    assert codes("1571011508950000") == ["nik.serial_zero"]


def test_birth_date_and_sex_agree() -> None:
    check = validate_nik(MALE, today=TODAY, birth_date=date(1995, 8, 15), sex="L")
    assert check.valid


def test_known_birth_date_resolves_century() -> None:
    check = validate_nik("1571011508200001", today=TODAY, birth_date=date(1920, 8, 15))
    assert check.valid
    assert check.birth_date == date(1920, 8, 15)


def test_birth_date_mismatch() -> None:
    assert codes(MALE, birth_date=date(1995, 8, 16)) == ["nik.birth_date_mismatch"]
    assert codes(MALE, birth_date=date(1996, 8, 15)) == ["nik.birth_date_mismatch"]
    assert codes(FEMALE, birth_date=date(2021, 3, 45 - 40 + 1)) == ["nik.birth_date_mismatch"]


def test_sex_mismatch() -> None:
    assert codes(MALE, sex="P") == ["nik.sex_mismatch"]
    assert codes(FEMALE, sex="L") == ["nik.sex_mismatch"]


def test_female_with_known_date_compares_real_day() -> None:
    check = validate_nik(FEMALE, today=TODAY, birth_date=date(2021, 3, 5), sex="P")
    assert check.valid


def test_several_rules_at_once() -> None:
    assert codes("1500003213950000", sex="L") == [
        "nik.regency_zero",
        "nik.district_zero",
        "nik.birth_date_invalid",
        "nik.serial_zero",
    ]


def test_messages_are_human() -> None:
    check = validate_nik("157101150895001", today=TODAY)
    assert "16 digits" in check.errors[0].message


# ------------------------------------------------------------------------------------------------ masking


def test_mask_nik() -> None:
    assert mask_nik("1571011508950001") == "1571**********01"
    assert mask_nik("1571 0115 0895 0001") == "1571**********01"
    assert mask_nik("12345") == "*****"


# ------------------------------------------------------------------------------------------------ generators


def test_make_nik_round_trips() -> None:
    nik = make_nik("15.71.01", date(1995, 8, 15), "L", 1)
    assert nik == MALE
    nik = make_nik("157101", date(2021, 3, 5), "P", 2)
    assert nik == FEMALE
    check = validate_nik(nik, today=TODAY, birth_date=date(2021, 3, 5), sex="P")
    assert check.valid and check.warnings == []


@pytest.mark.parametrize(
    ("district", "serial"),
    [("15.71", 1), ("15.71.01.1001", 1), ("15.71.01", 0), ("15.71.01", 10000), ("x", 1)],
)
def test_make_nik_rejects(district: str, serial: int) -> None:
    with pytest.raises(ValueError):
        make_nik(district, date(1995, 8, 15), "L", serial)


def test_make_nik_rejects_bad_sex() -> None:
    with pytest.raises(ValueError):
        make_nik("15.71.01", date(1995, 8, 15), "X", 1)  # type: ignore[arg-type]


def test_make_kk_round_trips() -> None:
    kk = make_kk("15.71.01", date(2019, 12, 31), 42)
    assert kk == "1571013112190042"
    check = validate_kk(kk, today=TODAY)
    assert check.valid
    assert check.registration_date == date(2019, 12, 31)
    assert check.district_code == "15.71.01"


# ------------------------------------------------------------------------------------------------ KK


def kk_codes(raw: str) -> list[str]:
    return list(validate_kk(raw, today=TODAY).error_codes)


def test_kk_valid_with_separators() -> None:
    check = validate_kk("1571-0131-1219-0042", today=TODAY)
    assert check.valid
    assert check.kk == "1571013112190042"
    assert "1571013112190042" not in repr(check)


def test_kk_rules() -> None:
    assert kk_codes("157101311219004") == ["kk.length"]
    assert kk_codes("15710131121900A2") == ["kk.digits"]
    assert kk_codes("9971013112190042") == ["kk.province_unknown"]
    assert kk_codes("1500013112190042") == ["kk.regency_zero"]
    assert kk_codes("1571003112190042") == ["kk.district_zero"]
    assert kk_codes("1571013112190000") == ["kk.serial_zero"]


def test_kk_date_has_no_plus_40() -> None:
    assert kk_codes("1571014512190042") == ["kk.date_invalid"]
    assert kk_codes("1571013102190042") == ["kk.date_invalid"]


def test_kk_date_future_and_century() -> None:
    assert validate_kk("1571010101990042", today=date(1995, 1, 1)).error_codes == ["kk.date_future"]
    assert validate_kk("1571010101300042", today=TODAY).registration_date == date(1930, 1, 1)


def test_kk_district_unknown_warning() -> None:
    check = validate_kk("1571993112190042", today=TODAY)
    assert check.valid
    assert [w.code for w in check.warnings] == ["kk.district_unknown"]
