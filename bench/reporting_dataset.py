"""Query latency of the indicator API on projections equivalent to >= 1 million families.

`python -m bench.reporting_dataset [--families N] [--villages N] [--months N] [--repeats N]` (`make bench` runs it
through bench/reporting_queries.py).
It builds a scratch database with the reporting migrations, bulk-writes pre-aggregated village x month rows
(what the projector would have written for that many families), rolls them up to every level in one slot, as
the fact rollup does (or, for comparison, splits them over the slots of the topic partitions first, as the
projector of rep0003 wrote them), adds DASHAT kitchens and enrolments, then times the API (in-process ASGI, real
PostgreSQL) for national, province, regency, district and village queries: p50 / p95 over repeated calls.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import get_args

import asyncpg
from reporting.config import Settings
from reporting.main import create_app
from reporting.projection.repository import place_stocks_from_facts

from shared.events.vocab import DashatCategory, FundSource, KbMethod, NonUseReason, UppkaCategory
from shared.migrations import upgrade
from shared.regions import Region, load_regions
from shared.testing.plugin import bearer, recreate_database, running_app

DB_NAME = "scratch_reporting_bench"
START = "2025-01-01"

# (measure, base stock per family or flow per family per month); stocks get a base in the first month and
# small monthly deltas afterwards, flows a value in about half of the months.
_STOCKS_PER_FAMILY = {
    "s.reg.families": 1.0,
    "s.reg.persons": 3.6,
    "s.kb.pus": 0.62,
    "s.kb.users": 0.4,
    "s.kb.mkjp_users": 0.11,
    **{f"s.kb.method.{m}": 0.05 for m in get_args(KbMethod)},
    **{f"s.kb.nonuse.{r}": 0.04 for r in get_args(NonUseReason)},
    "s.krs.families": 0.2,
    **{f"s.krs.reason.{r}": 0.08 for r in ("air_minum", "jamban", "4_terlalu")},
    "s.stunting.open_cases": 0.02,
    "s.uppka.groups_existing": 0.004,
    "s.uppka.groups_active": 0.003,
    "s.uppka.members": 0.06,
    **{f"s.uppka.members.{c}": 0.015 for c in get_args(UppkaCategory)},
    "s.uppka.members_kb_users": 0.04,
    "s.uppka.members_mkjp": 0.02,
    "s.dashat.kitchens_active": 0.001,
    "s.dashat.beneficiaries": 0.03,
    "s.dashat.haz_children": 0.01,
    "s.dashat.haz_change_milli": 3.0,
    **{f"s.dashat.beneficiaries.{c}": 0.006 for c in get_args(DashatCategory)},
}
_FLOWS_PER_FAMILY = {
    "f.reg.new_families": 0.01,
    "f.stunting.new_cases": 0.003,
    "f.stunting.resolved": 0.002,
    "f.stunting.retracted": 0.0002,
    "f.uppka.omzet": 2500.0,
    "f.uppka.profit": 700.0,
    "f.uppka.members_present": 0.05,
    "f.uppka.active_members": 0.06,
    "f.dashat.portions_delivered": 0.6,
    "f.dashat.expenses": 11000.0,
    "f.dashat.funds": 12000.0,
    **{f"f.dashat.funds.{s}": 2000.0 for s in get_args(FundSource)},
    "f.dashat.waitlisted": 0.002,
}
_DISTINCT_PER_FAMILY = {
    "d.stunting.measured": 0.12,
    "d.stunting.stunted": 0.025,
    "d.stunting.severe": 0.006,
    "d.uppka.groups_reporting": 0.003,
    "d.dashat.kitchens_low_runway": 0.0003,
}


# Every village row rolled up into its district, regency and province rows, slot by slot (the rollup
# does this per poll).
_ROLLUP = """
INSERT INTO rep_fact (region, grain, period_start, measure, slot, level, value)
SELECT left(region, $1), grain, period_start, measure, slot, $2, sum(value)
FROM rep_fact WHERE level = 4 GROUP BY 1, 2, 3, 4, 5
"""

# The fact rollup writes one row per region, grain, period and measure (1). For comparison, 6 gives the
# layout of rep0003, whose projector wrote each delta in the slot of the partition its event came from
# (`domain.slot_of`): registry measures in slots 0-5, UPPKA 1000-1005, DASHAT 2000-2005 with 6 partitions per
# topic. A village's families hash to every partition, so its opening stocks (the first month) and distinct
# counts are split over all of its topic's slots; a later monthly change or flow lands in one slot at random.
SLOTS_PER_TOPIC = 1
_SPLIT = """
INSERT INTO rep_fact (region, grain, period_start, measure, slot, level, value)
SELECT f.region, f.grain, f.period_start, f.measure, t.base + s.i, f.level,
       f.value / $2::int + CASE WHEN s.i = 0 THEN f.value % $2::int ELSE 0 END
