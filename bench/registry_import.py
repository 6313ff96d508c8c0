"""Registry bulk import: 100,000 persons through `POST /v1/imports` (commit) against raw COPY of the same rows.

The file is realistic: ~25,000 families in villages drawn from the Kemendagri reference, valid NIK/KK numbers
made from real district codes and the persons' birth dates and sex, children under five with a measurement,
newborns without NIK. The import runs through the HTTP app in-process (upload, job, worker, every rule, the
encryption, blind indexes, KRS and outbox events); COPY loads the same rows as text into a plain table of the
same width, which is the floor no validating import can beat.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import random
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg

from bench.proc import cpu_seconds

COLUMNS = [
    "kk_number", "village_code", "rw", "rt", "welfare_decile", "drinking_water_source", "latrine_type", "nik",
    "name", "sex", "birth_date", "relation", "marital_status", "occupation", "measured_on", "weight_kg",
    "lenhei_cm", "position",
]  # fmt: skip
FIRST = [
    "Budi",
    "Siti",
    "Agus",
    "Dewi",
    "Andi",
    "Rina",
    "Joko",
    "Sri",
    "Eko",
    "Nur",
    "Ahmad",
    "Putri",
    "Rudi",
]
LAST = [
    "Santoso",
    "Wijaya",
    "Saputra",
    "Lestari",
    "Hidayat",
    "Kusuma",
    "Pratama",
    "Sari",
    "Nasution",
    "Lubis",
]
WATER = ["ledeng", "sumur_bor", "sumur_terlindung", "sumur_tidak_terlindung", "isi_ulang", "air_hujan"]
LATRINE = ["jamban_sendiri_septik", "jamban_bersama_septik", "jamban_tanpa_septik", "tidak_ada"]


def generate(persons: int = 100_000, seed: int = 20261129) -> tuple[bytes, list[tuple[str, ...]]]:
    """The CSV file and the same rows as tuples (for COPY)."""
    from registry.identity.domain import make_kk, make_nik

    from shared.regions import load_regions

    rng = random.Random(seed)
    regions = load_regions()
    villages = [r.code for r in regions.children("15.71.01")]  # make sure a familiar one is in
    for district in rng.sample([r.code for r in _districts(regions)], 400):
        villages += [v.code for v in regions.children(district)][:3]
    today = date.today()
    used: set[str] = set()

    def unique(make: Any) -> str:
        while True:
            number: str = make(rng.randint(1, 9999))
            if number not in used:
                used.add(number)
                return number

    rows: list[tuple[str, ...]] = []
    while len(rows) < persons:
        village = rng.choice(villages)
        district = village[:8]
        reg = today - timedelta(days=rng.randint(30, 6000))
        kk = unique(lambda s, d=district, r=reg: make_kk(d, r, s))
        family = [kk, village, f"{rng.randint(1, 12):03d}", f"{rng.randint(1, 20):03d}", str(rng.randint(1, 10)),
                  rng.choice(WATER), rng.choice(LATRINE)]  # fmt: skip
        head_birth = today - timedelta(days=rng.randint(22 * 365, 60 * 365))
        wife_birth = head_birth + timedelta(days=rng.randint(-1000, 3000))
        members: list[tuple[str, str, date, str, str]] = [
            ("L", rng.choice(FIRST), head_birth, "kepala_keluarga", "kawin"),
            ("P", rng.choice(FIRST), wife_birth, "istri", "kawin"),
        ]
        for _ in range(rng.choice([0, 1, 2, 2, 2, 3])):
            birth = today - timedelta(days=rng.randint(20, 17 * 365))
            members.append((rng.choice("LP"), rng.choice(FIRST), birth, "anak", "belum_kawin"))
        surname = rng.choice(LAST)
        for sex, first, birth, relation, marital in members:
            age_days = (today - birth).days
            newborn = age_days < 120 and rng.random() < 0.7
            nik = "" if newborn else unique(lambda s, d=district, b=birth, x=sex: make_nik(d, b, x, s))
            measurement = ["", "", "", ""]
            if age_days < 1800 and rng.random() < 0.8:
                months = age_days / 30.44
                length = 50 + months * 1.4 - months * months * 0.006 + rng.gauss(0, 3)
                weight = 3.3 + months * 0.35 - months * months * 0.002 + rng.gauss(0, 0.8)
                measurement = [today.isoformat(), f"{max(weight, 2.0):.1f}", f"{length:.1f}",
                               "l" if age_days < 731 else "h"]  # fmt: skip
            rows.append(
                (*family, nik, f"{first} {surname}", sex, birth.isoformat(), relation, marital,
                 rng.choice(["", "petani", "pedagang", "buruh"]) if relation != "anak" else "", *measurement)
            )  # fmt: skip
    # Cut at exactly N persons: the last family keeps its head (heads come first), so it stays valid.
    rows = rows[:persons]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    w.writerows(rows)
    return buf.getvalue().encode(), rows


def _districts(regions: Any) -> list[Any]:
    out = []
    for province in regions.children(None):
        for regency in regions.children(province.code):
            out += regions.children(regency.code)
    return out


async def _import(url: str, body: bytes) -> dict[str, Any]:
    from registry.config import Settings
    from registry.main import create_app

    from shared.auth import issue_dev_token
    from shared.testing.plugin import running_app

    token = issue_dev_token(scopes=["registry:import", "registry:read"], region=None, sub="bench")
    headers = {"Authorization": f"Bearer {token}"}
    app = create_app(Settings(database_url=url, import_poll_interval_seconds=0.05))
    async with running_app(app) as client:
        started, cpu_started = datetime.now(UTC), time.process_time()
        r = await client.post(
            "/v1/imports?mode=commit", content=body, headers={**headers, "Content-Type": "text/csv"}
        )
        if r.status_code != 202:
            raise RuntimeError(r.text)
        location = r.headers["Location"]
        while True:
            job: dict[str, Any] = (await client.get(location, headers=headers)).json()
            if job["status"] in ("done", "failed"):
                break
            # Slow polls: each costs this process CPU that the import would otherwise have; the end time
            # comes from the job itself.
            await asyncio.sleep(0.5)
        finished = datetime.fromisoformat(job["finished_at"]) if job["finished_at"] else datetime.now(UTC)
        job["seconds"] = (finished - started).total_seconds()
        # The app runs in this process: its CPU time is a figure the load of a shared machine barely moves.
        job["cpu_seconds"] = time.process_time() - cpu_started
        # PostgreSQL's side: the CPU of the server processes of the app's pool, opened for this run on a database
        # made for it (read before the pool closes them).
        job["pg_cpu_seconds"] = await backends_cpu_seconds(
            url.replace("postgresql+asyncpg://", "postgresql://")
        )
    return job


async def backends_cpu_seconds(dsn: str) -> float:
    """User + system CPU so far of every other server process connected to this database (needs /proc)."""
    conn = await asyncpg.connect(dsn)
    try:
        pids = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    return sum(cpu_seconds(pid) or 0.0 for (pid,) in pids)


async def _copy(dsn: str, rows: list[tuple[str, ...]]) -> float:
    conn = await asyncpg.connect(dsn)
    try:
        cols = ", ".join(f"{c} text" for c in COLUMNS)
        await conn.execute(f"DROP TABLE IF EXISTS bench_person_copy; CREATE TABLE bench_person_copy ({cols})")
        started = time.perf_counter()
        await conn.copy_records_to_table("bench_person_copy", records=rows, columns=COLUMNS)
        return time.perf_counter() - started
    finally:
        await conn.close()


async def run(persons: int = 100_000) -> dict[str, Any]:
    from shared.migrations import upgrade
    from shared.testing.plugin import CHECKOUT_TAG, recreate_database

    logging.getLogger("httpx").setLevel(logging.WARNING)
    body, rows = generate(persons)
    url = await recreate_database(f"scratch_registry_import_bench_{CHECKOUT_TAG}")
    await upgrade("registry", url)
    job = await _import(url, body)
    if job["status"] != "done":
        raise RuntimeError(f"import failed: {job}")
    copy_seconds = await _copy(url.replace("postgresql+asyncpg://", "postgresql://"), rows)
    summary = job["summary"]
    import_rate = persons / job["seconds"]
    copy_rate = persons / copy_seconds
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        events = await conn.fetchval("SELECT count(*) FROM outbox")
    finally:
        await conn.close()
    return {
        "persons": persons,
        "families": summary["families"]["created"],
        "measurements": summary["measurements"]["created"],
        "rejected_rows": summary["rows"]["rejected"],
        "outbox_events": events,
        "file_mb": round(len(body) / 1e6, 1),
        "import_seconds": round(job["seconds"], 1),
        "import_persons_per_s": round(import_rate),
        "import_cpu_seconds": round(job["cpu_seconds"], 1),
        "import_persons_per_cpu_s": round(persons / job["cpu_seconds"]),
        "import_process_us_per_person": round(job["cpu_seconds"] / persons * 1e6, 1),
        "import_pg_us_per_person": round(job["pg_cpu_seconds"] / persons * 1e6, 1),
        "import_pg_cpu_share": round(job["pg_cpu_seconds"] / (job["pg_cpu_seconds"] + job["cpu_seconds"]), 2),
        "copy_seconds": round(copy_seconds, 2),
        "copy_persons_per_s": round(copy_rate),
        "copy_vs_import_ratio": round(copy_rate / import_rate, 1),
    }


if __name__ == "__main__":
    import sys

    print(asyncio.run(run(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)))
