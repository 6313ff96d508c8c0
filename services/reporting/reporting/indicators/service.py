"""Use cases of the indicator API: resolve a region in the caller's scope, read facts, compute indicators."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from reporting.indicators import disclosure, domain
from reporting.indicators import repository as repo
from reporting.indicators.domain import Extras, Period, Value
from reporting.indicators.repository import Scope
from reporting.projection.domain import LEVEL_KAMPUNG_KB
from shared import uppka_reporting
from shared.auth import Principal
from shared.clock import business_today
from shared.errors import NotFound, ValidationFailed
from shared.regions import load_regions, normalize_code

LEVELS = ("national", "province", "regency", "district", "village", "kampung_kb", "kitchen")
LEVEL_NUMBER = {name: i for i, name in enumerate(LEVELS)}
PUBLIC_SCOPE, READ_SCOPE = "reporting:public", "reporting:read"


# What the use cases return: the figures, by the field names of the API models the endpoints make of them
# (reporting/indicators/schemas.py: SummaryRead, BreakdownRead, SeriesRead), and the exports read them as they are.


@dataclass(frozen=True)
class Freshness:
    """How far the projection stands behind one topic."""

    topic: str
    last_event_time: datetime | None
    last_applied_at: datetime | None
    lag_seconds: float | None
    offset_lag: int | None
    events_applied: int
    facts_pending_since: datetime | None


@dataclass(frozen=True)
class RegionFigures:
    region: str
    name: str | None
    level: str
    indicators: dict[str, Value]
    small_numbers: list[str]


@dataclass(frozen=True)
class Summary:
    region: str
    name: str | None
    level: str
    period: str
    suppressed: bool
    indicators: dict[str, Value]
    small_numbers: list[str]
    freshness: list[Freshness]


@dataclass(frozen=True)
class Breakdown:
    region: str
    name: str | None
    level: str
    breakdown_level: str
    period: str
    suppressed: bool
    rows: list[RegionFigures]
    freshness: list[Freshness]


@dataclass(frozen=True)
class SeriesFigure:
    period: str
    value: Value
    numerator: Value
    denominator: Value
    small_number: bool


@dataclass(frozen=True)
class Series:
    indicator: str
    region: str
    name: str | None
    level: str
    suppressed: bool
    points: list[SeriesFigure]
    freshness: list[Freshness]


@dataclass(frozen=True)
class Target:
    """A resolved, access-checked region."""

    scope: Scope
    level: int
    name: str | None

    @property
    def region(self) -> str:
        return self.scope.fact_region()


def is_public(principal: Principal) -> bool:
    """Callers holding only the public scope get small-cell protection."""
    return principal.has(PUBLIC_SCOPE) and not principal.has(READ_SCOPE)


async def resolve_region(session: AsyncSession, principal: Principal, region: str | None) -> Target:
    """Parse a region parameter; anything unknown or outside the caller's region is a 404 (no leak)."""
    raw = (region or "").strip()
    if raw in ("", "ID"):
        if principal.region:
            raise NotFound("region not found")
        return Target(Scope("national", ""), 0, "Indonesia")
    for kind, level in (("kkb", 5), ("dapur", 6)):
        if raw.startswith(f"{kind}:"):
            try:
                ident = str(uuid.UUID(raw.split(":", 1)[1]))
            except ValueError:
                raise NotFound("region not found") from None
            place = await repo.place(session, f"{kind}:{ident}")
            if place is None or not principal.can_access(place.village_code):
                raise NotFound("region not found")
            return Target(Scope(kind, ident), level, None)
    try:
        code = normalize_code(raw)
    except ValueError:
        raise NotFound("region not found") from None
    known = load_regions().get(code)
    if known is None or not principal.can_access(code):
        raise NotFound("region not found")
    return Target(Scope("admin", code), code.count(".") + 1, known.name)


async def _freshness(session: AsyncSession) -> list[Freshness]:
    out = []
    pending = await repo.facts_pending_since(session)
    for s in await repo.freshness(session):
        lag = (
            (s.last_applied_at - s.last_event_time).total_seconds()
            if s.last_applied_at is not None and s.last_event_time is not None
            else None
        )
        out.append(
            Freshness(
                topic=s.topic,
                last_event_time=s.last_event_time,
                last_applied_at=s.last_applied_at,
                lag_seconds=lag,
                offset_lag=s.offset_lag,
                events_applied=s.events_applied,
                facts_pending_since=pending,
            )
        )
    return out


async def _extras(
    session: AsyncSession, scope: Scope, period: Period, level: int | None
) -> dict[str, Extras]:
    """Distributions that cannot be pre-summed: detection-to-enrolment days (median, p90)."""
    waits = await repo.wait_percentiles(session, scope, period, level)
    return {k: Extras(wait_days_median=p50, wait_days_p90=p90) for k, (p50, p90) in waits.items()}