FROM vf f
CROSS JOIN LATERAL (SELECT CASE split_part(f.measure, '.', 2) WHEN 'uppka' THEN 1000 WHEN 'dashat' THEN 2000
                           ELSE 0 END AS base) t
CROSS JOIN generate_series(0, $2::int - 1) s(i)
WHERE f.grain <> 'm' OR f.period_start = $1::date
UNION ALL
SELECT f.region, f.grain, f.period_start, f.measure, t.base + (random() * ($2::int - 1))::int, f.level, f.value
FROM vf f
CROSS JOIN LATERAL (SELECT CASE split_part(f.measure, '.', 2) WHEN 'uppka' THEN 1000 WHEN 'dashat' THEN 2000
                           ELSE 0 END AS base) t
WHERE f.grain = 'm' AND f.period_start > $1::date
"""


@dataclass
class Figures:
    name: str
    p50_ms: float
    p95_ms: float
    rows: int


async def build(
    url: str, families: int, villages: int, months: int, slots_per_topic: int = SLOTS_PER_TOPIC
) -> dict[str, int]:
    """Bulk-write village rows with COPY, then roll them up with set-based inserts (same shape as the projector)."""
    codes = [r.code for r in _all_villages()]
    step = max(len(codes) // villages, 1)
    chosen = codes[::step][:villages]
    per_village = families / len(chosen)
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute("SELECT setseed(0.42)")
        # The migrations' key and indexes, dropped for the bulk load and built again after it as they were defined.
        indexes = [
            (r["indexname"], r["indexdef"])
            for r in await conn.fetch(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'rep_fact'"
                " AND indexname <> 'pk_rep_fact'"
            )
        ]
        primary_key = await conn.fetchval(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'pk_rep_fact'"
        )
        await conn.execute("ALTER TABLE rep_fact DROP CONSTRAINT pk_rep_fact")
        for name, _ in indexes:
            await conn.execute(f"DROP INDEX {name}")
        await conn.execute('CREATE TEMP TABLE v (code text COLLATE "C")')
        await conn.copy_records_to_table("v", records=[(c,) for c in chosen])
        await conn.execute("CREATE TEMP TABLE ms (measure text, kind text, per_family float8)")
        await conn.copy_records_to_table(
            "ms",
            records=[(m, "s", x) for m, x in _STOCKS_PER_FAMILY.items()]
            + [(m, "f", x) for m, x in _FLOWS_PER_FAMILY.items()]
            + [(m, "d", x) for m, x in _DISTINCT_PER_FAMILY.items()],
        )
        t0 = time.perf_counter()
        # Village rows are generated as one total each, then split over the slots of the topic partitions
        # that write them (see `_SPLIT`).
        await conn.execute(
            'CREATE TEMP TABLE vf (region text COLLATE "C", grain text, period_start date, measure text,'
            " level smallint, value bigint)"
        )
        await conn.execute(
            """
            INSERT INTO vf (region, grain, period_start, measure, level, value)
            SELECT v.code, 'm', mo.p, ms.measure, 4,
              CASE
                WHEN ms.kind = 's' AND mo.i = 0 THEN round(ms.per_family * $1 * (0.5 + random()))
                WHEN ms.kind = 's' THEN round(ms.per_family * $1 * 0.05 * (random() - 0.4))
                ELSE round(ms.per_family * $1 * (0.5 + random()))
              END
            FROM v
            CROSS JOIN (SELECT i, ($2::date + make_interval(months => i))::date AS p
                        FROM generate_series(0, $3 - 1) i) mo
            CROSS JOIN ms
            WHERE mo.i = 0 OR random() < CASE ms.kind WHEN 's' THEN 0.3 ELSE 0.6 END
            """,
            per_village,
            _date(START),
            months,
        )
        # Distinct counts also exist per quarter and year (not additive, the projector writes them per grain).
        await conn.execute(
            """
            INSERT INTO vf (region, grain, period_start, measure, level, value)
            SELECT f.region, g.grain, date_trunc(g.unit, f.period_start)::date, f.measure, 4, max(f.value)
            FROM vf f CROSS JOIN (VALUES ('q', 'quarter'), ('y', 'year')) g(grain, unit)
            WHERE f.level = 4 AND f.grain = 'm' AND f.measure LIKE 'd.%'
            GROUP BY f.region, g.grain, date_trunc(g.unit, f.period_start), f.measure
            """
        )
        await conn.execute(_SPLIT, _date(START), slots_per_topic)
        for level, length in ((3, 8), (2, 5), (1, 2)):
            await conn.execute(_ROLLUP, length, level)
        await conn.execute(
            """
            INSERT INTO rep_fact (region, grain, period_start, measure, slot, level, value)
            SELECT 'ID', grain, period_start, measure, slot, 0, sum(value) FROM rep_fact WHERE level = 1
              GROUP BY 2, 3, 4, 5
            UNION ALL
            SELECT left(code, 2), 'y', date_trunc('year', $1::date)::date, 'd.uppka.target_groups', 1000, 1, 40
              FROM v GROUP BY left(code, 2)
            """,
            _date(START),
        )
        # DASHAT entities: kitchens, each serving its village's Kampung KB area, with the rows the projector
        # writes for them: the opening (`kitchens_active` +1 in its first month), monthly beneficiary deltas,
        # funds, expenses and portions; the areas' eligible targets (stocks, monthly deltas); enrolments with
        # detection-to-enrolment waits.
        await conn.execute(
            """
            INSERT INTO rep_place (region, slot, village_code, kampung_kb, seen_at)
            SELECT 'dapur:' || gen_random_uuid(), 2000, code, 'KKB-' || code, now() FROM v WHERE random() < 0.25;
            INSERT INTO rep_fact (region, grain, period_start, measure, slot, level, value)
            SELECT p.region, 'm', ($1::date + make_interval(months => i))::date, m.measure,
                   2000 + (random() * 5)::int, 6,
                   CASE m.measure WHEN 's.dashat.kitchens_active' THEN 1
                                  WHEN 's.dashat.beneficiaries' THEN CASE WHEN i = 0 THEN 20 ELSE 2 - (random() * 4)::int END
                                  WHEN 'f.dashat.portions_delivered' THEN 300 + (random() * 600)::int
                                  ELSE round(random() * 2000000) END
            FROM rep_place p CROSS JOIN generate_series(0, $2 - 1) i
            CROSS JOIN (VALUES ('f.dashat.funds'), ('f.dashat.expenses'), ('f.dashat.portions_delivered'),
                               ('s.dashat.beneficiaries'), ('s.dashat.kitchens_active')) m(measure)
            WHERE p.region LIKE 'dapur:%' AND (m.measure <> 's.dashat.kitchens_active' OR i = 0);
            INSERT INTO rep_fact (region, grain, period_start, measure, slot, level, value)
            SELECT 'kkb:' || p.kampung_kb, 'm', ($1::date + make_interval(months => i))::date, m.measure, 0, 5,
                   CASE WHEN i = 0 THEN 10 ELSE 2 - (random() * 4)::int END
            FROM rep_place p CROSS JOIN generate_series(0, $2 - 1) i
            CROSS JOIN (VALUES ('s.reg.catin_target'), ('s.reg.pregnant'), ('s.reg.breastfeeding'),
                               ('s.stunting.open_cases')) m(measure)
            WHERE p.region LIKE 'dapur:%';
            INSERT INTO rep_enrolment (enrolment_id, kitchen_id, person_id, village_code, category, start_date,
                                       enrolled_at, wait_seconds)
            SELECT gen_random_uuid(), substr(p.region, 7)::uuid, gen_random_uuid(), p.village_code, 'baduta_stunting',
                   ($1::date + (random() * 30 * $2)::int), now(), random() * 14 * 86400
            FROM rep_place p CROSS JOIN generate_series(1, 12) n WHERE p.region LIKE 'dapur:%';
            """.replace("$1", f"'{START}'").replace("$2", str(int(months)))
        )
        await conn.execute(f"ALTER TABLE rep_fact ADD CONSTRAINT pk_rep_fact {primary_key}")
        for _, definition in indexes:
            await conn.execute(definition)
        await conn.execute(place_stocks_from_facts())
        # As autovacuum leaves a settled table: statistics, and the visibility map index-only scans rely on.
        await conn.execute("VACUUM ANALYZE")
        load_seconds = time.perf_counter() - t0
        counts = {
            "villages": len(chosen),
            "families": int(
                await conn.fetchval(
                    "SELECT sum(value) FROM rep_fact WHERE region = 'ID' AND measure = 's.reg.families'"
                )
            ),
            "fact_rows": int(await conn.fetchval("SELECT count(*) FROM rep_fact")),
            "national_rows": int(await conn.fetchval("SELECT count(*) FROM rep_fact WHERE region = 'ID'")),
            "kitchens": int(await conn.fetchval("SELECT count(*) FROM rep_place")),
            "enrolments": int(await conn.fetchval("SELECT count(*) FROM rep_enrolment")),
            "load_seconds": int(load_seconds),
        }
    finally:
        await conn.close()
    return counts


def _date(text: str) -> date:
    return date.fromisoformat(text)


def _all_villages() -> list[Region]:
    regions = load_regions()
    out: list[Region] = []
    for p in regions.children(None):
        for r in regions.children(p.code):
            for d in regions.children(r.code):
                out.extend(regions.children(d.code))
    return out


async def measure(url: str, queries: Sequence[tuple[str, str]], repeats: int) -> list[Figures]:
    app = create_app(Settings(database_url=url, database_pool_size=4))
    headers = bearer("reporting:read")
    figures = []
    async with running_app(app) as client:
        for name, path in queries:
            timings = []
            rows = 0
            for i in range(repeats + 2):
                t0 = time.perf_counter()
                r = await client.get(path, headers=headers)
                elapsed = (time.perf_counter() - t0) * 1000
                if r.status_code != 200:
                    raise RuntimeError(f"{path}: {r.status_code} {r.text[:300]}")
                if i >= 2:  # the first calls warm caches and the pool
                    timings.append(elapsed)
                rows = len(r.json().get("rows", [])) or len(r.json().get("points", [])) or 1
            timings.sort()
            figures.append(
                Figures(name, statistics.median(timings), timings[max(int(len(timings) * 0.95) - 1, 0)], rows)
            )
    return figures


async def benchmark(
    families: int = 1_000_000,
    villages: int = 20_000,
    months: int = 24,
    repeats: int = 30,
    slots_per_topic: int = SLOTS_PER_TOPIC,
) -> tuple[dict[str, int], list[Figures]]:
    """Build the dataset in the scratch database and time the indicator queries; returns counts and figures."""
    url = await recreate_database(f"{DB_NAME}_s{slots_per_topic}")
    await upgrade("reporting", url)
    counts = await build(url, families, villages, months, slots_per_topic)
    village = (await _first_village(url)) or "15.71.01.1001"
    regency, province, district = village[:5], village[:2], village[:8]
    period = "2026-06" if months > 12 else "2025-12"
    year_period = period[:4]
    queries = [
        ("national summary (month)", f"/v1/regions/ID/summary?period={period}"),
        ("national summary (year)", f"/v1/regions/ID/summary?period={year_period}"),
        ("province summary", f"/v1/regions/{province}/summary?period={period}"),
        ("regency summary", f"/v1/regions/{regency}/summary?period={period}"),
        ("district summary", f"/v1/regions/{district}/summary?period={period}"),
        ("village summary", f"/v1/regions/{village}/summary?period={period}"),
        ("national breakdown -> provinces", f"/v1/indicators?period={period}"),
        ("province breakdown -> regencies", f"/v1/indicators?region={province}&period={period}"),
        ("regency breakdown -> districts", f"/v1/indicators?region={regency}&period={period}"),
        ("district breakdown -> villages", f"/v1/indicators?region={district}&period={period}"),
        ("national series cpr, 12 months", f"/v1/indicators/cpr/series?from={START[:7]}&to=2025-12"),
    ]
    return counts, await measure(url, queries, repeats)


def main(families: int = 1_000_000, villages: int = 20_000, months: int = 24, repeats: int = 30) -> None:
    counts, figures = asyncio.run(benchmark(families, villages, months, repeats))
    print("dataset:", counts, flush=True)
    print(f"{'query':36} {'p50 ms':>8} {'p95 ms':>8} {'rows':>6}")
    for f in figures:
        print(f"{f.name:36} {f.p50_ms:8.1f} {f.p95_ms:8.1f} {f.rows:6d}")


async def _first_village(url: str) -> str | None:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        # A village with a kitchen, in a busy regency, so every query has something to read.
        value = await conn.fetchval("SELECT village_code FROM rep_place ORDER BY village_code LIMIT 1")
        return str(value) if value is not None else None
    finally:
        await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--families", type=int, default=1_000_000)
    parser.add_argument("--villages", type=int, default=20_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    main(args.families, args.villages, args.months, args.repeats)
