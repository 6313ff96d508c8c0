"""Use cases of the indicator API: resolve a region in the caller's scope, read facts, compute indicators."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from reporting.indicators import disclosure, domain
from reporting.indicators import repository as repo
from reporting.indicators.domain import Extras, Period, Value
from reporting.indicators.repository import Scope
from reporting.indicators.schemas import (
    BreakdownRead,
    Freshness,
    IndicatorRow,
    SeriesPoint,
    SeriesRead,
    SummaryRead,
)
from shared.auth import Principal
from shared.errors import NotFound, ValidationFailed
from shared.regions import load_regions, normalize_code

LEVELS = ("national", "province", "regency", "district", "village", "kampung_kb", "kitchen")
LEVEL_NUMBER = {name: i for i, name in enumerate(LEVELS)}
PUBLIC_SCOPE, READ_SCOPE = "reporting:public", "reporting:read"


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


async def region_values(session: AsyncSession, target: Target, period: Period) -> dict[str, Value]:
    measures = await repo.resolved_measures(session, period, regions=[target.region])
    extras = (await _extras(session, target.scope, period, None)).get("_")
    return domain.compute(measures.get(target.region, {}), extras)


def _parent(code: str) -> str | None:
    """The administrative region a code's region lies in (None for a province: the nation)."""
    return code.rsplit(".", 1)[0] if "." in code else None


async def _sibling_rows(
    session: AsyncSession, level: int, parent: str | None, period: Period
) -> dict[str, dict[str, Value]]:
    """Every region of a level inside one parent: the set whose public cells are decided together."""
    measures = await repo.resolved_measures(session, period, level=level, prefix=parent)
    scope = Scope("admin", parent) if parent else Scope("national", "")
    extras = await _extras(session, scope, period, level)
    return {code: domain.compute(m, extras.get(code)) for code, m in measures.items()}


async def _protected(
    session: AsyncSession, rows: dict[str, dict[str, Value]], level: int, period: Period
) -> dict[str, dict[str, Value]]:
    """Public administrative rows, each parent's children protected together (with those outside the request)."""
    out: dict[str, dict[str, Value]] = {}
    for parent in sorted({_parent(code) or "" for code in rows}):
        siblings = await _sibling_rows(session, level, parent or None, period)
        mine = {code: values for code, values in rows.items() if (_parent(code) or "") == parent}
        protected = disclosure.protect_siblings({**siblings, **mine})
        out |= {code: protected[code] for code in mine}
    return out


async def _values_for(
    session: AsyncSession, target: Target, period: Period, public: bool
) -> dict[str, Value]:
    """A region's figures as the caller may see them: for the public, its row of its siblings' pattern."""
    values = await region_values(session, target, period)
    if not public:
        return values
    if target.scope.kind != "admin":
        return disclosure.protect(values)  # Kampung KB and kitchens do not partition a parent region
    return (await _protected(session, {target.region: values}, target.level, period))[target.region]


async def summary(
    session: AsyncSession, principal: Principal, region: str | None, period_text: str
) -> SummaryRead:
    period = domain.parse_period(period_text)
    target = await resolve_region(session, principal, region)
    public = is_public(principal)
    values = await _values_for(session, target, period, public)
    return SummaryRead(
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
    session: AsyncSession, principal: Principal, region: str | None, level_name: str | None, period_text: str
) -> BreakdownRead:
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
    rows: list[IndicatorRow] = []
    if level <= LEVEL_NUMBER["village"]:
        prefix = target.scope.value if target.scope.kind == "admin" else None
        measures = await repo.resolved_measures(session, period, level=level, prefix=prefix)
        extras = await _extras(session, target.scope, period, level)
        computed = {code: domain.compute(measures[code], extras.get(code)) for code in measures}
        if public:
            computed = await _protected(session, computed, level, period)
        for code in sorted(computed):
            known = regions.get(code)
            rows.append(
                IndicatorRow(
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
            values = await region_values(session, sub, period)
            rows.append(
                IndicatorRow(
                    region=p.region,
                    name=None,
                    level=LEVELS[level],
                    indicators=(protected := disclosure.protect(values) if public else values),
                    small_numbers=domain.small_numbers(protected),
                )
            )
    return BreakdownRead(
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
    session: AsyncSession, principal: Principal, name: str, region: str | None, first: str, last: str
) -> SeriesRead:
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
        values = await _values_for(session, target, period, public)
        numerator, denominator = values.get(name + domain.NUMERATOR), values.get(name + domain.DENOMINATOR)
        points.append(
            SeriesPoint(
                period=period.label,
                value=values.get(name),
                numerator=numerator,
                denominator=denominator,
                small_number=name in domain.small_numbers(values),
            )
        )
    return SeriesRead(
        indicator=name,
        region=target.region,
        name=target.name,
        level=LEVELS[target.level],
        suppressed=public,
        points=points,
        freshness=await _freshness(session),
    )
