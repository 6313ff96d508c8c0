"""Every query of the indicator API: period-resolved measures, distributions, places, freshness."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from reporting.indicators.domain import Period
from reporting.projection.domain import KITCHEN_STOCKS, LEVEL_KITCHEN, level_of
from reporting.projection.models import Place, ProjectionStatus

# Length of a Kemendagri code at each level (village_code prefixes group rows by level).
CODE_LENGTH = {1: 2, 2: 5, 3: 8, 4: 13}


# Templates: only code constants (column names, code lengths) are filled in; every value is a bound parameter.
# A place has a row per slot that saw it; the one with the latest event time says where it lies.
_KKB_KITCHENS = (
    "{col}::text IN (SELECT substr(region, 7) FROM (SELECT DISTINCT ON (region) region, kampung_kb FROM rep_place"
    " WHERE region LIKE 'dapur:%' ORDER BY region, seen_at DESC, slot) p WHERE kampung_kb = :kkb)"
)
_WAIT_SQL = """
      SELECT {group} AS k,
        percentile_cont(0.5) WITHIN GROUP (ORDER BY wait_seconds) / 86400.0,
        percentile_cont(0.9) WITHIN GROUP (ORDER BY wait_seconds) / 86400.0
      FROM rep_enrolment
      WHERE {cond} AND wait_seconds IS NOT NULL AND start_date BETWEEN :start AND :end
      GROUP BY 1"""


@dataclass(frozen=True)
class Scope:
    """Which rows a query covers: one region, or all regions of a level inside a region."""

    kind: str  # "national" | "admin" | "kkb" | "dapur"
    value: str  # code or id ("" for national)

    def fact_region(self) -> str:
        return {
            "national": "ID",
            "admin": self.value,
            "kkb": f"kkb:{self.value}",
            "dapur": f"dapur:{self.value}",
        }[self.kind]


def _entity_filter(scope: Scope, village_col: str, kitchen_col: str) -> tuple[str, dict[str, Any]]:
    """SQL condition selecting enrolments/kitchens inside a scope."""
    if scope.kind == "national":
        return "TRUE", {}
    if scope.kind == "admin":
        return f"({village_col} = :code OR {village_col} LIKE :code_prefix)", {
            "code": scope.value,
            "code_prefix": scope.value + ".%",
        }
    if scope.kind == "kkb":
        return (
            _KKB_KITCHENS.format(col=kitchen_col),
            {"kkb": scope.value},
        )
    return f"{kitchen_col}::text = :kitchen", {"kitchen": scope.value}


def _group_expr(level: int | None, village_col: str) -> str:
    """The breakdown key of an entity row: its region at `level` (None = the scope itself)."""
    if level is None:
        return "'_'"
    return f"left({village_col}, {CODE_LENGTH[level]})"


def _fact_rows(
    params: dict[str, Any], regions: list[str] | None, level: int | None, prefix: str | None
) -> str:
    """The condition choosing the fact rows of `regions`, or of every region of `level` inside `prefix`; binds
    its parameters. Either way a range of the fact key, which begins with the level."""
    if regions is not None:
        params["regions"] = regions
        params["levels"] = sorted({level_of(r) for r in regions})
        return "level = ANY(:levels) AND region = ANY(:regions)"
    params["level"] = level
    if prefix:
        params["prefix"] = prefix + ".%"
        return "level = :level AND region LIKE :prefix"
    return "level = :level"


_RESOLVE = """
SELECT region, measure,
  COALESCE(SUM(value) FILTER (WHERE grain = 'm' AND measure LIKE 's.%%'), 0)
  + COALESCE(SUM(value) FILTER (WHERE grain = 'm' AND measure LIKE 'f.%%' AND period_start >= :start), 0)
  + COALESCE(SUM(value) FILTER (WHERE grain = :grain AND measure LIKE 'd.%%'
       AND measure <> 'd.uppka.target_groups' AND period_start = :start), 0)
  + COALESCE(SUM(value) FILTER (WHERE grain = 'y' AND measure = 'd.uppka.target_groups'
       AND period_start = :year), 0) AS v
FROM rep_fact
WHERE {where} AND period_start <= :last
GROUP BY region, measure
"""


async def resolved_measures(
    session: AsyncSession,
    period: Period,
    *,
    regions: list[str] | None = None,
    level: int | None = None,
    prefix: str | None = None,
) -> dict[str, dict[str, int]]:
    """Measures of each region as at / over the period: stocks at its end, flows summed, distinct at its grain."""
    params: dict[str, Any] = {
        "start": period.start,
        "last": period.last,
        "grain": period.grain,
        "year": period.start.replace(month=1),
    }
    where = _fact_rows(params, regions, level, prefix)
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for region, measure, value in await session.execute(text(_RESOLVE.format(where=where)), params):
        if value:
            out[region][measure] = int(value)
    return out


# Reports due are group-months: the monthly stock of groups due (`s.uppka.groups_active`, as monthly deltas)
# integrated over the months of the window [start, :due_last] whose report deadline has passed, and over the
# whole period (:last) for the group-months not due yet. A delta of month p counts in every window month >= p.
_UPPKA_DUE = """
SELECT region,
  COALESCE(SUM(value * GREATEST(0, :due_last_i - GREATEST(m, :start_i) + 1))
    FILTER (WHERE measure = 's.uppka.groups_active'), 0) AS due,
  COALESCE(SUM(value * (:last_i - GREATEST(m, :start_i) + 1))
    FILTER (WHERE measure = 's.uppka.groups_active'), 0) AS expected,
  COALESCE(SUM(value) FILTER (WHERE measure = 'f.uppka.due_reports_on_time'
    AND period_start >= :start AND period_start <= :due_last), 0) AS on_time,
  COALESCE(SUM(value) FILTER (WHERE measure = 'f.uppka.due_reports_late'
    AND period_start >= :start AND period_start <= :due_last), 0) AS late
