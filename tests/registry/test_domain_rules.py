"""Pure rules of the registry: PUS, KRS, maternal and catin risk, KB, stunting-case decisions, PII vault."""

from __future__ import annotations

import base64
import uuid
from datetime import date, timedelta

import pytest
from cryptography.exceptions import InvalidTag
from registry import rules
from registry.config import Settings
from registry.families import domain as fam
from registry.growth import domain as growth
from registry.health import domain as health
from registry.pii import PiiVault, Sealed

TODAY = date(2026, 11, 29)


def test_pus_bounds() -> None:
    assert fam.is_pus("P", "kawin", date(2011, 11, 29), TODAY)  # 15 today
    assert not fam.is_pus("P", "kawin", date(2011, 11, 30), TODAY)  # 14
    assert fam.is_pus("P", "kawin", date(1976, 11, 30), TODAY)  # 49
    assert not fam.is_pus("P", "kawin", date(1976, 11, 29), TODAY)  # 50
    assert not fam.is_pus("L", "kawin", date(1990, 1, 1), TODAY)
    assert not fam.is_pus("P", "cerai_hidup", date(1990, 1, 1), TODAY)
    assert not fam.is_pus("P", "kawin", date(1990, 1, 1), TODAY, alive=False)


def _m(rel: str, birth: date, sex: str = "L", marital: str = "belum_kawin") -> fam.MemberFacts:
    return fam.MemberFacts(sex, birth, rel, marital)


HEAD = _m("kepala_keluarga", date(1985, 1, 1), "L", "kawin")


def test_krs_not_a_target_family() -> None:
    facts = fam.FamilyFacts("air_permukaan", "tidak_ada", [HEAD])
    assert fam.evaluate_krs(facts, TODAY) == fam.KrsResult(False, False, [])


@pytest.mark.parametrize(
    ("water", "latrine", "wife_birth", "children", "expected"),
    [
        ("ledeng", "jamban_sendiri_septik", date(1995, 1, 1), [], []),
        ("air_permukaan", "jamban_sendiri_septik", date(1995, 1, 1), [], ["drinking_water_improper"]),
        ("ledeng", "jamban_tanpa_septik", date(1995, 1, 1), [], ["latrine_improper"]),
        ("ledeng", "tidak_ada", date(1995, 1, 1), [], ["latrine_improper"]),
        (None, None, date(1995, 1, 1), [], []),
        ("ledeng", "jamban_sendiri_septik", date(2008, 1, 1), [], ["wife_too_young"]),
        ("ledeng", "jamban_sendiri_septik", date(1991, 11, 29), [], ["wife_too_old"]),
        ("ledeng", "jamban_sendiri_septik", date(1991, 11, 30), [], []),
        (
            "ledeng",
            "jamban_sendiri_septik",
            date(1995, 1, 1),
            [date(2024, 1, 1), date(2025, 12, 31)],
            ["births_too_close"],
        ),
        ("ledeng", "jamban_sendiri_septik", date(1995, 1, 1), [date(2024, 1, 1), date(2026, 1, 1)], []),
        (
            "ledeng",
            "jamban_sendiri_septik",
            date(1993, 1, 1),
            [date(2012, 1, 1), date(2015, 1, 1), date(2018, 1, 1), date(2021, 1, 1)],
            ["too_many_children"],
        ),
    ],
)
def test_krs_reasons(
    water: str | None, latrine: str | None, wife_birth: date, children: list[date], expected: list[str]
) -> None:
    members = [HEAD, _m("istri", wife_birth, "P", "kawin"), *[_m("anak", c) for c in children]]
    result = fam.evaluate_krs(fam.FamilyFacts(water, latrine, members), TODAY)
    assert result.target and result.reasons == expected and result.at_risk == bool(expected)
    assert result.rule_version == rules.RULES_VERSION