def _scopes_of(place: repo.PlaceRow, scopes: dict[str, Scope], by_code: dict[str, str]) -> list[str]:
    """The keys of the scopes a kitchen lies in: administrative ones by the codes of its village and its
    ancestors (`by_code`: code -> key), the nation, its Kampung KB, itself."""
    parts = place.village_code.split(".")
    keys = [by_code[c] for c in (".".join(parts[: i + 1]) for i in range(len(parts))) if c in by_code]
    for key, scope in scopes.items():
        if (
            scope.kind == "national"
            or (scope.kind == "kkb" and place.kampung_kb == scope.value)
            or (scope.kind == "dapur" and place.region == f"dapur:{scope.value}")
        ):
            keys.append(key)
    return keys


async def _kitchen_figures(
    session: AsyncSession, period: Period, within: Scope, scopes: dict[str, Scope]
) -> dict[str, dict[str, Value]]:
    """DASHAT coverage and cost per portion per scope (each inside `within`), from its kitchens' own facts.

    Eligible targets are read from the Kampung KB areas served by the scope's kitchens open at the period's end.
    """
    by_code = {scope.value: key for key, scope in scopes.items() if scope.kind == "admin"}
    chosen: dict[str, list[repo.KitchenState]] = {key: [] for key in scopes}
    for kitchen in await repo.kitchen_states(session, period, within):
        for key in _scopes_of(kitchen.place, scopes, by_code):
            chosen[key].append(kitchen)
    served = {
        key: sorted({str(k.place.kampung_kb) for k in ks if k.open and k.place.kampung_kb})
        for key, ks in chosen.items()
    }
    areas = sorted({f"kkb:{x}" for xs in served.values() for x in xs})
    eligible = (
        await repo.place_stocks(session, period, LEVEL_KAMPUNG_KB, domain.ELIGIBLE_MEASURES, areas)
        if areas
        else {}
    )
    out: dict[str, dict[str, Value]] = {}
    for key, ks in chosen.items():
        totals = {
            m: sum(eligible.get(f"kkb:{x}", {}).get(m, 0) for x in served[key])
            for m in domain.ELIGIBLE_MEASURES
        }
        # Only kitchens whose area is known (a Kampung KB) are compared with their area's targets.
        enrolled = sum(k.beneficiaries for k in ks if k.place.kampung_kb)
        pairs = [(k.expenses, k.portions_delivered) for k in ks]
        out[key] = domain.dashat_kitchen_figures(enrolled, totals, pairs)
    return out


def _merge(extras: Extras | None, extra: dict[str, Value]) -> Extras:
    base = extras or Extras()
    return Extras(base.wait_days_median, base.wait_days_p90, {**base.extra, **extra})


@dataclass(frozen=True)
class Clock:
    """What decides whether a month's UPPKA report is due yet: today (programme timezone) and the due day."""

    today: date
    due_day: int = uppka_reporting.REPORT_DUE_DAY

    @property
    def due_last(self) -> date:
        return uppka_reporting.last_month_past_deadline(self.today, self.due_day)


def default_clock() -> Clock:
    return Clock(business_today())


async def _with_uppka_due(
    session: AsyncSession,
    measures: dict[str, dict[str, int]],
    period: Period,
    clock: Clock | None,
    **where: Any,
) -> dict[str, dict[str, int]]:
    """Add the group-months due a report (and the reports on time / late) to each region's measures."""
    due = await repo.uppka_due_measures(session, period, (clock or default_clock()).due_last, **where)
    for region, values in due.items():
        measures.setdefault(region, {}).update(values)
    return measures


async def region_values(
    session: AsyncSession, target: Target, period: Period, clock: Clock | None = None
) -> dict[str, Value]:
    measures = await repo.resolved_measures(session, period, regions=[target.region])
    await _with_uppka_due(session, measures, period, clock, regions=[target.region])
    kitchen = (await _kitchen_figures(session, period, target.scope, {"_": target.scope}))["_"]
    extras = _merge((await _extras(session, target.scope, period, None)).get("_"), kitchen)
    return domain.compute(measures.get(target.region, {}), extras)


def _parent(code: str) -> str | None:
    """The administrative region a code's region lies in (None for a province: the nation)."""
    return code.rsplit(".", 1)[0] if "." in code else None


async def _level_rows(
    session: AsyncSession, period: Period, clock: Clock | None, level: int, prefix: str | None
) -> dict[str, dict[str, Value]]:
    """Every region of an administrative level (inside `prefix`) with its figures for the period."""
    measures = await repo.resolved_measures(session, period, level=level, prefix=prefix)
    await _with_uppka_due(session, measures, period, clock, level=level, prefix=prefix)
    scope = Scope("admin", prefix) if prefix else Scope("national", "")
    extras = await _extras(session, scope, period, level)
    kitchens = await _kitchen_figures(
        session, period, scope, {code: Scope("admin", code) for code in measures}
    )
    return {
        code: domain.compute(measures[code], _merge(extras.get(code), kitchens[code])) for code in measures
    }


async def _protected(
    session: AsyncSession, rows: dict[str, dict[str, Value]], level: int, period: Period, clock: Clock | None
) -> dict[str, dict[str, Value]]:
    """Public administrative rows, each parent's children protected together (with those outside the request)."""
    out: dict[str, dict[str, Value]] = {}
    for parent in sorted({_parent(code) or "" for code in rows}):
        siblings = await _level_rows(session, period, clock, level, parent or None)
        mine = {code: values for code, values in rows.items() if (_parent(code) or "") == parent}
        protected = disclosure.protect_siblings({**siblings, **mine})
        out |= {code: protected[code] for code in mine}
    return out


