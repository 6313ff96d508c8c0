"""Pure indicator rules: periods, BKKBN indicator formulas, small-cell suppression, labels. No I/O."""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Literal, get_args

from reporting.projection.domain import AREA_STOCKS, RUNWAY_THRESHOLD_DAYS, runway_days
from shared.errors import ValidationFailed
from shared.events import uppka as ue
from shared.events.vocab import (
    DashatCategory,
    ExitReason,
    ExpenseCategory,
    FundSource,
    KbMethod,
    NonUseReason,
    UppkaCategory,
    WaitlistReason,
)

Grain = Literal["m", "q", "y"]
Unit = Literal["count", "ratio", "rupiah", "days", "z"]
Value = int | float | None

PUBLIC_MIN_COUNT = 5  # counts 1-4 are suppressed at village level and below for `reporting:public`

_PERIOD = re.compile(r"^(\d{4})(?:-(0[1-9]|1[0-2])|-Q([1-4]))?$")


@dataclass(frozen=True, order=True)
class Period:
    """A month, quarter or year: `start` is its first month, `last` its last month (both first days)."""

    grain: Grain
    start: date
    last: date

    @property
    def label(self) -> str:
        if self.grain == "m":
            return f"{self.start.year}-{self.start.month:02d}"
        if self.grain == "q":
            return f"{self.start.year}-Q{(self.start.month - 1) // 3 + 1}"
        return str(self.start.year)

    @property
    def end_day(self) -> date:
        """The last day of the period (stocks are reported as at this day)."""
        return self.last.replace(day=calendar.monthrange(self.last.year, self.last.month)[1])

    def next(self) -> Period:
        months = {"m": 1, "q": 3, "y": 12}[self.grain]
        return _period(self.grain, _add_months(self.start, months))


def _add_months(d: date, n: int) -> date:
    y, m = divmod(d.month - 1 + n, 12)
    return date(d.year + y, m + 1, 1)


def _period(grain: Grain, start: date) -> Period:
    months = {"m": 1, "q": 3, "y": 12}[grain]
    return Period(grain, start, _add_months(start, months - 1))


def parse_period(text: str, field_name: str = "query.period") -> Period:
    """`YYYY-MM`, `YYYY-Qn` or `YYYY`; anything else is a 422 naming the field."""
    match = _PERIOD.match(text.strip())
    if not match:
        raise ValidationFailed(
            f"period must be YYYY-MM, YYYY-Qn or YYYY, not {text!r}", field=field_name, rule="period.format"
        )
    year = int(match.group(1))
    if year < 1970 or year > 2100:
        raise ValidationFailed("period year out of range", field=field_name, rule="period.range")
    if match.group(2):
        return _period("m", date(year, int(match.group(2)), 1))
    if match.group(3):
        return _period("q", date(year, 3 * (int(match.group(3)) - 1) + 1, 1))
    return _period("y", date(year, 1, 1))


def periods_between(first: Period, last: Period, max_points: int = 240) -> list[Period]:
    """Every period from `first` to `last` inclusive (same grain)."""
    if first.grain != last.grain:
        raise ValidationFailed(
            "from and to must have the same granularity", field="query.to", rule="series.grain"
        )
    if last < first:
        raise ValidationFailed("to is before from", field="query.to", rule="series.order")
    out: list[Period] = []
    p = first
    while p <= last:
        out.append(p)
        if len(out) > max_points:
            raise ValidationFailed(f"at most {max_points} points", field="query.to", rule="series.length")
        p = p.next()
    return out


@dataclass(frozen=True)
class Indicator:
    name: str
    unit: Unit
    label_en: str
    label_id: str
    topic: str
    # The definition an officer signs (docs and OpenAPI): formula, numerator, denominator, BKKBN reference.
    definition: str = ""


def _ind(name: str, unit: Unit, en: str, id_: str, topic: str) -> Indicator:
    return Indicator(name, unit, en, id_, topic)


_R, _U, _D = "kencana.registry", "kencana.uppka", "kencana.dashat"
ACTIVITY_TYPES: tuple[str, ...] = get_args(ue.ActivityHeld.model_fields["activity_type"].annotation)
ANAEMIA_GRADES = ("mild", "moderate", "severe")