def test_krs_target_by_balita_or_pregnancy_only() -> None:
    widower = [_m("kepala_keluarga", date(1980, 1, 1), "L", "cerai_mati"), _m("anak", date(2025, 1, 1))]
    assert fam.evaluate_krs(fam.FamilyFacts("air_hujan", None, widower), TODAY).reasons == [
        "drinking_water_improper"
    ]
    alone = [_m("kepala_keluarga", date(1980, 1, 1), "P", "cerai_hidup")]
    assert fam.evaluate_krs(fam.FamilyFacts(None, "tidak_ada", alone, pregnant=True), TODAY).at_risk


def test_head_rules() -> None:
    assert fam.head_errors(["kepala_keluarga", "istri"]) == []
    assert fam.head_errors(["istri"])[0]["rule"] == "family.head_required"
    assert fam.head_errors(["kepala_keluarga", "kepala_keluarga"])[0]["rule"] == "family.one_head"


def test_person_rules() -> None:
    errs = fam.person_errors(
        birth_date=date(2027, 1, 1),
        today=TODAY,
        legal_basis="public_service_mandate",
        guardian_person_id=None,
    )
    assert [e["rule"] for e in errs] == ["person.birth_date_future"]
    errs = fam.person_errors(
        birth_date=date(2015, 1, 1), today=TODAY, legal_basis="consent", guardian_person_id=None
    )
    assert [e["rule"] for e in errs] == ["legal_basis.guardian_required"]
    assert (
        fam.person_errors(
            birth_date=date(2000, 1, 1), today=TODAY, legal_basis="consent", guardian_person_id=None
        )
        == []
    )


def test_maternal_risk() -> None:
    assert health.kek(23.4) and not health.kek(23.5) and not health.kek(None)
    assert [health.pregnancy_anaemia(x) for x in (11.0, 10.9, 10.0, 9.9, 7.0, 6.9, None)] == [
        "none",
        "mild",
        "mild",
        "moderate",
        "moderate",
        "severe",
        None,
    ]
    assert health.expected_delivery(date(2026, 1, 1)) == date(2026, 10, 8)
    errs = health.pregnancy_errors(lmp=None, expected=None, today=TODAY, sex="P", age=25)
    assert errs[0]["rule"] == "pregnancy.date_required"
    assert (
        health.pregnancy_errors(lmp=date(2025, 1, 1), expected=None, today=TODAY, sex="P", age=25)[0]["rule"]
        == "pregnancy.lmp_too_old"
    )


def test_catin_risk() -> None:
    r = health.catin_risk(sex="P", weight_kg=45, height_cm=150, lila_cm=23.5, hb_g_dl=12.0)
    assert r.bmi == 20.0 and not r.at_risk
    r = health.catin_risk(sex="L", weight_kg=50, height_cm=170, lila_cm=20, hb_g_dl=12.5)
    assert r.risks == ["underweight", "anaemia"]  # LiLA KEK counts for brides only


def test_catin_too_young_at_the_wedding() -> None:
    def risks(age: int) -> list[str]:
        return health.catin_risk(
            sex="P", weight_kg=50, height_cm=155, lila_cm=25, hb_g_dl=13, age_at_marriage=age
        ).risks

    # UU 16/2019: 19 is the minimum marriage age; a catin who turns 19 before the wedding is not too young.
    assert risks(18) == ["too_young"]
    assert risks(19) == []


def test_mkjp_and_kb_rules() -> None:
    assert [health.is_mkjp(m) for m in ("iud", "implant", "mow", "mop", "suntik", "pil", None)] == [
        True,
        True,
        True,
        True,
        False,
        False,
        False,
    ]
    adult = date(1995, 5, 5)
    errs = health.kb_status_errors(
        method="pil", reason_non_use="iat", since=TODAY, today=TODAY, sex="P", birth_date=adult
    )
    assert [e["rule"] for e in errs] == ["kb.reason_for_user"]


