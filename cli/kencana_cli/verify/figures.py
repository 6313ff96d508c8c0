"""Pure rules of `kencana reporting verify`: periods, the figures recounted from the sources, the comparison.

The source services count facts (`GET /v1/statistics`); the ratios are formed here with the definitions of
docs/indicators.md, so that reporting's formulas are checked too, not only its counts.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

Kind = Literal["count", "ratio"]
Outcome = Literal["equal", "differs", "missing in reporting", "not in source"]
Sources = Mapping[str, Mapping[str, int]]  # service -> its counts

_PERIOD = re.compile(r"^(\d{4})(?:-(0[1-9]|1[0-2])|-Q([1-4]))?$")
RATIO_PLACES = 6  # reporting rounds ratios to 6 places


@dataclass(frozen=True)
class Period:
    """A month, quarter or year by its label (`2026-12`, `2026-Q4`, `2026`) and its first and last day.

    Stocks are recounted as at the period's last day, the running period's too: reporting's month buckets hold a
    month's stock as at its end, so a wife whose 50th birthday falls later in the running month has already left
    PUS there. Facts are never dated after today, so only such age changes are foreseen.
    """

    label: str
    first: date
    last: date


def parse_period(text: str) -> Period:
    """`YYYY-MM`, `YYYY-Qn` or `YYYY`; ValueError otherwise."""
    match = _PERIOD.match(text.strip())
    if not match:
        raise ValueError(f"period must be YYYY-MM, YYYY-Qn or YYYY, not {text!r}")
    year = int(match.group(1))
    if match.group(2):
        first_month, months = int(match.group(2)), 1
    elif match.group(3):
        first_month, months = 3 * (int(match.group(3)) - 1) + 1, 3
    else:
        first_month, months = 1, 12
    last_month = first_month + months - 1
    return Period(
        match.group(0),
        date(year, first_month, 1),
        date(year, last_month, calendar.monthrange(year, last_month)[1]),
    )


def current_periods(today: date) -> list[Period]:
    """The month, quarter and year containing `today`."""
    quarter = (today.month - 1) // 3 + 1
    return [
        parse_period(f"{today:%Y-%m}"),
        parse_period(f"{today.year}-Q{quarter}"),
        parse_period(str(today.year)),
    ]


@dataclass(frozen=True)
class Value:
    """A recounted figure: a count, or a ratio with its numerator and denominator (None when undefined)."""

    value: int | float | None
    numerator: int | None = None
    denominator: int | None = None

    def show(self) -> str:
        if self.value is None and self.denominator is None:
            return "-"
        shown = (
            "-"
            if self.value is None
            else (f"{self.value:g}" if isinstance(self.value, float) else str(self.value))
        )
        if self.denominator is not None:
            shown += f" ({self.numerator}/{self.denominator})"
        return shown


def ratio(numerator: int, denominator: int) -> Value:
    """numerator / denominator rounded as reporting rounds, None without a denominator."""
    value = None if denominator == 0 else round(numerator / denominator, RATIO_PLACES)
    return Value(value, numerator, denominator)


@dataclass(frozen=True)
class Figure:
    name: str
    kind: Kind
    recount: Callable[[Sources], Value | None]  # None: the sources cannot give it for this region and period


def _count(service: str, key: str) -> Callable[[Sources], Value | None]:
    def f(s: Sources) -> Value | None:
        return Value(int(s[service][key])) if service in s and key in s[service] else None

    return f


def _ratio(service: str, numerator: tuple[str, ...], denominator: str) -> Callable[[Sources], Value | None]:
    def f(s: Sources) -> Value | None:
        got = s.get(service)
        if got is None or denominator not in got or any(k not in got for k in numerator):
            return None
        return ratio(sum(int(got[k]) for k in numerator), int(got[denominator]))

    return f


def _reporting_rate(s: Sources) -> Value | None:
    """uppka's own reporting rate (/v1/indicators/reporting), which reporting must equal (issue 11).

    The one rule of shared/uppka_reporting.py: reports received on time / group-months due, over the period's
    months whose report deadline has passed (a quarter or a year sums its months); None while nothing is due.
    """
    got = s.get("uppka_reporting")
    if got is None:
        return None
    return ratio(int(got["on_time"]), int(got["due"]))


# The main figures of issue 11, in the order of the table. Definitions: docs/indicators.md.
FIGURES: list[Figure] = [
    Figure("pus", "count", _count("registry", "pus")),
    Figure("kb_users", "count", _count("registry", "kb_users")),
    Figure("cpr", "ratio", _ratio("registry", ("kb_users",), "pus")),
    Figure("mcpr", "ratio", _ratio("registry", ("kb_users_modern",), "pus")),
    Figure("mkjp_share", "ratio", _ratio("registry", ("mkjp_users",), "kb_users")),
    Figure("unmet_need", "ratio", _ratio("registry", ("non_users_iat", "non_users_tial"), "pus")),
    Figure("baduta_measured", "count", _count("registry", "baduta_measured")),
    Figure("stunting_prevalence", "ratio", _ratio("registry", ("baduta_stunted",), "baduta_measured")),
    Figure("balita_measured", "count", _count("registry", "balita_measured")),
    Figure("balita_stunting_prevalence", "ratio", _ratio("registry", ("balita_stunted",), "balita_measured")),
    Figure("krs_families", "count", _count("registry", "krs_families")),
    Figure("uppka_groups_existing", "count", _count("uppka", "groups_existing")),
    Figure("uppka_members", "count", _count("uppka", "uppka_members")),
    Figure("uppka_reporting_rate", "ratio", _reporting_rate),
    Figure(
        "uppka_members_kb_participation",
        "ratio",
        _ratio("uppka", ("uppka_members_pus_kb_users",), "uppka_members_pus"),
    ),
    Figure("dashat_beneficiaries", "count", _count("dashat", "dashat_beneficiaries")),
    Figure("dashat_enrolled", "count", _count("dashat", "dashat_enrolled")),
    Figure("dashat_portions_served", "count", _count("dashat", "dashat_portions_served")),
]
BY_NAME = {f.name: f for f in FIGURES}


def published(indicators: Mapping[str, Any], figure: Figure) -> Value | None:
    """What reporting's summary says of a figure; None when the figure is not in it."""
    if figure.name not in indicators:
        return None
    value = indicators[figure.name]
    if figure.kind == "count":
        return Value(None if value is None else int(value))
    num, den = indicators.get(figure.name + "_numerator"), indicators.get(figure.name + "_denominator")
    return Value(
        None if value is None else round(float(value), RATIO_PLACES),
        None if num is None else int(num),
        None if den is None else int(den),
    )


def same(source: Value, reported: Value) -> bool:
    """Equal values; for a ratio also equal sides where reporting publishes them (`<ratio>_numerator` ...)."""
    if (source.value is None) != (reported.value is None):
        return False
    if (
        source.value is not None
        and reported.value is not None
        and abs(float(source.value) - float(reported.value)) > 10**-RATIO_PLACES / 2
    ):
        return False
    for mine, theirs in ((source.numerator, reported.numerator), (source.denominator, reported.denominator)):
        if mine is not None and theirs is not None and mine != theirs:
            return False
    return True


@dataclass(frozen=True)
class Row:
    figure: str
    region: str
    period: str
    source: Value | None
    reporting: Value | None
    outcome: Outcome


def compare(figure: Figure, region: str, period: str, sources: Sources, indicators: Mapping[str, Any]) -> Row:
    """One line of the table: the recount, what reporting publishes, and whether they agree."""
    source = figure.recount(sources)
    reported = published(indicators, figure)
    if source is None:
        outcome: Outcome = "not in source"
    elif reported is None:
        outcome = "missing in reporting"
    else:
        outcome = "equal" if same(source, reported) else "differs"
    return Row(figure.name, region, period, source, reported, outcome)