# Family planning figures counted per couple (PUS), from the registry's KB history (BKKBN definitions: a PUS is
# a KB participant, peserta KB aktif, when either partner uses a method; Kencana domain README, Contraception).
_PER_COUPLE = " Counted per couple: a PUS uses KB when the wife or her husband uses a method."
KB_INDICATORS: list[Indicator] = [
    Indicator(
        "kb_modern_users",
        "count",
        "KB users of a modern method (PUS)",
        "Peserta KB metode modern",
        _R,
        "PUS couples using a modern method (MOW, MOP, IUD, implant, suntik, pil, kondom, MAL) at the period's "
        "end." + _PER_COUPLE,
    ),
    Indicator(
        "mcpr",
        "ratio",
        "Modern contraceptive prevalence rate (mCPR)",
        "Angka prevalensi kontrasepsi modern (mCPR)",
        _R,
        "mcpr = kb_modern_users / pus at the period's end. Numerator: couples using a modern method (MOW, MOP, "
        "IUD, implant, suntik, pil, kondom, MAL; not traditional methods nor the legacy mal_tradisional). "
        "Denominator: PUS (married couples, wife 15-49). Source: registry KB status. BKKBN/FP2030 mCPR."
        + _PER_COUPLE,
    ),
    Indicator(
        "kb_new_acceptors",
        "count",
        "New KB acceptors",
        "Peserta KB baru",
        _R,
        "PUS couples starting a method in the period (dated by the KB status's `since`) after not using one: "
        "after a recorded non-use status, or a first-ever record whose use began after the wife's "
        "registration. A first record of use that began earlier is continuing use. BKKBN: peserta KB baru.",
    ),
    Indicator(
        "mkjp_switchers",
        "count",
        "Switchers to MKJP",
        "Peserta KB beralih ke MKJP",
        _R,
        "PUS couples moving in the period from a non-MKJP method to an MKJP one (IUD, implant, MOW, MOP), "
        "dated by the KB status's `since`. Source: registry KB history (previous method).",
    ),
    Indicator(
        "kb_mandiri",
        "count",
        "KB Mandiri users (private service)",
        "Peserta KB Mandiri",
        _R,
        "PUS couples using KB at the period's end whose method came from a private service (service_source "
        "swasta). BKKBN: KB Mandiri.",
    ),
    Indicator(
        "kb_mandiri_share",
        "ratio",
        "KB Mandiri share of KB users",
        "Proporsi KB Mandiri",
        _R,
        "kb_mandiri_share = kb_mandiri / kb_users at the period's end. Numerator: couples whose method came "
        "from a private service. Denominator: PUS couples using KB.",
    ),
    Indicator(
        "kb_lestari_mkjp",
        "count",
        "Continuing MKJP users (KB Lestari MKJP)",
        "Peserta KB Lestari MKJP",
        _R,
        "PUS couples using MKJP at the period's end whose MKJP use began before the period (MKJP users less "
        "those whose MKJP use began in the period). BKKBN: KB Lestari MKJP.",
    ),
    Indicator(
        "kb_lestari_mkjp_share",
        "ratio",
        "KB Lestari MKJP share of KB users",
        "Proporsi KB Lestari MKJP",
        _R,
        "kb_lestari_mkjp_share = kb_lestari_mkjp / kb_users at the period's end. Numerator: continuing MKJP "
        "couples. Denominator: PUS couples using KB.",
    ),
]
_DEFINED = {
    "pus": "PUS (Pasangan Usia Subur): married couples with the wife aged 15-49 at the period's end, derived from "
    "the wife's birth date and marriage (she leaves PUS in the month she completes 50). Source: registry.",
    "kb_users": "PUS couples using any method (incl. traditional and the legacy mal_tradisional) at the period's "
    "end." + _PER_COUPLE,
    "cpr": "cpr = kb_users / pus at the period's end. Numerator: PUS couples using any method. Denominator: PUS. "
    "BKKBN CPR (peserta KB aktif / PUS)." + _PER_COUPLE,
    "mkjp_users": "PUS couples using MKJP (IUD, implant, MOW, MOP; either partner) at the period's end.",
    "mkjp_share": "mkjp_share = mkjp_users / kb_users. Numerator: couples using MKJP (IUD, implant, MOW, MOP, "
    "either partner). Denominator: PUS couples using KB. BKKBN proporsi MKJP.",
    "unmet_need": "unmet_need = (non_users_iat + non_users_tial) / pus. Numerator: PUS couples using no method "
    "whose wife wants a child later (IAT) or no more children (TIAL). Denominator: PUS. BKKBN unmet need.",
    "uppka_members_pus_kb_users": "UPPKA members in category PUS using KB (their own KB status) at the period's "
    "end: the numerator of uppka_members_kb_participation. Source: uppka.member.joined/kb_status_changed.v1.",
    "uppka_members_kb_participation": "uppka_members_kb_participation = uppka_members_pus_kb_users / "
    "uppka_members_pus. Numerator: UPPKA members in category PUS using KB. Denominator: UPPKA members in "
    "category PUS (KB participation is a share of PUS; remaja and lansia are not couples of reproductive age).",
}


def _with_definition(i: Indicator) -> Indicator:
    text = _DEFINED.get(i.name)
    if text is None and i.name.startswith("kb_users_"):
        text = f"PUS couples whose method is {i.name.removeprefix('kb_users_')} at the period's end (the MKJP one "
        text += "when either partner uses MKJP, else a modern one, else the wife's)." + _PER_COUPLE
    return Indicator(i.name, i.unit, i.label_en, i.label_id, i.topic, text) if text else i


