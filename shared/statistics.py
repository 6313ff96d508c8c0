"""The read-only recount endpoints every source service offers (`GET /v1/statistics`), defined once.

Each source service counts the figures it owns from its own tables for a region and a window, so that anyone
(`kencana reporting verify`) can check reporting's projections against the source of truth. The answer holds
aggregate counts only: no ids, names or NIK, and a region is resolved exactly as the service's other endpoints do
(inside the caller's region claim, else 404 so that nothing leaks).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Self

from fastapi import Query
from pydantic import Field

from shared.auth import Principal
from shared.errors import NotFound, ValidationFailed
from shared.regions import CODE_PATTERN, load_regions
from shared.regions.scope import parse_region
from shared.web.schemas import ApiOutput

NATIONAL = "ID"
MAX_WINDOW_DAYS = 366 * 5

RegionQuery = Annotated[
    str | None,
    Query(
        description="Kemendagri code (any level) or `ID` for the nation; default the caller's region",
        # A region code, ID (any case) for the nation, or empty for the caller's region, as `window` reads it.
        json_schema_extra={"pattern": f"^(?:[Ii][Dd]|{CODE_PATTERN[1:-1]})?$"},
    ),
]
FromQuery = Annotated[
    date, Query(alias="from", description="First day of the window (flows are counted from it)")
]
ToQuery = Annotated[
    date,
    Query(alias="to", description="Last day of the window: stocks are counted as at the end of this day"),
]


@dataclass(frozen=True)
class Window:
    """Where and when to count: `region` None is the nation; stocks as at `last`, flows over first..last."""

    region: str | None
    first: date
    last: date

    @property
    def label(self) -> str:
        return self.region or NATIONAL

    @property
    def known_before(self) -> datetime:
        """Midnight (UTC, as reporting dates events) after the window: rows created before it were known in it."""
        return datetime.combine(self.last + timedelta(days=1), time(), tzinfo=UTC)

    def region_params(self) -> dict[str, Any]:
        """Bound parameters of the region condition every recount query spells out:
        `(:all_regions OR <village_code> = :region_code OR <village_code> LIKE :region_prefix)`."""
        return {
            "all_regions": self.region is None,
            "region_code": self.region or "",
            "region_prefix": (self.region or "") + ".%",
        }


def window(principal: Principal, region: str | None, first: date, last: date) -> Window:
    """Resolve a recount request: 422 naming the field for a malformed one, 404 for a region out of reach."""
    if last < first:
        raise ValidationFailed("to is before from", field="query.to", rule="window.order")
    if (last - first).days > MAX_WINDOW_DAYS:
        raise ValidationFailed(
            f"the window spans at most {MAX_WINDOW_DAYS} days", field="query.to", rule="window.length"
        )
    raw = (region or "").strip()
    if raw.upper() == NATIONAL or (raw == "" and principal.region is None):
        if principal.region is not None:
            raise NotFound("region not found")
        return Window(None, first, last)
    if raw == "":
        raw = principal.region or ""
    code = parse_region(raw, "query.region", "region is not a Kemendagri code")
    if not load_regions().exists(code) or not principal.can_access(code):
        raise NotFound("region not found")
    return Window(code, first, last)


@dataclass(frozen=True)
class Recount:
    """What a service's recount found: its counts and areas over a window, under a version of its counting rules."""

    window: Window
    rule_version: str
    counts: dict[str, int]
    areas: list[str]


class StatisticsRead(ApiOutput):
    """Counts of one source service for a region and window; ratios are left to the reader."""

    region: str = Field(description="The region counted (`ID` for the nation)")
    first: date = Field(serialization_alias="from", description="First day of the window")
    last: date = Field(serialization_alias="to", description="Stocks are as at the end of this day")
    rule_version: str = Field(description="Version of the counting rules (docs/indicators.md)")
    counts: dict[str, int] = Field(description="Figure name -> count (see the endpoint's description)")
    areas: list[str] = Field(
        default_factory=list,
        description="Province and regency codes inside the region where this service has records",
    )

    @classmethod
    def from_domain(cls, recount: Recount) -> Self:
        w = recount.window
        return cls(
            region=w.label,
            first=w.first,
            last=w.last,
            rule_version=recount.rule_version,
            counts=recount.counts,
            areas=recount.areas,
        )
