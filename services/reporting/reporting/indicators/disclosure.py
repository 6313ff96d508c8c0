"""Small-cell protection of public statistics: primary suppression and the complementary cells that keep it.

Primary: for `reporting:public`, a count of 1-4 at village level and below is hidden. Alone that protects nothing:
a hidden cell comes back by subtraction wherever figures add up (`kb_users` minus the other methods, a ratio's
numerator from its visible total, a district minus its other villages) or by multiplication (a ratio times its
visible denominator). So, as statistical offices do (complementary or secondary suppression, e.g. Eurostat's
"Handbook on Statistical Disclosure Control", ch. 4):

- every additive relation `total = part + part + ...` that holds in one response may not have exactly one hidden
  member: one more is hidden, the smallest non-zero visible part (else the total), until no relation has one;
- a ratio is hidden whenever its numerator or denominator is;
- across the villages of one district (whose own figures are public), each figure may not be hidden in exactly one
  village: the smallest non-zero other village's cell is hidden too, and that re-runs the rules inside its row;
- a public summary of one village shows exactly the cells its row has in its district's breakdown, so asking
  village by village gives nothing the breakdown does not.

Kampung KB and kitchen rows are protected inside each response only (they do not partition a parent region).
Flows are not protected across periods (a quarter minus two of its months): public series are at one grain.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import get_args

from reporting.indicators.domain import (
    ACTIVITY_TYPES,
    ANAEMIA_GRADES,
    DENOMINATOR,
    NUMERATOR,
    PUBLIC_MIN_COUNT,
    Value,
    unit_of,
)
from shared.events.vocab import (
    MKJP_METHODS,
    MODERN_METHODS,
    DashatCategory,
    ExitReason,
    KbMethod,
    NonUseReason,
    UppkaCategory,
    WaitlistReason,
)

Relation = tuple[str, tuple[str, ...]]
_ELIGIBLE = ("catin", "ibu_hamil", "ibu_menyusui", "stunted_children")

# The counts each ratio is built from: (numerator parts, denominator parts). Every ratio of the catalogue is here
# (a test keeps it so), or its sides could be back-solved from the counts shown beside it.
RATIO_SIDES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "cpr": (("kb_users",), ("pus",)),
    "mkjp_share": (("mkjp_users",), ("kb_users",)),
    "unmet_need": (("non_users_iat", "non_users_tial"), ("pus",)),
    "mcpr": (("kb_modern_users",), ("pus",)),
    "kb_mandiri_share": (("kb_mandiri",), ("kb_users",)),
    "kb_lestari_mkjp_share": (("kb_lestari_mkjp",), ("kb_users",)),
    "stunting_prevalence": (("baduta_stunted",), ("baduta_measured",)),
    "severe_stunting_prevalence": (("baduta_severely_stunted",), ("baduta_measured",)),
    "balita_stunting_prevalence": (("balita_stunted",), ("balita_measured",)),
    "balita_severe_stunting_prevalence": (("balita_severely_stunted",), ("balita_measured",)),
    "krs_share": (("krs_families",), ("target_families",)),
    "catin_at_risk_share": (("catin_at_risk",), ("catin_screened",)),
    "pregnancies_kek_share": (("pregnancies_kek",), ()),
    "pregnancies_anaemia_share": (("pregnancies_anaemia",), ()),
    # Enrolled in kitchens with a Kampung KB area: not `dashat_beneficiaries` (all kitchens), a cell of its own.
    "dashat_coverage": ((), ("dashat_eligible_targets",)),
    "uppka_reporting_rate": (("uppka_reports_on_time",), ("uppka_groups_due",)),
    "uppka_reporting_completeness": (("uppka_reports_on_time", "uppka_reports_late"), ("uppka_groups_due",)),
    "uppka_members_kb_participation": (("uppka_members_pus_kb_users",), ("uppka_members_pus",)),
    "uppka_members_mkjp_share": (("uppka_members_mkjp",), ("uppka_members_kb_users",)),
    "uppka_attendance_rate": (("uppka_members_present",), ()),
    "uppka_target_progress": (("uppka_groups_active_kampung_kb",), ("uppka_target_groups",)),
}

# Totals and the parts they are the sum of. A relation that only bounds its total (PUS >= users + non-users with
# a reason) is listed too: treating it as exact can only hide more, never reveal.
ADDITIVE: list[Relation] = [
    ("kb_users", tuple(f"kb_users_{m}" for m in get_args(KbMethod))),
    ("mkjp_users", tuple(f"kb_users_{m}" for m in sorted(MKJP_METHODS))),
    ("kb_modern_users", tuple(f"kb_users_{m}" for m in sorted(MODERN_METHODS))),
    ("pus", ("kb_users", *(f"non_users_{r}" for r in get_args(NonUseReason)))),
    ("uppka_members", tuple(f"uppka_members_{c}" for c in get_args(UppkaCategory))),
    ("dashat_beneficiaries", tuple(f"dashat_beneficiaries_{c}" for c in get_args(DashatCategory))),
    ("dashat_exited", tuple(f"dashat_exited_{r}" for r in get_args(ExitReason))),
    ("dashat_waitlisted", tuple(f"dashat_waitlisted_{r}" for r in get_args(WaitlistReason))),
    ("uppka_groups_due", ("uppka_reports_on_time", "uppka_reports_late", "uppka_reports_missing")),
    ("dashat_eligible_targets", tuple(f"dashat_eligible_{t}" for t in _ELIGIBLE)),
    ("pregnancies_anaemia", tuple(f"pregnancies_anaemia_{a}" for a in ANAEMIA_GRADES)),
    ("uppka_activities", tuple(f"uppka_activities_{t}" for t in ACTIVITY_TYPES)),
    ("uppka_activity_attendance", tuple(f"uppka_activity_attendance_{t}" for t in ACTIVITY_TYPES)),
]

# Distribution figures over fewer than PUBLIC_MIN_COUNT entities would describe individuals.
_DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "dashat_haz_children": ("dashat_haz_change_mean",),
    "dashat_enrolled": ("dashat_enrolment_days_median", "dashat_enrolment_days_p90"),
}


def relations(values: Mapping[str, Value]) -> list[Relation]:
    """The relations that hold among the figures of one response (those whose members it has)."""
    out: list[Relation] = []
    candidates = list(ADDITIVE)
    for ratio, (numerator, denominator) in RATIO_SIDES.items():
        candidates += [(ratio + NUMERATOR, numerator), (ratio + DENOMINATOR, denominator)]
    for total, parts in candidates:
        present = tuple(p for p in parts if p in values)
        if total in values and present:
            out.append((total, present))
    return out


def _is_small(value: Value, min_count: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < min_count


def primary(values: Mapping[str, Value], min_count: int = PUBLIC_MIN_COUNT) -> set[str]:
    """The counts too small to show."""
    return {k for k, v in values.items() if unit_of(k) == "count" and _is_small(v, min_count)}


def _complement(
    values: Mapping[str, Value], total: str, parts: tuple[str, ...], hidden: set[str]
) -> str | None:
    def size(name: str) -> int:
        v = values.get(name)
        return int(v) if isinstance(v, int | float) else 0

    nonzero = sorted((p for p in parts if p not in hidden and size(p) > 0), key=lambda p: (size(p), p))
    if nonzero:
        return nonzero[0]
    if total not in hidden:
        return total  # the hidden part is the total minus zeros
    # A hidden total over parts that are all zero: the relation cannot be exact (the total is not zero), so
    # nothing can be solved from it.
    return None


def complete(values: Mapping[str, Value], hidden: set[str]) -> set[str]:
    """Grow `hidden` until no relation of `values` has exactly one hidden member."""
    hidden = set(hidden)
    rels = relations(values)
    changed = True
    while changed:
        changed = False
        for total, parts in rels:
            members = (total, *parts)
            if sum(m in hidden for m in members) != 1:
                continue
            pick = _complement(values, total, parts, hidden)
            if pick is not None:
                hidden.add(pick)
                changed = True
    return hidden


def apply(
    values: Mapping[str, Value], hidden: set[str], min_count: int = PUBLIC_MIN_COUNT
) -> dict[str, Value]:
    """The response with the hidden cells, the ratios on them and small distributions set to None."""
    out: dict[str, Value] = dict(values)
    for name in hidden:
        if name in out:
            out[name] = None
    for name in values:
        if unit_of(name) == "ratio" and (name + NUMERATOR in hidden or name + DENOMINATOR in hidden):
            out[name] = None
    for count, figures in _DISTRIBUTIONS.items():
        if _is_small(values.get(count), min_count):
            for figure in figures:
                if figure in out:
                    out[figure] = None
    return out


def protect(values: Mapping[str, Value], min_count: int = PUBLIC_MIN_COUNT) -> dict[str, Value]:
    """One response on its own: primary and complementary suppression."""
    return apply(values, complete(values, primary(values, min_count)), min_count)


def protect_siblings(
    rows: Mapping[str, Mapping[str, Value]], min_count: int = PUBLIC_MIN_COUNT
) -> dict[str, dict[str, Value]]:
    """Regions that partition a public parent (the villages of one district), protected together.

    For each count, one village alone hidden would come back as the parent's figure minus the others: the
    smallest non-zero other village's cell is hidden too, which may start new complements inside that row.
    """
    hidden = {code: complete(values, primary(values, min_count)) for code, values in rows.items()}
    names = sorted({n for values in rows.values() for n in values if unit_of(n) == "count"})
    changed = True
    while changed:
        changed = False
        for name in names:
            holders = [code for code in rows if name in rows[code]]
            if sum(name in hidden[code] for code in holders) != 1:
                continue
            others = [c for c in holders if name not in hidden[c] and isinstance(rows[c][name], int)]
            nonzero = sorted(
                (c for c in others if int(rows[c][name] or 0) > 0), key=lambda c: (rows[c][name], c)
            )
            if not nonzero:
                continue  # every other village has none: the parent's own public figure already says it all
            pick = nonzero[0]
            hidden[pick] = complete(rows[pick], hidden[pick] | {name})
            changed = True
    return {code: apply(rows[code], hidden[code], min_count) for code in rows}