FROM (
  SELECT region, measure, value, period_start,
    (extract(year FROM period_start)::int * 12 + extract(month FROM period_start)::int) AS m
  FROM rep_fact
  WHERE grain = 'm' AND period_start <= :last
    AND measure IN ('s.uppka.groups_active', 'f.uppka.due_reports_on_time', 'f.uppka.due_reports_late') AND {where}
) f
GROUP BY region
"""
UPPKA_DUE_MEASURES = ("w.uppka.due", "w.uppka.expected", "w.uppka.on_time", "w.uppka.late")


def _month_index(d: date) -> int:
    return d.year * 12 + d.month


async def uppka_due_measures(
    session: AsyncSession,
    period: Period,
    due_last: date,
    *,
    regions: list[str] | None = None,
    level: int | None = None,
    prefix: str | None = None,
) -> dict[str, dict[str, int]]:
    """Group-months due a report in the period (deadline passed / all) and the reports on time and late.

    `due_last` is the latest month whose report deadline has passed; months after it are not due yet.
    """
    params: dict[str, Any] = {
        "start": period.start,
        "last": period.last,
        "due_last": due_last,
        "start_i": _month_index(period.start),
        "last_i": _month_index(period.last),
        "due_last_i": min(_month_index(due_last), _month_index(period.last)),
    }
    where = _fact_rows(params, regions, level, prefix)
    out: dict[str, dict[str, int]] = {}
    for region, *values in await session.execute(text(_UPPKA_DUE.format(where=where)), params):
        out[region] = {k: int(v) for k, v in zip(UPPKA_DUE_MEASURES, values, strict=True)}
    return out


async def wait_percentiles(
    session: AsyncSession, scope: Scope, period: Period, level: int | None = None
) -> dict[str, tuple[float | None, float | None]]:
    """Median and p90 days from stunting detection (trigger) to enrolment, for enrolments starting in the period."""
    cond, params = _entity_filter(scope, "village_code", "kitchen_id")
    sql = _WAIT_SQL.format(group=_group_expr(level, "village_code"), cond=cond)
    rows = await session.execute(text(sql), {**params, "start": period.start, "end": period.end_day})
    return {k: (_r(p50), _r(p90)) for k, p50, p90 in rows}


def _r(v: float | None) -> float | None:
    return None if v is None else round(float(v), 3)


@dataclass(frozen=True)
class PlaceRow:
    """Where a Kampung KB area or kitchen lies (`region` is `kkb:<code>` / `dapur:<id>`)."""

    region: str
    village_code: str
    kampung_kb: str | None


def _latest_places() -> Any:
    """Each place's row with the latest event time (a place has one row per slot that saw it), as Core columns:
    a national figure lists every kitchen, and loading them as ORM objects was most of its time."""
    t = Place.__table__.c
    return (
        select(t.region, t.village_code, t.kampung_kb)
        .ext(distinct_on(t.region))
        .order_by(t.region, t.seen_at.desc(), t.slot)
        .subquery()
        .c
    )


async def place(session: AsyncSession, region: str) -> PlaceRow | None:
    p = _latest_places()
    row = (
        await session.execute(select(p.region, p.village_code, p.kampung_kb).where(p.region == region))
    ).first()
    return PlaceRow(*row) if row else None


async def places_within(session: AsyncSession, kind: str, scope: Scope) -> list[PlaceRow]:
    """Kampung KB or kitchen places inside a scope."""
    p = _latest_places()
    q = select(p.region, p.village_code, p.kampung_kb).where(p.region.like(f"{kind}:%")).order_by(p.region)
    if scope.kind == "admin":
        q = q.where((p.village_code == scope.value) | p.village_code.like(scope.value + ".%"))
    elif scope.kind == "kkb":
        q = q.where(p.kampung_kb == scope.value)
    elif scope.kind == "dapur":
        q = q.where(p.region == f"dapur:{scope.value}")
    return [PlaceRow(*row) for row in await session.execute(q)]


KITCHEN_FLOWS = ("f.dashat.expenses", "f.dashat.portions_delivered")

# Both read a row per place with a column per measure: a national figure reads every area and kitchen, and a
# row costs the API more than its values. Places named are joined (hashed), not compared one by one against a
# list: a national figure names every area served by a kitchen.
# The stock as at the period's end is the row of its last month, or of the latest month any delta has reached
# (rep_place_stock has every month up to it; nothing changes after it).
_PLACE_STOCKS = """
SELECT s.region, {columns}
FROM rep_place_stock s{join}
WHERE s.level = {level} AND s.measure = ANY(:measures)
  AND s.month = LEAST(CAST(:month AS date), (SELECT max(month) FROM rep_place_stock))
