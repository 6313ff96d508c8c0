"""Indicator endpoints (thin): JSON, CSV/XLSX exports and PNG/SVG charts of the same tables."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from reporting.config import Settings
from reporting.indicators import domain, render, service
from reporting.indicators.schemas import BreakdownRead, SeriesRead, SummaryRead
from reporting.indicators.service import Freshness
from shared.auth import Principal, current_principal
from shared.clock import business_today
from shared.errors import Forbidden, ValidationFailed
from shared.web.deps import SessionDep
from shared.web.problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/v1", tags=["indicators"], responses=PROBLEM_RESPONSES)

Lang = Literal["en", "id"]


async def reader(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """`reporting:read` or `reporting:public` (the latter with small-cell protection)."""
    if not (principal.has(service.READ_SCOPE) or principal.has(service.PUBLIC_SCOPE)):
        raise Forbidden(
            "missing scope: reporting:read or reporting:public",
            extra={"missing_scopes": [service.READ_SCOPE]},
        )
    return principal


ReaderDep = Annotated[Principal, Depends(reader)]


def clock(request: Request) -> service.Clock:
    """Today's business date (shared/clock.py, WIB) and the UPPKA report due day from the settings."""
    settings: Settings = request.app.state.settings
    return service.Clock(business_today(), settings.uppka_report_due_day)


ClockDep = Annotated[service.Clock, Depends(clock)]
Format = Literal["json", "csv", "xlsx", "png", "svg"]
TableFormat = Literal["json", "csv", "xlsx"]
FormatQ = Annotated[
    Format | None, Query(alias="format", description="json, csv, xlsx, png or svg (else Accept)")
]
TableFormatQ = Annotated[
    TableFormat | None, Query(alias="format", description="json, csv or xlsx (else Accept)")
]
# What domain.parse_period reads: a month, a quarter or a year, years 1970..2100.
PERIOD_PATTERN = r"^(19[7-9]\d|20\d\d|2100)(-(0[1-9]|1[0-2])|-Q[1-4])?$"
PeriodQ = Annotated[
    str, Query(pattern=PERIOD_PATTERN, description="YYYY-MM, YYYY-Qn or YYYY (years 1970 to 2100)")
]
LangQ = Annotated[Lang, Query(description="Column labels: en (indicator names) or id (Indonesian)")]


def _format(request: Request, fmt: str | None, allowed: tuple[str, ...]) -> str:
    chosen = render.negotiate(fmt, request.headers.get("accept"))
    if chosen is None or chosen not in allowed:
        raise ValidationFailed(
            f"format must be one of {', '.join(allowed)}", field="query.format", rule="format.supported"
        )
    return chosen


def _as_of(freshness: list[Freshness]) -> datetime | None:
    """When the figures stood: the last event applied by the projector, over every topic."""
    moments = [f.last_applied_at for f in freshness if f.last_applied_at is not None]
    return max(moments, default=None)


def _where(name: str | None, code: str) -> str:
    return f"{name} ({code})" if name else code


async def _file(fmt: str, table: render.Table, export: render.Export, filename: str) -> Response:
    if fmt == "csv":
        body = render.to_csv(table, export.lang)
    else:
        body = await asyncio.to_thread(render.to_xlsx, table, export)
    return Response(
        body,
        media_type=render.MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{filename}.{fmt}"'},
    )


def _selected(indicators: str | None, available: list[str]) -> list[str]:
    if not indicators:
        return available
    names = [n.strip() for n in indicators.split(",") if n.strip()]
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ValidationFailed(
            f"unknown indicator(s): {', '.join(unknown)}", field="query.indicators", rule="indicator.known"
        )
    return names


@router.get(
    "/indicators",
    response_model=BreakdownRead,
    description="Indicators of every region of a level inside a region (the breakdown table).\n\n"
    + domain.definitions_markdown(),
    responses={200: {"content": {m: {} for m in render.MEDIA_TYPES.values()}}},
)
async def indicators(
    request: Request,
    session: SessionDep,
    principal: ReaderDep,
    now: ClockDep,
    period: PeriodQ,
    region: Annotated[
        str | None, Query(description="Kemendagri code, kkb:<id>, dapur:<id>; empty = national")
    ] = None,
    level: Annotated[
        str | None,
        Query(
            description="Level of the rows (default: the region's children)",
            json_schema_extra={"enum": list(service.LEVELS[1:])},
        ),
    ] = None,
    fmt: FormatQ = None,
    lang: LangQ = "en",
    indicators: Annotated[
        str | None, Query(description="Comma-separated indicator names (columns / chart)")
    ] = None,
) -> Any:
    """Indicators of every region of a level inside a region (the breakdown table)."""
    out_fmt = _format(request, fmt, ("json", "csv", "xlsx", "png", "svg"))
    result = await service.breakdown(session, principal, region, level, period, now)
    if out_fmt == "json":
        return BreakdownRead.model_validate(result)
    # Rows may differ in their dynamic columns (KRS reasons): the table has the union, in first-seen order.
    available = list(dict.fromkeys(k for r in result.rows for k in r.indicators)) or list(domain.compute({}))
    names = _selected(indicators, available)
    if out_fmt in ("png", "svg"):
        if len(names) != 1:
            raise ValidationFailed(
                "a chart needs exactly one indicator", field="query.indicators", rule="chart.one"
            )
        name = names[0]
        chart = render.Chart(
            indicator=name,
            title=f"{render.indicator_label(name, lang)} — {_where(result.name, result.region)}, {result.period}",
            labels=[r.name or r.region for r in result.rows],
            values=[_num(r.indicators.get(name)) for r in result.rows],
            lang=lang,
            as_of=_as_of(result.freshness),
            x_axis="region_axis",
        )
        body = await asyncio.to_thread(render.bar_chart, chart, out_fmt)
        return Response(body, media_type=render.MEDIA_TYPES[out_fmt])
    table: render.Table = (
        ["region", "region_name", "period", *names],
        [[r.region, r.name, result.period, *(r.indicators.get(n) for n in names)] for r in result.rows],
    )
    heading = "Indikator per wilayah" if lang == "id" else "Indicators by region"
    export = render.Export(
        title=f"{heading} — {_where(result.name, result.region)}, {result.period}",
        region=result.region,
        region_name=result.name,
        period=result.period,
        lang=lang,
        as_of=_as_of(result.freshness),
        public=result.suppressed,
    )
    return await _file(out_fmt, table, export, f"indicators-{result.region}-{result.period}")


