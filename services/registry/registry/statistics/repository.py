"""Every query of the recount: set-based counts over families, persons, KB statuses and measurements."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.events.vocab import MKJP_METHODS, MODERN_METHODS
from shared.statistics import Window

# One pass over the region's married, living persons with each one's KB status as at the window's end (the latest
# status in effect then, among those recorded by then). Husband and wife are paired inside their family card by their
# relations to its head, the same rule as reporting's fold (reporting.projection.domain.husband_of): an `istri` with
# the (male) head, a female head with the `suami`, a married daughter (`anak`) with the son-in-law (`menantu`) and a
# daughter-in-law with the son; each such pair shares a `couple_key`. A wife has a husband when exactly one married man
# holds the partner relation, and, for a daughter or a daughter-in-law, no other married woman holds hers (who is
# whose is then unknown, so she counts on her own status); anyone else is a couple of one. The couple uses KB when
# either partner uses any method (BKKBN: a PUS is a KB participant when the wife or the husband uses a method; MOP,
# condoms and traditional methods are the husband's), a modern one when either uses a modern method, MKJP likewise. A
# couple is PUS when the wife is 15-49 in completed years: `birth + 15 years <= day` is PostgreSQL's month
# arithmetic, which clamps 29 February to the 28th exactly as shared/ages.add_months does. Every table is joined as
# itself (no materialised step) so that the planner sees real row counts: hash joins for the nation, index lookups
# for a regency (EXPLAIN on 1M families: the nation ~15 s on the loaded 2-core dev machine, a province ~2 s, a
# regency ~0.2 s).
_COUPLES = """
WITH status AS (
  SELECT p.family_id, p.sex, p.birth_date,
    CASE
      WHEN (p.sex = 'P' AND p.relation = 'istri') OR (p.sex = 'L' AND p.relation = 'kepala_keluarga') THEN 'istri'
      WHEN (p.sex = 'P' AND p.relation = 'kepala_keluarga') OR (p.sex = 'L' AND p.relation = 'suami') THEN 'suami'
      WHEN (p.sex = 'P' AND p.relation = 'anak') OR (p.sex = 'L' AND p.relation = 'menantu') THEN 'anak'
      WHEN (p.sex = 'P' AND p.relation = 'menantu') OR (p.sex = 'L' AND p.relation = 'anak') THEN 'menantu'
      ELSE p.id::text
    END AS couple_key,
    coalesce(k.is_user, false) AS is_user, k.method, k.reason_non_use
  FROM person p
  JOIN family f ON f.id = p.family_id
  LEFT JOIN (
    SELECT DISTINCT ON (k.person_id) k.person_id, k.is_user, k.method, k.reason_non_use
    FROM kb_status k
    JOIN person kp ON kp.id = k.person_id
    JOIN family kf ON kf.id = kp.family_id
    WHERE k.since <= :last AND k.created_at < :known_before
      AND (:all_regions OR kf.village_code = :region_code OR kf.village_code LIKE :region_prefix)
    ORDER BY k.person_id, k.since DESC, k.created_at DESC
  ) k ON k.person_id = p.id
  WHERE (:all_regions OR f.village_code = :region_code OR f.village_code LIKE :region_prefix)
    AND f.deleted_at IS NULL AND f.created_at < :known_before
    AND p.marital_status = 'kawin' AND p.deleted_at IS NULL AND p.created_at < :known_before
    AND (p.died_on IS NULL OR p.died_on > :last) AND (p.moved_out_on IS NULL OR p.moved_out_on > :last)
),
couple AS (
  SELECT sex, birth_date, is_user, method, reason_non_use, couple_key,
    count(*) FILTER (WHERE sex = 'L') OVER w AS husbands,
    count(*) FILTER (WHERE sex = 'P') OVER w AS wives,
    coalesce(bool_or(sex = 'L' AND is_user) OVER w, false) AS husband_user,
    coalesce(bool_or(sex = 'L' AND is_user AND method = ANY(CAST(:modern AS text[]))) OVER w, false)
      AS husband_modern,
    coalesce(bool_or(sex = 'L' AND is_user AND method = ANY(CAST(:mkjp AS text[]))) OVER w, false) AS husband_mkjp
  FROM status
  WINDOW w AS (PARTITION BY family_id, couple_key)
),
paired AS (
  SELECT *, husbands = 1 AND (couple_key IN ('istri', 'suami') OR wives = 1) AS has_husband
  FROM couple
),
couple_use AS (
  SELECT is_user OR (has_husband AND husband_user) AS user_,
    (is_user AND method = ANY(CAST(:modern AS text[]))) OR (has_husband AND husband_modern) AS modern,
    (is_user AND method = ANY(CAST(:mkjp AS text[]))) OR (has_husband AND husband_mkjp) AS mkjp,
    reason_non_use
  FROM paired
  WHERE sex = 'P' AND (birth_date + interval '15 years')::date <= :last
    AND (birth_date + interval '50 years')::date > :last
)
SELECT
  count(*) AS pus,
  count(*) FILTER (WHERE user_) AS kb_users,
  count(*) FILTER (WHERE modern) AS kb_users_modern,
  count(*) FILTER (WHERE mkjp) AS mkjp_users,
  count(*) FILTER (WHERE NOT user_ AND reason_non_use = 'iat') AS non_users_iat,
  count(*) FILTER (WHERE NOT user_ AND reason_non_use = 'tial') AS non_users_tial
