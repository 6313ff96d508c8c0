"""Every query of the recount: set-based counts over groups and members."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.statistics import Window

# A group exists from its founding (its registration when the founding date is unknown) until it is dissolved,
# the same rule as the reporting-rate coverage of /v1/indicators/reporting.
_GROUPS = """
SELECT count(*) AS groups_existing
FROM uppka_group g
WHERE coalesce(g.founded_on, g.created_at::date) <= :last
  AND (g.dissolved_on IS NULL OR g.dissolved_on > :last)
  AND (:all_regions OR g.village_code = :region_code OR g.village_code LIKE :region_prefix)
"""

# Members as at the window's end, placed where they live (as the member events place them). Members' KB
# participation is over PUS members, as reporting's `uppka_members_kb_participation` (BKKBN's KB participation is a
# share of PUS; remaja and lansia members are not couples of reproductive age, issue 11): PUS members using KB /
# PUS members. Members' KB facts are the registry's, synced by events.
_MEMBERS = """
SELECT count(*) AS uppka_members,
  count(*) FILTER (WHERE m.kb_user) AS uppka_members_kb_users,
  count(*) FILTER (WHERE m.kb_user AND m.mkjp) AS uppka_members_mkjp,
  count(*) FILTER (WHERE m.category = 'pus') AS uppka_members_pus,
  count(*) FILTER (WHERE m.category = 'pus' AND m.kb_user) AS uppka_members_pus_kb_users
FROM member m
WHERE m.joined_on <= :last AND (m.left_on IS NULL OR m.left_on > :last)
  AND (:all_regions OR m.village_code = :region_code OR m.village_code LIKE :region_prefix)
"""

_AREAS = """
SELECT DISTINCT area FROM uppka_group g,
  LATERAL (VALUES (left(g.village_code, 2)), (left(g.village_code, 5))) AS a(area)
WHERE (:all_regions OR g.village_code = :region_code OR g.village_code LIKE :region_prefix)
ORDER BY area
"""


def _params(w: Window) -> dict[str, Any]:
    return {**w.region_params(), "last": w.last}


async def counts(session: AsyncSession, w: Window) -> dict[str, int]:
    """Groups existing and members (by KB participation) as at the window's end."""
    out: dict[str, int] = {}
    for sql in (_GROUPS, _MEMBERS):
        row = (await session.execute(text(sql), _params(w))).mappings().one()
        out |= {k: int(v) for k, v in row.items()}
    return out


async def areas(session: AsyncSession, w: Window) -> list[str]:
    """Province and regency codes where the region has groups."""
    return [str(a) for a in (await session.execute(text(_AREAS), _params(w))).scalars()]
