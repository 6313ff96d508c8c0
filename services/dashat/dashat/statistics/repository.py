"""Every query of the recount: set-based counts over enrolments and meal batches."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.statistics import Window

# Enrolments are placed where the beneficiary lives; a beneficiary is fed from the start date until the day the
# enrolment ended (an exit, a completion, a retraction). Enrolments are counted in the month they start, whatever
# happened to them later, as reporting counts them.
_ENROLMENTS = """
SELECT
  count(*) FILTER (WHERE e.start_date <= :last AND (e.ended_on IS NULL OR e.ended_on > :last))
    AS dashat_beneficiaries,
  count(*) FILTER (WHERE e.start_date BETWEEN :first AND :last) AS dashat_enrolled
FROM enrolment e
WHERE (:all_regions OR e.village_code = :region_code OR e.village_code LIKE :region_prefix)
"""

# Portions served = portions delivered to the beneficiaries, by the kitchen's village.
_PORTIONS = """
SELECT coalesce(sum(b.portions_delivered), 0) AS dashat_portions_served
FROM meal_batch b JOIN kitchen k ON k.id = b.kitchen_id
WHERE b.served_on BETWEEN :first AND :last AND (:all_regions OR k.village_code = :region_code OR k.village_code LIKE :region_prefix)
"""

_AREAS = """
SELECT DISTINCT area FROM kitchen k,
  LATERAL (VALUES (left(k.village_code, 2)), (left(k.village_code, 5))) AS a(area)
WHERE (:all_regions OR k.village_code = :region_code OR k.village_code LIKE :region_prefix)
ORDER BY area
"""


def _params(w: Window) -> dict[str, Any]:
    return {**w.region_params(), "first": w.first, "last": w.last}


async def counts(session: AsyncSession, w: Window) -> dict[str, int]:
    """Beneficiaries as at the window's end, enrolments and portions served in it."""
    out: dict[str, int] = {}
    for sql in (_ENROLMENTS, _PORTIONS):
        row = (await session.execute(text(sql), _params(w))).mappings().one()
        out |= {k: int(v) for k, v in row.items()}
    return out


async def areas(session: AsyncSession, w: Window) -> list[str]:
    """Province and regency codes where the region has kitchens."""
    return [str(a) for a in (await session.execute(text(_AREAS), _params(w))).scalars()]