FROM couple_use
"""

_FAMILIES = """
SELECT count(*) AS families_registered, count(*) FILTER (WHERE f.krs) AS krs_families
FROM family f
WHERE f.deleted_at IS NULL AND f.created_at < :known_before
  AND (:all_regions OR f.village_code = :region_code OR f.village_code LIKE :region_prefix)
"""

# Children measured in the window: each child once, decided by its latest valid measurement (active, not flagged,
# with a HAZ) taken while still in the age band (fewer than :months completed months, shared/ages).
_MEASURED = """
WITH valid AS (
  SELECT DISTINCT ON (m.person_id) m.person_id, m.haz
  FROM measurement m
  JOIN person p ON p.id = m.person_id
  JOIN family f ON f.id = m.family_id
  WHERE m.status = 'active' AND m.haz IS NOT NULL AND NOT m.haz_flag
    AND m.measured_on BETWEEN :first AND :last AND m.created_at < :known_before
    AND m.measured_on >= p.birth_date AND m.measured_on < (p.birth_date + make_interval(months => :months))::date
    AND (:all_regions OR f.village_code = :region_code OR f.village_code LIKE :region_prefix)
  ORDER BY m.person_id, m.measured_on DESC, m.created_at DESC
)
SELECT count(*) AS measured, count(*) FILTER (WHERE haz < -2) AS stunted FROM valid
"""

_AREAS = """
SELECT DISTINCT area FROM family f,
  LATERAL (VALUES (left(f.village_code, 2)), (left(f.village_code, 5))) AS a(area)
WHERE f.deleted_at IS NULL AND f.created_at < :known_before AND (:all_regions OR f.village_code = :region_code OR f.village_code LIKE :region_prefix)
ORDER BY area
"""


def _params(w: Window) -> dict[str, Any]:
    return {**w.region_params(), "first": w.first, "last": w.last, "known_before": w.known_before}


async def couples(session: AsyncSession, w: Window) -> dict[str, int]:
    """Families, KRS families and PUS couples by KB participation as at the window's end."""
    params = {
        **_params(w),
        "modern": sorted(MODERN_METHODS),
        "mkjp": sorted(MKJP_METHODS),
    }
    # The national recount sorts millions of rows: give this transaction the memory to do it without spilling.
    await session.execute(text("SET LOCAL work_mem = '64MB'"))
    out: dict[str, int] = {}
    for sql in (_FAMILIES, _COUPLES):
        row = (await session.execute(text(sql), params)).mappings().one()
        out |= {k: int(v) for k, v in row.items()}
    return out


async def measured(session: AsyncSession, w: Window, months: int) -> tuple[int, int]:
    """Children under `months` completed months measured in the window, and how many of them are stunted."""
    row = (await session.execute(text(_MEASURED), {**_params(w), "months": months})).one()
    return int(row.measured), int(row.stunted)


async def areas(session: AsyncSession, w: Window) -> list[str]:
    """Province and regency codes where the region has families."""
    return [str(a) for a in (await session.execute(text(_AREAS), _params(w))).scalars()]