def _kb(method: str | None, sex: str, birth: date, since: date = TODAY) -> list[tuple[str, str]]:
    errs = health.kb_status_errors(
        method=method,
        reason_non_use=None if method else "iat",
        since=since,
        today=TODAY,
        sex=sex,
        birth_date=birth,
    )
    return [(e["field"], e["rule"]) for e in errs]


@pytest.mark.parametrize("method", ["iud", "implant", "mow", "suntik", "pil", "mal"])
def test_womens_methods_are_refused_for_a_man(method: str) -> None:
    assert _kb(method, "P", date(1995, 5, 5)) == []
    assert _kb(method, "L", date(1995, 5, 5)) == [("body.method", "kb.method_sex")]


@pytest.mark.parametrize(("method", "sex", "ok"), [("mop", "L", True), ("mop", "P", False)])
def test_mop_only_for_a_man(method: str, sex: str, ok: bool) -> None:
    assert (_kb(method, sex, date(1990, 1, 1)) == []) is ok


@pytest.mark.parametrize("method", ["kondom", "tradisional"])
@pytest.mark.parametrize("sex", ["L", "P"])
def test_the_couples_methods_for_either_partner(method: str, sex: str) -> None:
    assert _kb(method, sex, date(1990, 1, 1)) == []


def test_a_method_only_from_ten_completed_years_at_since() -> None:
    four = date(TODAY.year - 4, 1, 1)
    assert _kb("implant", "P", four) == [("body.method", "kb.method_age")]
    assert _kb("kondom", "L", four) == [("body.method", "kb.method_age")]
    # The day before and the day of the 10th birthday (a non-user may be recorded at any age).
    born = date(2014, 6, 15)
    assert _kb("suntik", "P", born, since=date(2024, 6, 14)) == [("body.method", "kb.method_age")]
    assert _kb("suntik", "P", born, since=date(2024, 6, 15)) == []
    assert _kb(None, "P", four) == []


def test_since_between_birth_and_today() -> None:
    born = date(1995, 5, 5)
    assert _kb("pil", "P", born, since=date(1995, 5, 4)) == [("body.since", "kb.since_before_birth")]
    assert _kb("pil", "P", born, since=TODAY + timedelta(days=1)) == [("body.since", "kb.since_future")]


def test_stunting_decisions() -> None:
    born, young = date(2025, 1, 10), date(2025, 6, 1)
    assert growth.stunting_severity(-2.01, False, born, young) == "stunted"
    assert growth.stunting_severity(-3.01, False, born, young) == "severely_stunted"
    assert growth.stunting_severity(-2.0, False, born, young) is None
    assert growth.stunting_severity(-6.5, True, born, young) is None  # flagged
    # Baduta = fewer than 24 completed months (shared/ages): the day before the 2nd birthday still counts, the
    # birthday itself does not. Born 2023-06-01, the 2nd birthday is 731 days later (29 Feb 2024 in between), so
    # on day 730 the child is still a baduta, which the old "age_days < 730" rule refused.
    born = date(2023, 6, 1)
    assert (date(2025, 5, 31) - born).days == 730
    assert growth.stunting_severity(-2.5, False, born, date(2025, 5, 31)) == "stunted"
    assert growth.stunting_severity(-2.5, False, born, date(2025, 6, 1)) is None  # not a baduta
    # Without a leap day in between the 2nd birthday is day 730: day 729 counts, day 730 does not.
    born = date(2024, 3, 1)
    assert growth.stunting_severity(-2.5, False, born, date(2026, 2, 28)) == "stunted"
    assert growth.stunting_severity(-2.5, False, born, date(2026, 3, 1)) is None
    case = growth.CaseView("m1", date(2026, 6, 1))
    assert (
        growth.decide_on_measurement(severity="stunted", not_stunted=False, measured_on=TODAY, open_case=None)
        == "open"
    )
    assert (
        growth.decide_on_measurement(severity="stunted", not_stunted=False, measured_on=TODAY, open_case=case)
        == "none"
    )
    assert (
        growth.decide_on_measurement(severity=None, not_stunted=True, measured_on=TODAY, open_case=case)
        == "resolve"
    )
    assert (
        growth.decide_on_measurement(
            severity=None, not_stunted=True, measured_on=date(2026, 5, 1), open_case=case
        )
        == "none"
    )
    assert growth.decide_on_correction(caused_case=True, new_severity=None) == "retract"
    assert growth.decide_on_correction(caused_case=True, new_severity="stunted") == "repoint"
    assert growth.decide_on_correction(caused_case=False, new_severity="stunted") == "none"


