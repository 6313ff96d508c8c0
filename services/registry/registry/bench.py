"""API create rate: families (head + wife + child) posted through the HTTP app in-process, on a scratch database.

`python -m registry.bench [families]` creates `scratch_registry_bench`, migrates it, posts families with
concurrency 8, and prints persons/s. It measures the whole request path (auth, validation, encryption, blind
index, outbox rows, KRS), not raw inserts.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from datetime import date

import httpx

from registry.config import Settings
from registry.identity.domain import make_kk, make_nik
from registry.main import create_app
from shared.auth import issue_dev_token
from shared.migrations import upgrade
from shared.testing.plugin import recreate_database, running_app


async def main(families: int = 1000, concurrency: int = 8) -> dict[str, float]:
    # httpx logs every request at INFO: printing 1,000 JSON lines would be measured as API time.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    url = await recreate_database("scratch_registry_bench")
    await upgrade("registry", url)
    headers = {
        "Authorization": "Bearer "
        + issue_dev_token(scopes=["registry:read", "registry:write"], region="15.71")
    }
    app = create_app(Settings(database_url=url, database_pool_size=concurrency))
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(families):
        queue.put_nowait(i)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            serial = i % 9999 + 1
            day = date(1990, 1, 1 + i // 9999)
            body = {
                "kk_number": make_kk("15.71.01", date(2015, 3, 12 + i // 9999), serial),
                "village_code": "15.71.01.1001",
                "latrine_type": "tidak_ada",
                "members": [
                    {
                        "nik": make_nik("15.71.01", day, "L", serial),
                        "name": "H",
                        "sex": "L",
                        "birth_date": day.isoformat(),
                        "relation": "kepala_keluarga",
                        "marital_status": "kawin",
                    },
                    {
                        "nik": make_nik("15.71.02", day, "P", serial),
                        "name": "W",
                        "sex": "P",
                        "birth_date": day.isoformat(),
                        "relation": "istri",
                        "marital_status": "kawin",
                    },
                    {"name": "C", "sex": "L", "birth_date": "2025-06-01", "relation": "anak"},
                ],
            }
            r = await client.post("/v1/families", json=body, headers=headers)
            if r.status_code != 201:
                raise RuntimeError(r.text)

    async with running_app(app) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    persons = families * 3
    print(
        f"{families} families / {persons} persons in {elapsed:.1f}s: "
        f"{families / elapsed:.0f} families/s, {persons / elapsed:.0f} persons/s"
    )
    return {"families_per_s": round(families / elapsed), "persons_per_s": round(persons / elapsed)}


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))