CATALOGUE: list[Indicator] = [
    _ind("families_registered", "count", "Families registered", "Keluarga terdaftar", _R),
    _ind("families_new", "count", "Families newly registered", "Keluarga baru terdaftar", _R),
    _ind("persons_registered", "count", "Persons registered", "Jiwa terdaftar", _R),
    _ind("pus", "count", "Eligible couples (PUS)", "Pasangan Usia Subur (PUS)", _R),
    _ind("kb_users", "count", "KB users (PUS)", "Peserta KB aktif (PUS)", _R),
    *[_ind(f"kb_users_{m}", "count", f"KB users: {m}", f"Peserta KB: {m}", _R) for m in get_args(KbMethod)],
    _ind("mkjp_users", "count", "MKJP users", "Peserta KB MKJP", _R),
    *[
        _ind(f"non_users_{r}", "count", f"PUS not using KB: {r}", f"PUS bukan peserta KB: {r}", _R)
        for r in get_args(NonUseReason)
    ],
    _ind("cpr", "ratio", "Contraceptive prevalence rate (CPR)", "Angka prevalensi kontrasepsi (CPR)", _R),
    _ind("mkjp_share", "ratio", "MKJP share of KB users", "Proporsi MKJP", _R),
    _ind("unmet_need", "ratio", "Unmet need", "Kebutuhan ber-KB tidak terpenuhi (unmet need)", _R),
    *KB_INDICATORS,
    _ind("baduta_measured", "count", "Baduta measured", "Baduta diukur", _R),
    _ind("baduta_stunted", "count", "Baduta stunted", "Baduta pendek (stunting)", _R),
    _ind("baduta_severely_stunted", "count", "Baduta severely stunted", "Baduta sangat pendek", _R),
    _ind("stunting_prevalence", "ratio", "Stunting prevalence (measured baduta)", "Prevalensi stunting", _R),
    _ind("severe_stunting_prevalence", "ratio", "Severe stunting prevalence", "Prevalensi sangat pendek", _R),
    _ind("stunting_new_cases", "count", "New stunting cases", "Kasus stunting baru", _R),
    _ind("stunting_resolved", "count", "Stunting cases resolved", "Kasus stunting teratasi", _R),
    _ind("stunting_retracted", "count", "Stunting cases retracted", "Kasus stunting dibatalkan", _R),
    _ind("stunting_open_cases", "count", "Open stunting cases", "Kasus stunting berjalan", _R),
    _ind("krs_families", "count", "Families at risk of stunting (KRS)", "Keluarga Risiko Stunting (KRS)", _R),
    _ind("krs_share", "ratio", "KRS share of families", "Proporsi KRS", _R),
    _ind("uppka_groups_existing", "count", "UPPKA groups existing", "Kelompok UPPKA yang ada", _U),
    _ind("uppka_groups_active", "count", "UPPKA groups active", "Kelompok UPPKA aktif", _U),
    _ind("uppka_groups_reporting", "count", "UPPKA groups reporting", "Kelompok UPPKA yang melapor", _U),
    _ind("uppka_reporting_rate", "ratio", "UPPKA reporting rate", "Persentase kelompok melapor", _U),
    _ind("uppka_members", "count", "UPPKA members", "Anggota UPPKA", _U),
    *[
        _ind(f"uppka_members_{c}", "count", f"UPPKA members: {c}", f"Anggota UPPKA: {c}", _U)
        for c in get_args(UppkaCategory)
    ],
    _ind("uppka_members_kb_users", "count", "UPPKA members using KB", "Anggota UPPKA peserta KB", _U),
    _ind(
        "uppka_members_pus_kb_users",
        "count",
        "UPPKA members in PUS using KB",
        "Anggota UPPKA (PUS) peserta KB",
        _U,
    ),
    _ind(
        "uppka_members_kb_participation",
        "ratio",
        "UPPKA members' KB participation",
        "Kesertaan KB anggota UPPKA",
        _U,
    ),
    _ind("uppka_members_mkjp", "count", "UPPKA members using MKJP", "Anggota UPPKA peserta MKJP", _U),
    _ind("uppka_members_mkjp_share", "ratio", "UPPKA members' MKJP share", "Proporsi MKJP anggota UPPKA", _U),
    _ind("uppka_members_present", "count", "Members present at meetings", "Anggota hadir pertemuan", _U),
    _ind("uppka_attendance_rate", "ratio", "Meeting attendance rate", "Tingkat kehadiran", _U),
    _ind("uppka_activity_attendance", "count", "PEK activity attendance", "Kehadiran kegiatan PEK", _U),
    _ind("uppka_omzet", "rupiah", "Turnover (omzet)", "Omzet", _U),
    _ind("uppka_profit", "rupiah", "Profit", "Keuntungan", _U),
    _ind("uppka_dashat_contributions", "rupiah", "Contributions to DASHAT", "Kontribusi ke DASHAT", _U),
    _ind("uppka_target_groups", "count", "Yearly UPPKA group target", "Target kelompok UPPKA", _U),
    _ind("uppka_target_progress", "ratio", "Progress against target", "Capaian terhadap target", _U),
    _ind("dashat_kitchens_active", "count", "DASHAT kitchens active", "Dapur DASHAT aktif", _D),
    _ind("dashat_beneficiaries", "count", "Beneficiaries enrolled", "Sasaran terdaftar", _D),
    *[
        _ind(f"dashat_beneficiaries_{c}", "count", f"Beneficiaries: {c}", f"Sasaran: {c}", _D)
        for c in get_args(DashatCategory)
    ],
    _ind("dashat_enrolled", "count", "Enrolments", "Pendaftaran sasaran", _D),
    _ind("dashat_exited", "count", "Exits", "Sasaran keluar", _D),
    *[_ind(f"dashat_exited_{r}", "count", f"Exits: {r}", f"Keluar: {r}", _D) for r in get_args(ExitReason)],
    _ind("dashat_waitlisted", "count", "Waitlisted", "Daftar tunggu", _D),
    *[
        _ind(f"dashat_waitlisted_{r}", "count", f"Waitlisted: {r}", f"Daftar tunggu: {r}", _D)
        for r in get_args(WaitlistReason)
    ],
    _ind(
        "dashat_enrolment_days_median",
        "days",
        "Detection to enrolment, median",
        "Deteksi ke pendaftaran, median",
        _D,
    ),
    _ind(
        "dashat_enrolment_days_p90", "days", "Detection to enrolment, p90", "Deteksi ke pendaftaran, p90", _D
    ),
    _ind("dashat_portions_served", "count", "Portions served", "Porsi tersaji", _D),
    _ind("dashat_portions_consumed", "count", "Portions consumed", "Porsi dikonsumsi", _D),
    _ind("dashat_expenses", "rupiah", "Expenses", "Belanja", _D),
    _ind("dashat_cost_per_portion", "rupiah", "Cost per portion", "Biaya per porsi", _D),
    _ind("dashat_funds", "rupiah", "Funds received", "Dana diterima", _D),
    *[_ind(f"dashat_funds_{s}", "rupiah", f"Funds: {s}", f"Dana: {s}", _D) for s in get_args(FundSource)],
    *[
        _ind(f"dashat_expenses_{c}", "rupiah", f"Expenses: {c}", f"Belanja: {c}", _D)
        for c in get_args(ExpenseCategory)
    ],
    _ind(
        "dashat_kitchens_low_runway", "count", "Kitchens under 30 days of runway", "Dapur dana < 30 hari", _D
    ),
    _ind("dashat_haz_children", "count", "Enrolled children with HAZ follow-up", "Anak dengan HAZ ulang", _D),
    _ind("dashat_haz_change_mean", "z", "Mean HAZ change of enrolled children", "Rerata perubahan HAZ", _D),
    _ind(
        "dashat_no_improvement", "count", "Children flagged without improvement", "Anak tanpa perbaikan", _D
    ),
]