def test_measurement_rules() -> None:
    def rules_of(**kw: object) -> list[str]:
        args = {
            "birth_date": date(2025, 1, 1),
            "measured_on": date(2026, 1, 1),
            "today": TODAY,
            "weight_kg": 9.0,
            "lenhei_cm": 75.0,
            "position": "l",
        }
        args.update(kw)
        return [e["rule"] for e in growth.measurement_errors(**args)]  # type: ignore[arg-type]

    assert rules_of() == []
    assert rules_of(measured_on=date(2024, 12, 31)) == ["measurement.before_birth"]
    assert rules_of(birth_date=date(2020, 1, 1)) == ["measurement.over_60_months"]
    assert rules_of(weight_kg=0.5) == ["measurement.weight_range"]
    assert rules_of(lenhei_cm=150.0) == ["measurement.length_range"]
    assert rules_of(position=None) == ["measurement.position_required"]
    assert rules_of(weight_kg=None, lenhei_cm=None) == ["measurement.empty"]


def _key() -> str:
    return base64.b64encode(bytes(range(32))).decode()


def test_vault_roundtrip_rotation_and_binding() -> None:
    old = PiiVault([("k1", bytes(32))], bytes(range(32)))
    sealed = old.seal("nik", "1571010101900001", owner := uuid.uuid4())
    assert b"1571010101900001" not in sealed.blob and sealed.key_id == "k1"
    rotated = PiiVault([("k2", bytes([7]) * 32), ("k1", bytes(32))], bytes(range(32)))
    assert rotated.open("nik", sealed, owner) == "1571010101900001" and rotated.needs_rotation(sealed)
    assert rotated.seal("nik", "x", owner).key_id == "k2"
    with pytest.raises(InvalidTag):
        rotated.open("nik", sealed, uuid.uuid4())  # bound to its row
    with pytest.raises(InvalidTag):
        rotated.open("kk", sealed, owner)  # and to its kind
    assert old.index("nik", "1") == rotated.index("nik", "1") != old.index("kk", "1")
    with pytest.raises(LookupError):
        PiiVault([("k3", bytes(32))], bytes(range(32))).open("nik", Sealed("k9", sealed.blob), owner)


def test_vault_settings_formats_and_production_refusal() -> None:
    s = Settings(nik_encryption_keys=f"a:{_key()},b:{_key()}", nik_index_key=_key())
    assert PiiVault.from_settings(s).current_kid == "a"
    s = Settings(nik_encryption_keys=f'{{"j1": "{_key()}"}}', nik_index_key=_key())
    assert PiiVault.from_settings(s).current_kid == "j1"
    with pytest.raises(ValueError, match="32 bytes"):
        PiiVault.from_settings(Settings(nik_encryption_keys="a:AAAA", nik_index_key=_key()))
    with pytest.raises(ValueError, match="placeholder"):
        Settings(
            environment="production",
            nik_encryption_keys="",
            nik_index_key=_key(),
            jwt_public_key_file="/k.pem",
        )
    with pytest.raises(ValueError, match="placeholder"):
        Settings(
            environment="production",
            nik_encryption_keys=f"dev-1:{_key()}",
            nik_index_key=_key(),
            jwt_public_key_file="/k.pem",
        )
    dev = PiiVault.from_settings(Settings())
    assert dev.current_kid == "dev-1"