async def _values_for(
    session: AsyncSession, target: Target, period: Period, public: bool, clock: Clock | None
) -> dict[str, Value]:
    """A region's figures as the caller may see them: for the public, its row of its siblings' pattern."""
    values = await region_values(session, target, period, clock)
    if not public:
        return values
    if target.scope.kind != "admin":
        return disclosure.protect(values)  # Kampung KB and kitchens do not partition a parent region
    rows = await _protected(session, {target.region: values}, target.level, period, clock)
    return rows[target.region]


async def summary(
    session: AsyncSession,
    principal: Principal,
    region: str | None,
    period_text: str,
    clock: Clock | None = None,
) -> Summary:
    period = domain.parse_period(period_text)
    target = await resolve_region(session, principal, region)
    public = is_public(principal)
    values = await _values_for(session, target, period, public, clock)
    return Summary(
        region=target.region,
        name=target.name,
        level=LEVELS[target.level],
        period=period.label,
        suppressed=public,
        indicators=values,
        small_numbers=domain.small_numbers(values),
        freshness=await _freshness(session),
    )


async def breakdown(
    session: AsyncSession,
    principal: Principal,
    region: str | None,
    level_name: str | None,
    period_text: str,
    clock: Clock | None = None,
) -> Breakdown:
    """Indicators of every region of `level` inside `region` (default: its direct children)."""
    period = domain.parse_period(period_text)
    target = await resolve_region(session, principal, region)
    if level_name is None:
        if target.level >= LEVEL_NUMBER["village"]:
            raise ValidationFailed(
                "a village, Kampung KB or kitchen has no children; name a level",
                field="query.level",
                rule="level.deeper",
            )
        level = target.level + 1
    else:
        if level_name not in LEVEL_NUMBER:
            raise ValidationFailed(
                f"level must be one of {', '.join(LEVELS[1:])}", field="query.level", rule="level.known"
            )
        level = LEVEL_NUMBER[level_name]
        if level <= target.level or (
            target.scope.kind in ("kkb", "dapur") and level != LEVEL_NUMBER["kitchen"]
        ):
            raise ValidationFailed(
                "level must lie below the region", field="query.level", rule="level.deeper"
            )
    public = is_public(principal)
    regions = load_regions()
    rows: list[RegionFigures] = []
    if level <= LEVEL_NUMBER["village"]:
        prefix = target.scope.value if target.scope.kind == "admin" else None
        computed = await _level_rows(session, period, clock, level, prefix)
        if public:
            computed = await _protected(session, computed, level, period, clock)
        for code in sorted(computed):
            known = regions.get(code)
            rows.append(
                RegionFigures(
                    region=code,
                    name=known.name if known else None,
                    level=LEVELS[level],
                    indicators=computed[code],
                    small_numbers=domain.small_numbers(computed[code]),
                )
            )
    else:
        kind = "kkb" if level == LEVEL_NUMBER["kampung_kb"] else "dapur"
        for p in await repo.places_within(session, kind, target.scope):
            if not principal.can_access(p.village_code):
                continue
            sub = Target(Scope(kind, p.region.split(":", 1)[1]), level, None)
            values = await region_values(session, sub, period, clock)
            rows.append(
                RegionFigures(
                    region=p.region,
                    name=None,
                    level=LEVELS[level],
                    indicators=(protected := disclosure.protect(values) if public else values),
                    small_numbers=domain.small_numbers(protected),
                )
            )
    return Breakdown(
        region=target.region,
        name=target.name,
        level=LEVELS[target.level],
        breakdown_level=LEVELS[level],
        period=period.label,
        suppressed=public,
        rows=rows,
        freshness=await _freshness(session),
    )


async def series(
    session: AsyncSession,
    principal: Principal,
    name: str,
    region: str | None,
    first: str,
    last: str,
    clock: Clock | None = None,
) -> Series:
    """One indicator of one region over consecutive periods."""
    if name not in domain.BY_NAME and not name.startswith("krs_reason_"):
        raise NotFound(f"indicator {name} not found")
    periods = domain.periods_between(
        domain.parse_period(first, "query.from"), domain.parse_period(last, "query.to")
    )
    target = await resolve_region(session, principal, region)
    public = is_public(principal)
    points = []
    for period in periods:
        values = await _values_for(session, target, period, public, clock)
        numerator, denominator = values.get(name + domain.NUMERATOR), values.get(name + domain.DENOMINATOR)
        points.append(
            SeriesFigure(
                period=period.label,
                value=values.get(name),
                numerator=numerator,
                denominator=denominator,
                small_number=name in domain.small_numbers(values),
            )
        )
    return Series(
        indicator=name,
        region=target.region,
        name=target.name,
        level=LEVELS[target.level],
        suppressed=public,
        points=points,
        freshness=await _freshness(session),
    )