# Issue 11's programme figures: (name, unit, English label, Indonesian label, topic, definition). The definition
# (formula, numerator, denominator, source) is published in the OpenAPI description of the indicator endpoints.
_PROGRAMME: list[tuple[str, Unit, str, str, str, str]] = [
    ("balita_measured", "count", "Balita measured", "Balita diukur", _R,
     "Children under five (< 60 completed months on the measurement day) with a valid, non-flagged HAZ, each "
     "child once per period. Source: registry.child.measured.v1."),
    ("balita_stunted", "count", "Balita stunted", "Balita pendek (stunting)", _R,
     "Measured balita whose latest measurement in the period has HAZ < -2 SD."),
    ("balita_severely_stunted", "count", "Balita severely stunted", "Balita sangat pendek", _R,
     "Measured balita whose latest measurement in the period has HAZ < -3 SD."),
    ("balita_stunting_prevalence", "ratio", "Stunting prevalence (measured balita)", "Prevalensi stunting balita",
     _R, "balita_stunted / balita_measured (SSGI headline, WHO 2006 HAZ < -2 SD). Source: "
     "registry.child.measured.v1."),
    ("balita_severe_stunting_prevalence", "ratio", "Severe stunting prevalence (balita)",
     "Prevalensi sangat pendek balita", _R, "balita_severely_stunted / balita_measured."),
    ("target_families", "count", "Target families (keluarga sasaran)", "Keluarga sasaran", _R,
     "Families with a PUS wife, a pregnant woman or a baduta/balita at the period's end, as the registry "
     "evaluates them (registry.family.stunting_risk_changed.v1 `target`)."),
    ("catin_screened", "count", "Catin screened", "Catin diperiksa", _R,
     "Brides- and grooms-to-be registered with their screening in the period. Source: "
     "registry.catin.registered.v1."),
    ("catin_at_risk", "count", "Catin at risk", "Catin berisiko", _R,
     "Catin screened in the period with a risky result (KEK, anaemia, underweight...)."),
    ("catin_at_risk_share", "ratio", "Share of catin at risk", "Proporsi catin berisiko", _R,
     "catin_at_risk / catin_screened. Source: registry.catin.registered.v1."),
    ("pregnancies_registered", "count", "Pregnancies registered", "Kehamilan terdaftar", _R,
     "Pregnancies registered in the period. Source: registry.pregnancy.registered.v1."),
    ("pregnancies_kek", "count", "Pregnancies with KEK", "Ibu hamil KEK", _R,
     "Pregnancies registered in the period with chronic energy deficiency (LiLA < 23.5 cm)."),
    ("pregnancies_kek_share", "ratio", "KEK share of pregnancies", "Proporsi ibu hamil KEK", _R,
     "pregnancies_kek / pregnancies registered with LiLA measured."),
    ("pregnancies_anaemia", "count", "Pregnancies with anaemia", "Ibu hamil anemia", _R,
     "Pregnancies registered in the period with Hb < 11 g/dL (mild 10-<11, moderate 7-<10, severe < 7)."),
    *[(f"pregnancies_anaemia_{a}", "count", f"Pregnancies with {a} anaemia", f"Ibu hamil anemia {a}", _R,
       f"Pregnancies registered in the period with {a} anaemia.") for a in ANAEMIA_GRADES],
    ("pregnancies_anaemia_share", "ratio", "Anaemia share of pregnancies", "Proporsi ibu hamil anemia", _R,
     "pregnancies_anaemia / pregnancies registered with Hb measured."),
    ("pregnant_women", "count", "Pregnant women", "Ibu hamil", _R,
     "Registered pregnancies not ended at the period's end (registry.pregnancy.registered/ended.v1)."),
    ("uppka_groups_due", "count", "UPPKA reports due (group-months)", "Laporan UPPKA wajib", _U,
     "Group-months due a report: groups founded by a month's last day and active on it, over the period's "
     "months whose deadline (the 10th of the next month) has passed. Source: uppka.group.*."),
    ("uppka_reports_on_time", "count", "UPPKA reports on time", "Laporan UPPKA tepat waktu", _U,
     "Reports of due group-months received by the deadline. Source: uppka.report.submitted.v1 (`late`)."),
    ("uppka_reports_late", "count", "UPPKA reports late", "Laporan UPPKA terlambat", _U,
     "Reports of due group-months received after the deadline."),
    ("uppka_reports_missing", "count", "UPPKA reports missing", "Laporan UPPKA tidak masuk", _U,
     "uppka_groups_due - on time - late."),
    ("uppka_reports_not_due", "count", "UPPKA reports not due yet", "Laporan UPPKA belum jatuh tempo", _U,
     "Group-months of the period whose deadline has not passed: not missing, not in the rate."),
    ("uppka_reporting_completeness", "ratio", "UPPKA reporting completeness", "Kelengkapan laporan UPPKA", _U,
     "(uppka_reports_on_time + uppka_reports_late) / uppka_groups_due (DHIS2 reporting rate)."),
    ("uppka_groups_active_kampung_kb", "count", "UPPKA Kampung KB groups active",
     "Kelompok UPPKA Kampung KB aktif", _U,
     "Groups in a Kampung KB, founded and active at the period's end (what the yearly target counts)."),
    ("uppka_activities", "count", "PEK activities held", "Kegiatan PEK", _U,
     "PEK activities held in the period. Source: uppka.activity.held.v1."),
    *[(f"uppka_activities_{t}", "count", f"PEK activities: {t}", f"Kegiatan PEK: {t}", _U,
       f"PEK activities of type {t} held in the period.") for t in ACTIVITY_TYPES],
    *[(f"uppka_activity_attendance_{t}", "count", f"PEK attendance: {t}", f"Kehadiran kegiatan PEK: {t}", _U,
       f"Attendance of the PEK activities of type {t} held in the period.") for t in ACTIVITY_TYPES],
    ("uppka_businesses", "count", "UPPKA businesses", "Usaha UPPKA", _U,
     "Businesses registered by the period's end. Source: uppka.business.registered.v1."),
    ("uppka_businesses_new", "count", "UPPKA businesses registered", "Usaha UPPKA baru", _U,
     "Businesses registered in the period."),
    ("uppka_businesses_supplying_dashat", "count", "UPPKA businesses supplying DASHAT",
     "Usaha UPPKA pemasok DASHAT", _U, "Businesses registered by the period's end that supply a DASHAT kitchen."),
    ("uppka_groups_contributing_dashat", "count", "UPPKA groups contributing to DASHAT",
     "Kelompok UPPKA berkontribusi ke DASHAT", _U,
     "Groups that made a contribution (cash or goods) to a DASHAT kitchen in the period, each once. Source: "
     "uppka.dashat_contribution.made.v1."),
    ("uppka_dashat_contributions_count", "count", "Contributions to DASHAT", "Jumlah kontribusi ke DASHAT", _U,
     "Contributions to DASHAT kitchens made in the period."),
    ("dashat_eligible_targets", "count", "DASHAT eligible targets", "Sasaran DASHAT layak", _D,
     "Targets at the period's end in the Kampung KB areas served by the region's open kitchens: catin until "
     "the planned marriage, pregnant women, mothers of a baby under six months born from a registered "
     "pregnancy, children with an open stunting case."),
    ("dashat_eligible_catin", "count", "Eligible: catin", "Sasaran layak: catin", _D, "Catin part of the above."),
    ("dashat_eligible_ibu_hamil", "count", "Eligible: pregnant", "Sasaran layak: ibu hamil", _D,
     "Pregnant women part of the above."),
    ("dashat_eligible_ibu_menyusui", "count", "Eligible: breastfeeding", "Sasaran layak: ibu menyusui", _D,
     "Breastfeeding mothers part of the above."),
    ("dashat_eligible_stunted_children", "count", "Eligible: stunted children", "Sasaran layak: anak stunting",
     _D, "Children with an open stunting case, part of the above."),
    ("dashat_coverage", "ratio", "DASHAT coverage", "Cakupan DASHAT", _D,
     "beneficiaries enrolled at the period's end at the kitchens serving a Kampung KB / dashat_eligible_targets "
     "(kitchens without a Kampung KB have no known area and are left out). Sources: dashat.beneficiary"
     ".enrolled/exited.v1; registry catin, pregnancy, stunting-case events."),
]  # fmt: skip
CATALOGUE += [Indicator(n, u, en, id_, t, d) for n, u, en, id_, t, d in _PROGRAMME]
_DEFINED |= {
    "uppka_reporting_rate": "uppka_reports_on_time / uppka_groups_due over the period's group-months whose "
    "deadline has passed (shared/uppka_reporting.py, the same rule as uppka's GET /v1/indicators/reporting); "
    "null while nothing is due yet (not_due), never 0%. A quarter or year sums its months.",
    "uppka_target_progress": "uppka_groups_active_kampung_kb / the province's yearly target (uppka.target.set.v1).",
    "krs_share": "krs_families / target_families (keluarga sasaran), not all families.",
    "stunting_prevalence": "baduta_stunted / baduta_measured: baduta = < 24 completed months (shared/ages.py).",
    "baduta_measured": "Baduta (< 24 completed months on the measurement day, shared/ages.py) with a valid, "
    "non-flagged HAZ in the period, each child once, by the latest such measurement. Source: "
    "registry.child.measured.v1.",
    "baduta_stunted": "Measured baduta whose latest measurement in the period has HAZ < -2 SD (WHO 2006).",
    "baduta_severely_stunted": "Measured baduta whose latest measurement in the period has HAZ < -3 SD.",
    "severe_stunting_prevalence": "baduta_severely_stunted / baduta_measured.",
    "krs_families": "Target families at risk of stunting (KRS) at the period's end, as the registry evaluates "
    "them (registry.family.stunting_risk_changed.v1).",
    "uppka_members_mkjp_share": "uppka_members_mkjp / uppka_members_kb_users.",
    "uppka_attendance_rate": "members present at the period's monthly meetings / active members reported.",
    "dashat_cost_per_portion": "dashat expenses / portions delivered, over the kitchens that have both in the "
    "period (same kitchens, same months). Sources: dashat.expense.recorded.v1, dashat.meals.served.v1.",
}
CATALOGUE = [_with_definition(i) for i in CATALOGUE]
BY_NAME: dict[str, Indicator] = {i.name: i for i in CATALOGUE}


