"""Small helpers every uppka module shares: money and period types, region checks on writes and filters, dates."""

from __future__ import annotations

from datetime import date
from typing import Annotated, TypeVar

from pydantic import Field
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Principal
from shared.errors import ValidationFailed
from shared.regions import load_regions
from shared.regions.scope import parse_region
from shared.web.schemas import ApiInt

T = TypeVar("T")

# Money is integer rupiah: "1500", true and 1500.5 in JSON are refused rather than coerced; 1500.0 is the JSON
# integer 1500 (what the declared `type: integer` admits), so it is read as such.
Rupiah = Annotated[ApiInt, Field(ge=0, le=10**15, description="Integer rupiah, never negative")]
Count = Annotated[ApiInt, Field(ge=0, le=1_000_000)]
# A month of the programme's span (the years of ApiDate, 1900..2100): year 0000 is no date Python can build and
# 9999-12 has no following month for the due date, both were 500s.
PERIOD_YEAR = r"(19\d{2}|20\d{2}|2100)"
PERIOD_PATTERN = rf"^{PERIOD_YEAR}-(0[1-9]|1[0-2])$"
Period = Annotated[str, Field(pattern=PERIOD_PATTERN, description="Month as YYYY-MM")]


def check_not_future(value: date | None, today: date, *, field: str, rule: str) -> None:
    """422 naming the field when a date lies after today (the message names the field's last part)."""
    if value is not None and value > today:
        raise ValidationFailed(f"{field.rsplit('.', 1)[-1]} is in the future", field=field, rule=rule)


def writable_region(code: str, level: str, principal: Principal, *, field: str) -> str:
    """A known Kemendagri code of `level` (village, province) inside the caller's region, dotted.

    Writing outside one's region looks exactly like naming an unknown code: no existence leak.
    """
    dotted = parse_region(code, field, "not a Kemendagri code")
    if load_regions().level_of(dotted) != level or not principal.can_access(dotted):
        raise ValidationFailed(f"not a known {level} code", field=field, rule=f"region.unknown_{level}")
    return dotted


def normalize_region_filter(value: str | None, field: str = "query.region") -> str | None:
    """A region filter from the query string, dotted, and known in the reference.

    Absent is no filter; an empty value is malformed (422), as the declared pattern says, not "everything".
    """
    if value is None:
        return None
    code = parse_region(value, field, "region is not a Kemendagri code")
    if not load_regions().exists(code):
        raise ValidationFailed("region is not in the reference", field=field, rule="region.unknown")
    return code


async def one_or_none(session: AsyncSession, stmt: Select[T], *, lock: bool = False) -> T | None:
    """The single row a query finds (None when none), locked FOR UPDATE when the caller will change it."""
    if lock:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()
