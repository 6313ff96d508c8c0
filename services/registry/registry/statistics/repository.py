"""Every query of the recount: set-based counts over families, persons, KB statuses and measurements."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.events.vocab import HUSBAND_METHODS, MKJP_METHODS, MODERN_METHODS
from shared.statistics import Window

# Husband and wife in one family card, by their relations to its head (Permendagri 108/2019 KK relations).
COUPLE_RELATIONS = (
    ("istri", "kepala_keluarga"),
    ("kepala_keluarga", "suami"),
    ("anak", "menantu"),
    ("menantu", "anak"),
    ("orang_tua", "orang_tua"),
    ("mertua", "mertua"),
)

# One pass over the region's families, their married living persons and each one's KB status as at the window's
# end (the latest status in effect then, among those recorded by then). A couple is PUS when the wife is married
# and 15-49 in completed years: `birth + 15 years <= day` is PostgreSQL's month arithmetic, which clamps 29 February
# to the 28th exactly as shared/ages.add_months does.
_COUPLES = """
WITH fam AS (
  SELECT f.id, f.village_code, f.krs
  FROM family f
  WHERE f.deleted_at IS NULL AND f.created_at < :known_before AND (:all_regions OR f.village_code = :region_code OR f.village_code LIKE :region_prefix)
),
married AS (
  SELECT p.id, p.family_id, p.sex, p.relation, p.birth_date
  FROM person p JOIN fam ON fam.id = p.family_id
  WHERE p.deleted_at IS NULL AND p.created_at < :known_before AND p.marital_status = 'kawin'
    AND (p.died_on IS NULL OR p.died_on > :last) AND (p.moved_out_on IS NULL OR p.moved_out_on > :last)
),
kb AS (
  SELECT DISTINCT ON (k.person_id) k.person_id, k.is_user, k.method, k.reason_non_use
  FROM kb_status k JOIN married m ON m.id = k.person_id
  WHERE k.since <= :last AND k.created_at < :known_before
  ORDER BY k.person_id, k.since DESC, k.created_at DESC
),
wife AS (
  SELECT m.id, m.family_id, m.relation, kb.is_user, kb.method, kb.reason_non_use
  FROM married m LEFT JOIN kb ON kb.person_id = m.id
  WHERE m.sex = 'P' AND (m.birth_date + interval '15 years')::date <= :last
    AND (m.birth_date + interval '50 years')::date > :last
),
husband AS (
  SELECT m.family_id, m.relation, kb.method
  FROM married m JOIN kb ON kb.person_id = m.id
  WHERE m.sex = 'L' AND kb.is_user AND kb.method = ANY(CAST(:husband_methods AS text[]))
),
pair(wife_relation, husband_relation) AS (SELECT * FROM unnest(CAST(:wife_relations AS text[]), CAST(:husband_relations AS text[]))),
couple AS (
  SELECT w.is_user AS wife_user, w.method AS wife_method, w.reason_non_use,
    array_remove(array_agg(h.method), NULL) AS husband_methods
  FROM wife w
  LEFT JOIN pair ON pair.wife_relation = w.relation
  LEFT JOIN husband h ON h.family_id = w.family_id AND h.relation = pair.husband_relation
  GROUP BY w.id, w.is_user, w.method, w.reason_non_use
),
couple_use AS (
  SELECT
    coalesce(wife_user, false) OR cardinality(husband_methods) > 0 AS user_,
    (coalesce(wife_user, false) AND wife_method = ANY(CAST(:modern AS text[]))) OR husband_methods && CAST(:modern AS text[]) AS modern,
    (coalesce(wife_user, false) AND wife_method = ANY(CAST(:mkjp AS text[]))) OR husband_methods && CAST(:mkjp AS text[]) AS mkjp,
    reason_non_use
  FROM couple
)
SELECT
  (SELECT count(*) FROM fam) AS families_registered,
  (SELECT count(*) FROM fam WHERE krs) AS krs_families,
  count(*) AS pus,
  count(*) FILTER (WHERE user_) AS kb_users,
  count(*) FILTER (WHERE modern) AS kb_users_modern,
  count(*) FILTER (WHERE mkjp) AS mkjp_users,
  count(*) FILTER (WHERE NOT user_ AND reason_non_use = 'iat') AS non_users_iat,
  count(*) FILTER (WHERE NOT user_ AND reason_non_use = 'tial') AS non_users_tial
FROM couple_use
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
        "husband_methods": sorted(HUSBAND_METHODS),
        "modern": sorted(MODERN_METHODS),
        "mkjp": sorted(MKJP_METHODS),
        "wife_relations": [wife for wife, _ in COUPLE_RELATIONS],
        "husband_relations": [husband for _, husband in COUPLE_RELATIONS],
    }
    row = (await session.execute(text(_COUPLES), params)).mappings().one()
    return {k: int(v) for k, v in row.items()}


async def measured(session: AsyncSession, w: Window, months: int) -> tuple[int, int]:
    """Children under `months` completed months measured in the window, and how many of them are stunted."""
    row = (await session.execute(text(_MEASURED), {**_params(w), "months": months})).one()
    return int(row.measured), int(row.stunted)


async def areas(session: AsyncSession, w: Window) -> list[str]:
    """Province and regency codes where the region has families."""
    return [str(a) for a in (await session.execute(text(_AREAS), _params(w))).scalars()]