def definitions_markdown() -> str:
    """The indicator definitions (formula, numerator, denominator, source) for the OpenAPI descriptions."""
    lines = [f"- `{i.name}` ({i.unit}): {i.definition}" for i in CATALOGUE if i.definition]
    return (
        "Indicator definitions (every ratio also comes as `<name>_numerator` and `<name>_denominator`):\n\n"
        + "\n".join(lines)
    )


COLUMN_LABELS_ID = {
    "region": "kode_wilayah",
    "region_name": "nama_wilayah",
    "period": "periode",
    "level": "tingkat",
}


def ratio(numerator: Value, denominator: Value) -> float | None:
    """numerator / denominator, or None when undefined (no denominator)."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return round(numerator / denominator, 6)


# DHS Guide to Statistics: a rate on fewer than 25 unweighted cases is not shown, 25-49 is shown in parentheses.
# Officers still see the figure (they know their villages), but it is flagged, never presented as a plain 100%.
SMALL_N = 25
NUMERATOR, DENOMINATOR = "_numerator", "_denominator"


def put_ratio(out: dict[str, Value], name: str, numerator: Value, denominator: Value) -> None:
    """A ratio with its numerator and denominator beside it (`<name>_numerator`, `<name>_denominator` = n)."""
    out[name] = ratio(numerator, denominator)
    out[name + NUMERATOR] = numerator
    out[name + DENOMINATOR] = denominator


def small_numbers(values: Mapping[str, Value], min_n: int = SMALL_N) -> list[str]:
    """The ratios whose denominator (n) is above zero but under `min_n`: too few cases to read as a rate."""
    flagged = []
    for name, value in values.items():
        if not name.endswith(DENOMINATOR) or not isinstance(value, int):
            continue
        if 0 < value < min_n and name.removesuffix(DENOMINATOR) in values:
            flagged.append(name.removesuffix(DENOMINATOR))
    return sorted(flagged)


@dataclass(frozen=True)
class Extras:
    """Indicators that are distributions over entities rather than sums of facts."""

    wait_days_median: float | None = None
    wait_days_p90: float | None = None
    extra: dict[str, Value] = field(default_factory=dict)


def programme_registry_figures(m: Mapping[str, int]) -> dict[str, Value]:
    """Balita stunting (SSGI), KRS over target families, catin screened and at risk, pregnancies' KEK/anaemia.

    balita_stunting_prevalence = stunted / measured balita (< 60 completed months, shared/ages.py; each child
    once per period, latest valid non-flagged measurement); krs_share = KRS families / target families
    (keluarga sasaran: PUS, pregnant, with a baduta/balita, as the registry evaluates them); catin_at_risk_share =
    catin screened at risk / catin screened; pregnancy KEK share over those with LiLA measured (LiLA < 23.5 cm),
    anaemia share over those with Hb measured (Hb < 11 g/dL).
    """

    def g(name: str) -> int:
        return int(m.get(name, 0))

    out: dict[str, Value] = {
        "balita_measured": g("d.stunting.balita.measured"),
        "balita_stunted": g("d.stunting.balita.stunted"),
        "balita_severely_stunted": g("d.stunting.balita.severe"),
        "target_families": g("s.krs.target_families"),
        "catin_screened": g("f.reg.catin"),
        "catin_at_risk": g("f.reg.catin_at_risk"),
        "pregnancies_registered": g("f.reg.pregnancies"),
        "pregnancies_kek": g("f.reg.pregnancies_kek"),
        "pregnancies_anaemia": g("f.reg.pregnancies_anaemia"),
        **{f"pregnancies_anaemia_{a}": g(f"f.reg.pregnancies_anaemia.{a}") for a in ANAEMIA_GRADES},
        "pregnant_women": g("s.reg.pregnant"),
    }
    put_ratio(
        out, "balita_stunting_prevalence", g("d.stunting.balita.stunted"), g("d.stunting.balita.measured")
    )
    put_ratio(
        out,
        "balita_severe_stunting_prevalence",
        g("d.stunting.balita.severe"),
        g("d.stunting.balita.measured"),
    )
    put_ratio(out, "krs_share", g("s.krs.families"), g("s.krs.target_families"))
    put_ratio(out, "catin_at_risk_share", g("f.reg.catin_at_risk"), g("f.reg.catin"))
    put_ratio(out, "pregnancies_kek_share", g("f.reg.pregnancies_kek"), g("f.reg.pregnancies_lila_measured"))
    put_ratio(
        out, "pregnancies_anaemia_share", g("f.reg.pregnancies_anaemia"), g("f.reg.pregnancies_hb_measured")
    )
    return out


def programme_uppka_figures(m: Mapping[str, int]) -> dict[str, Value]:
    """PEK activities by type and their attendance, businesses and those supplying DASHAT, groups contributing."""

    def g(name: str) -> int:
        return int(m.get(name, 0))

    out: dict[str, Value] = {
        "uppka_activities": g("f.uppka.activities"),
        "uppka_businesses": g("s.uppka.businesses"),
        "uppka_businesses_new": g("f.uppka.businesses"),
        "uppka_businesses_supplying_dashat": g("s.uppka.businesses_supplying_dashat"),
        "uppka_groups_contributing_dashat": g("d.uppka.groups_contributing_dashat"),
        "uppka_dashat_contributions_count": g("f.uppka.dashat_contributions_count"),
    }
    for t in ACTIVITY_TYPES:
        out[f"uppka_activities_{t}"] = g(f"f.uppka.activities.{t}")
        out[f"uppka_activity_attendance_{t}"] = g(f"f.uppka.activity_attendance.{t}")
    return out


# DASHAT targets (domain README: catin, ibu hamil, ibu menyusui, stunted baduta/balita) known to reporting:
# catin from screening until the planned marriage, pregnant women until the pregnancy ends, mothers until
# their baby (a birth the registry told) is six months old, children with an open stunting case.
ELIGIBLE_MEASURES = AREA_STOCKS


def dashat_kitchen_figures(
    enrolled: int, eligible: Mapping[str, int], kitchens: list[tuple[int, int]]
) -> dict[str, Value]:
    """DASHAT coverage and cost per portion of the kitchens of one region.

    dashat_coverage = beneficiaries enrolled at the period's end / eligible targets at the period's end in the
    Kampung KB areas served by the region's open kitchens (ELIGIBLE_MEASURES summed over those areas).
    dashat_cost_per_portion = expenses / portions delivered over the kitchens (and months) that have both in
    the period, so a kitchen's spending is never divided by another kitchen's portions; `kitchens` holds each
    kitchen's (expenses, portions delivered) in the period.
    """
    out: dict[str, Value] = {
        "dashat_eligible_targets": sum(int(eligible.get(k, 0)) for k in ELIGIBLE_MEASURES)
    }
    out |= {
        "dashat_eligible_catin": int(eligible.get("s.reg.catin_target", 0)),
        "dashat_eligible_ibu_hamil": int(eligible.get("s.reg.pregnant", 0)),
        "dashat_eligible_ibu_menyusui": int(eligible.get("s.reg.breastfeeding", 0)),
        "dashat_eligible_stunted_children": int(eligible.get("s.stunting.open_cases", 0)),
    }
    put_ratio(out, "dashat_coverage", enrolled, out["dashat_eligible_targets"])
    both = [(e, p) for e, p in kitchens if e > 0 and p > 0]
    spent, portions = sum(e for e, _ in both), sum(p for _, p in both)
    put_ratio(out, "dashat_cost_per_portion", spent, portions)
    out["dashat_cost_per_portion"] = round(spent / portions, 2) if portions else None
    return out


def uppka_reporting_figures(m: Mapping[str, int]) -> dict[str, Value]:
    """The UPPKA reporting rate as shared/uppka_reporting.py defines it (the same rule as uppka's own API).

    Group-months due = groups founded and active at a month's end, over the period's months whose report
    deadline has passed; `uppka_reporting_rate` = on time / due, `uppka_reporting_completeness` = on time and
    late / due; the group-months whose deadline is still ahead are `uppka_reports_not_due`, never missing.
    """
    due, on_time, late = (int(m.get(f"w.uppka.{k}", 0)) for k in ("due", "on_time", "late"))
    out: dict[str, Value] = {
        "uppka_groups_due": due,
        "uppka_reports_on_time": on_time,
        "uppka_reports_late": late,
        "uppka_reports_missing": max(due - on_time - late, 0),
        "uppka_reports_not_due": max(int(m.get("w.uppka.expected", 0)) - due, 0),
    }
    put_ratio(out, "uppka_reporting_rate", on_time, due)
    put_ratio(out, "uppka_reporting_completeness", on_time + late, due)
    return out


def family_planning(out: dict[str, Value], m: Mapping[str, int]) -> None:
    """The per-couple family planning figures beyond CPR (BKKBN definitions; the projection counts couples).

    mCPR = couples using a modern method (MOW, MOP, IUD, implant, suntik, pil, kondom, MAL) / PUS: the
    legacy `mal_tradisional` and `tradisional` count in CPR, never in mCPR. New acceptors (peserta KB baru)
    and MKJP switchers are flows over the period, dated by the KB status's effective date. KB Mandiri =
    couples whose method comes from a private service (swasta); KB Lestari MKJP = couples using MKJP at the
    period's end whose MKJP use began before the period; both also as shares of KB users.
    """

    def g(name: str) -> int:
        return int(m.get(name, 0))

    lestari = g("s.kb.mkjp_users") - g("d.kb.mkjp_new")
    out |= {
        "kb_modern_users": g("s.kb.modern_users"),
        "kb_new_acceptors": g("f.kb.new_acceptors"),
        "mkjp_switchers": g("f.kb.mkjp_switchers"),
        "kb_mandiri": g("s.kb.mandiri"),
        "kb_lestari_mkjp": lestari,
    }
    put_ratio(out, "mcpr", g("s.kb.modern_users"), g("s.kb.pus"))
    put_ratio(out, "kb_mandiri_share", g("s.kb.mandiri"), g("s.kb.users"))
    put_ratio(out, "kb_lestari_mkjp_share", lestari, g("s.kb.users"))


def compute(m: Mapping[str, int], extras: Extras | None = None) -> dict[str, Value]:
    """Every indicator of the catalogue from the period-resolved measures of one region (BKKBN formulas).

    CPR = KB users / PUS; MKJP share = MKJP users / KB users; unmet need = (IAT + TIAL non-users) / PUS;
    stunting prevalence = stunted / measured (non-flagged measurements of baduta, each child once).
    """
    x = extras or Extras()

    def g(name: str) -> int:
        return int(m.get(name, 0))

    out: dict[str, Value] = {
        "families_registered": g("s.reg.families"),
        "families_new": g("f.reg.new_families"),
        "persons_registered": g("s.reg.persons"),
        "pus": g("s.kb.pus"),
        "kb_users": g("s.kb.users"),
        "mkjp_users": g("s.kb.mkjp_users"),
    }
    for method in get_args(KbMethod):
        out[f"kb_users_{method}"] = g(f"s.kb.method.{method}")
    for reason in get_args(NonUseReason):
        out[f"non_users_{reason}"] = g(f"s.kb.nonuse.{reason}")
    put_ratio(out, "cpr", g("s.kb.users"), g("s.kb.pus"))
    put_ratio(out, "mkjp_share", g("s.kb.mkjp_users"), g("s.kb.users"))
    put_ratio(out, "unmet_need", g("s.kb.nonuse.iat") + g("s.kb.nonuse.tial"), g("s.kb.pus"))
    family_planning(out, m)
    out |= {
        "baduta_measured": g("d.stunting.measured"),
        "baduta_stunted": g("d.stunting.stunted"),
        "baduta_severely_stunted": g("d.stunting.severe"),
        "stunting_new_cases": g("f.stunting.new_cases"),
        "stunting_resolved": g("f.stunting.resolved"),
        "stunting_retracted": g("f.stunting.retracted"),
        "stunting_open_cases": g("s.stunting.open_cases"),
        "krs_families": g("s.krs.families"),
    }
    put_ratio(out, "stunting_prevalence", g("d.stunting.stunted"), g("d.stunting.measured"))
    put_ratio(out, "severe_stunting_prevalence", g("d.stunting.severe"), g("d.stunting.measured"))
    out |= programme_registry_figures(m)
    for name in sorted(m):
        if name.startswith("s.krs.reason."):
            out[f"krs_reason_{name.removeprefix('s.krs.reason.')}"] = g(name)
    target = g("d.uppka.target_groups")
    out |= {
        "uppka_groups_existing": g("s.uppka.groups_existing"),
        "uppka_groups_active": g("s.uppka.groups_active"),
        "uppka_groups_reporting": g("d.uppka.groups_reporting"),
        "uppka_members": g("s.uppka.members"),
        "uppka_members_kb_users": g("s.uppka.members_kb_users"),
        "uppka_members_mkjp": g("s.uppka.members_mkjp"),
        "uppka_members_present": g("f.uppka.members_present"),
        "uppka_activity_attendance": g("f.uppka.activity_attendance"),
        "uppka_omzet": g("f.uppka.omzet"),
        "uppka_profit": g("f.uppka.profit"),
        "uppka_dashat_contributions": g("f.uppka.dashat_contributions"),
        "uppka_target_groups": target if target else None,
    }
    out |= uppka_reporting_figures(m)
    # Over PUS members (BKKBN's KB participation is a share of PUS; remaja and lansia are not couples).
    put_ratio(
        out, "uppka_members_kb_participation", g("s.uppka.members_pus_kb_users"), g("s.uppka.members.pus")
    )
    out["uppka_members_pus_kb_users"] = g("s.uppka.members_pus_kb_users")
    put_ratio(out, "uppka_members_mkjp_share", g("s.uppka.members_mkjp"), g("s.uppka.members_kb_users"))
    put_ratio(out, "uppka_attendance_rate", g("f.uppka.members_present"), g("f.uppka.active_members"))
    # Progress counts Kampung KB groups active at the period's end: the yearly target is for Kampung KB.
    out["uppka_groups_active_kampung_kb"] = g("s.uppka.groups_active_kkb")
    put_ratio(out, "uppka_target_progress", g("s.uppka.groups_active_kkb"), target if target else None)
    for cat in get_args(UppkaCategory):
        out[f"uppka_members_{cat}"] = g(f"s.uppka.members.{cat}")
    portions = g("f.dashat.portions_delivered")
    out |= {
        "dashat_kitchens_active": g("s.dashat.kitchens_active"),
        "dashat_beneficiaries": g("s.dashat.beneficiaries"),
        "dashat_enrolled": g("f.dashat.enrolled"),
        "dashat_exited": g("f.dashat.exited"),
        "dashat_waitlisted": g("f.dashat.waitlisted"),
        "dashat_enrolment_days_median": x.wait_days_median,
        "dashat_enrolment_days_p90": x.wait_days_p90,
        "dashat_portions_served": portions,
        "dashat_portions_consumed": g("f.dashat.portions_consumed"),
        "dashat_expenses": g("f.dashat.expenses"),
        "dashat_funds": g("f.dashat.funds"),
        "dashat_kitchens_low_runway": g("d.dashat.kitchens_low_runway"),
        "dashat_haz_children": g("s.dashat.haz_children"),
        "dashat_haz_change_mean": (
            None
            if not g("s.dashat.haz_children")
            else round(g("s.dashat.haz_change_milli") / 1000 / g("s.dashat.haz_children"), 3)
        ),
        "dashat_no_improvement": g("f.dashat.no_improvement"),
    }
    for cat in get_args(DashatCategory):
        out[f"dashat_beneficiaries_{cat}"] = g(f"s.dashat.beneficiaries.{cat}")
    for reason in get_args(ExitReason):
        out[f"dashat_exited_{reason}"] = g(f"f.dashat.exited.{reason}")
    for wreason in get_args(WaitlistReason):
        out[f"dashat_waitlisted_{wreason}"] = g(f"f.dashat.waitlisted.{wreason}")
    for source in get_args(FundSource):
        out[f"dashat_funds_{source}"] = g(f"f.dashat.funds.{source}")
    for cat in get_args(ExpenseCategory):
        out[f"dashat_expenses_{cat}"] = g(f"f.dashat.expenses.{cat}")
    out |= programme_uppka_figures(m)
    # Without the per-kitchen figures (service.py reads them), the region counts as one kitchen.
    out |= dashat_kitchen_figures(
        g("s.dashat.beneficiaries"), {}, [(g("f.dashat.expenses"), g("f.dashat.portions_delivered"))]
    )
    out |= x.extra
    return out


def low_runway(kitchens: list[tuple[int, int]], days: int, threshold: float = RUNWAY_THRESHOLD_DAYS) -> int:
    """How many (balance, spent in the last month) kitchens have under `threshold` days of runway."""
    count = 0
    for balance, spent in kitchens:
        runway = runway_days(balance, spent, days)
        if runway is not None and runway < threshold:
            count += 1
    return count


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (as PostgreSQL percentile_cont); None for no values."""
    if not values:
        return None
    s = sorted(values)
    pos = (len(s) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def unit_of(name: str) -> Unit:
    ind = BY_NAME.get(name)
    return ind.unit if ind is not None else "count"


def label(name: str, lang: str) -> str:
    """Column label of an indicator (Indonesian with lang=id, else the indicator's name)."""
    if lang == "id":
        ind = BY_NAME.get(name)
        if ind is not None:
            return ind.label_id
        if name.startswith("krs_reason_"):
            return f"KRS alasan: {name.removeprefix('krs_reason_')}"
        for suffix, word in ((NUMERATOR, "pembilang"), (DENOMINATOR, "penyebut")):
            if name.endswith(suffix) and name.removesuffix(suffix) in BY_NAME:
                return f"{BY_NAME[name.removesuffix(suffix)].label_id} ({word})"
        return COLUMN_LABELS_ID.get(name, name)
    return name