GROUP BY s.region
"""
# The period's months only, one range of ix_rep_fact_place_measure (the level is a code constant, so the
# planner can prove that the partial index applies).
_PLACE_FLOWS = """
SELECT s.region, {columns}
FROM rep_fact s{join}
WHERE s.level = {level} AND s.measure = ANY(:measures) AND s.grain = 'm'
  AND s.period_start BETWEEN :start AND :last
GROUP BY s.region
"""


async def _per_place(
    session: AsyncSession,
    template: str,
    level: int,
    measures: Sequence[str],
    regions: list[str] | None,
    params: dict[str, Any],
) -> dict[str, dict[str, int]]:
    """{place: {measure: value}} of a level's places (or of `regions`), from `template`'s summed columns."""
    # One column per measure bound as :m<i>, summed as bigint (an int, not a Decimal, for each value).
    columns = ", ".join(
        f"CAST(COALESCE(sum(s.value) FILTER (WHERE s.measure = :m{i}), 0) AS bigint)"
        for i in range(len(measures))
    )
    params = {**params, "measures": list(measures), **{f"m{i}": m for i, m in enumerate(measures)}}
    join = ""
    if regions is not None:
        join = " JOIN unnest(CAST(:regions AS text[])) AS r(region) ON s.region = r.region"
        params["regions"] = regions
    sql = template.format(columns=columns, join=join, level=int(level))
    rows = (await session.execute(text(sql), params)).all()
    return defaultdict(dict, {row[0]: dict(zip(measures, row[1:], strict=True)) for row in rows})


async def place_stocks(
    session: AsyncSession,
    period: Period,
    level: int,
    measures: Sequence[str],
    regions: list[str] | None = None,
) -> dict[str, dict[str, int]]:
    """Stocks of Kampung KB areas or kitchens (`level`) as at the period's end: of `regions`, or of all."""
    month = {"month": period.last.replace(day=1)}
    return await _per_place(session, _PLACE_STOCKS, level, measures, regions, month)


@dataclass(frozen=True)
class KitchenState:
    """A kitchen's place and the figures its DASHAT coverage and cost use, as at / over a period."""

    place: PlaceRow
    open: bool
    beneficiaries: int
    expenses: int
    portions_delivered: int


async def kitchen_states(session: AsyncSession, period: Period, scope: Scope) -> list[KitchenState]:
    """Every kitchen inside a scope: open at the period's end, beneficiaries then, spending and portions in it."""
    places = await places_within(session, "dapur", scope)
    if not places:
        return []
    mine = None if scope.kind == "national" else [p.region for p in places]
    values = await place_stocks(session, period, LEVEL_KITCHEN, KITCHEN_STOCKS, mine)
    during = {"start": period.start, "last": period.last}
    flows = await _per_place(session, _PLACE_FLOWS, LEVEL_KITCHEN, KITCHEN_FLOWS, mine, during)
    for region, figures in flows.items():
        values[region].update(figures)
    out = []
    for p in places:
        v = values.get(p.region, {})
        out.append(
            KitchenState(
                place=p,
                open=v.get("s.dashat.kitchens_active", 0) > 0,
                beneficiaries=v.get("s.dashat.beneficiaries", 0),
                expenses=v.get("f.dashat.expenses", 0),
                portions_delivered=v.get("f.dashat.portions_delivered", 0),
            )
        )
    return out


@dataclass(frozen=True)
class TopicFreshness:
    topic: str
    last_event_time: datetime | None
    last_applied_at: datetime | None
    events_applied: int
    offset_lag: int | None


async def freshness(session: AsyncSession) -> list[TopicFreshness]:
    """Freshness per topic, summed over its partitions (each partition's consumer keeps its own row)."""
    s = ProjectionStatus
    rows = await session.execute(
        select(
            s.topic,
            func.max(s.last_event_time),
            func.max(s.last_applied_at),
            func.sum(s.events_applied),
            func.sum(s.offset_lag),
        )
        .group_by(s.topic)
        .order_by(s.topic)
    )
    return [
        TopicFreshness(t, event, applied, int(n or 0), None if lag is None else int(lag))
        for t, event, applied, n, lag in rows
    ]


async def facts_pending_since(session: AsyncSession) -> datetime | None:
    """When the oldest fact delta the rollup has not folded yet was queued (None: the facts are complete).

    A scan of the queue, which holds only the last moments' deltas while the rollup keeps up.
    """
    got = await session.execute(text("SELECT min(queued_at) FROM rep_fact_pending"))
    since: datetime | None = got.scalar_one()
    return since