def _num(v: Any) -> float | None:
    return None if v is None else float(v)


@router.get(
    "/regions/{code}/summary",
    response_model=SummaryRead,
    description="Every indicator of one region (national: `ID`) for a period.\n\n"
    + domain.definitions_markdown(),
    responses={
        200: {"content": {m: {} for m in ("application/json", "text/csv", render.MEDIA_TYPES["xlsx"])}}
    },
)
async def region_summary(
    request: Request,
    session: SessionDep,
    principal: ReaderDep,
    now: ClockDep,
    code: str,
    period: PeriodQ,
    fmt: TableFormatQ = None,
    lang: LangQ = "en",
) -> Any:
    """Every indicator of one region (national: `ID`) for a period."""
    out_fmt = _format(request, fmt, ("json", "csv", "xlsx"))
    result = await service.summary(session, principal, code, period, now)
    if out_fmt == "json":
        return SummaryRead.model_validate(result)
    # One row per indicator, so each row says its unit (counts, ratios, rupiah and days side by side).
    table: render.Table = (
        ["region", "region_name", "period", "indicator", "indicator_label", "unit", "value"],
        [
            [
                result.region,
                result.name,
                result.period,
                k,
                render.indicator_label(k, lang),
                render.unit_name(render.column_unit(k), lang),
                v,
            ]
            for k, v in result.indicators.items()
        ],
    )
    heading = "Ringkasan indikator" if lang == "id" else "Indicator summary"
    export = render.Export(
        title=f"{heading} — {_where(result.name, result.region)}, {result.period}",
        region=result.region,
        region_name=result.name,
        period=result.period,
        lang=lang,
        as_of=_as_of(result.freshness),
        public=result.suppressed,
    )
    return await _file(out_fmt, table, export, f"summary-{result.region}-{result.period}")


@router.get(
    "/indicators/{name}/series",
    response_model=SeriesRead,
    description="One indicator of one region over time.\n\n" + domain.definitions_markdown(),
    responses={200: {"content": {m: {} for m in render.MEDIA_TYPES.values()}}},
)
async def indicator_series(
    request: Request,
    session: SessionDep,
    principal: ReaderDep,
    now: ClockDep,
    name: str,
    first: Annotated[
        str,
        Query(alias="from", pattern=PERIOD_PATTERN, description="First period (YYYY-MM, YYYY-Qn or YYYY)"),
    ],
    last: Annotated[
        str, Query(alias="to", pattern=PERIOD_PATTERN, description="Last period, same granularity")
    ],
    region: Annotated[
        str | None, Query(description="Kemendagri code, kkb:<id>, dapur:<id>; empty = national")
    ] = None,
    fmt: FormatQ = None,
    lang: LangQ = "en",
) -> Any:
    """One indicator of one region over time."""
    out_fmt = _format(request, fmt, ("json", "csv", "xlsx", "png", "svg"))
    result = await service.series(session, principal, name, region, first, last, now)
    if out_fmt == "json":
        return SeriesRead.model_validate(result)
    span = f"{first} – {last}"
    title = f"{render.indicator_label(name, lang)} — {_where(result.name, result.region)}, {span}"
    if out_fmt in ("png", "svg"):
        chart = render.Chart(
            indicator=name,
            title=title,
            labels=[p.period for p in result.points],
            values=[_num(p.value) for p in result.points],
            lang=lang,
            as_of=_as_of(result.freshness),
            x_axis="period_axis",
        )
        body = await asyncio.to_thread(render.line_chart, chart, out_fmt)
        return Response(body, media_type=render.MEDIA_TYPES[out_fmt])
    table: render.Table = (
        ["region", "region_name", "period", name],
        [[result.region, result.name, p.period, p.value] for p in result.points],
    )
    export = render.Export(
        title=title,
        region=result.region,
        region_name=result.name,
        period=span,
        lang=lang,
        as_of=_as_of(result.freshness),
        public=result.suppressed,
    )
    return await _file(out_fmt, table, export, f"series-{name}-{result.region}")
