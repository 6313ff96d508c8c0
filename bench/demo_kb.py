"""The demo's KB stage (`kencana demo`: KB status, pregnancy, catin per family) against one registry process.

`make demo` spent about 183 s in this stage for 5,000 families; this reproduces its request pattern with the
demo's own client (`kencana_cli.demo.api.Api`: 16 in flight, an Idempotency-Key per create, a task per family
gathered at once) against a registry API served as `scripts/services.sh` serves it, on a scratch database, with
no relay or consumer running. The families (a head and a wife) are registered first, outside the timing. Figures:
requests per second and wall time of the stage, the registry's CPU per request and the client's.
"""

from __future__ import annotations

import asyncio
import logging
import random
import resource
import time
from datetime import date, timedelta
from typing import Any

from kencana_cli.demo.api import Api
from registry.identity.domain import make_kk, make_nik

from bench.api_rates import uvicorn_server
from bench.proc import cpu_seconds
from shared.migrations import upgrade
from shared.testing.plugin import CHECKOUT_TAG, recreate_database

VILLAGE = "15.71.01.1001"
TODAY = date.today()


def _family(i: int) -> dict[str, Any]:
    serial, day = i % 9999 + 1, i // 9999
    head, wife = date(1985, 1, 1) + timedelta(days=day), date(1990, 1, 1) + timedelta(days=day)
    return {
        "kk_number": make_kk("15.71.01", date(2015, 1, 1) + timedelta(days=day), serial),
        "village_code": VILLAGE,
        "latrine_type": "jamban_sendiri_septik",
        "members": [
            {
                "nik": make_nik("15.71.01", head, "L", serial),
                "name": "Kepala",
                "sex": "L",
                "birth_date": head.isoformat(),
                "relation": "kepala_keluarga",
                "marital_status": "kawin",
            },
            {
                "nik": make_nik("15.71.01", wife, "P", serial),
                "name": "Istri",
                "sex": "P",
                "birth_date": wife.isoformat(),
                "relation": "istri",
                "marital_status": "kawin",
            },
        ],
    }


def _extras(rng: random.Random) -> list[tuple[str, dict[str, Any]]]:
    """The demo plan's mix for a wife: a KB status, and a pregnancy for about 9% (cli/kencana_cli/demo/plan.py)."""
    since = (TODAY - timedelta(days=rng.randint(60, 1800))).isoformat()
    if rng.random() < 0.09:
        lmp = (TODAY - timedelta(days=rng.randint(30, 230))).isoformat()
        return [
            ("kb", {"method": None, "since": since, "reason_non_use": "hamil"}),
            ("pregnancy", {"lmp": lmp, "lila_cm": 24.5, "hb_g_dl": 11.8}),
        ]
    if rng.random() < 0.65:
        return [("kb", {"method": "suntik", "since": since, "service_source": "pemerintah"})]
    return [("kb", {"method": None, "since": since, "reason_non_use": "iat"})]


async def _register(api: Api, count: int) -> list[str]:
    """The wives' person ids of `count` new families."""
    wives: list[str] = []

    async def one(i: int) -> None:
        r = await api.call("registry", "POST", "/v1/families", json=_family(i))
        if r.status_code != 201:
            raise RuntimeError(f"{r.status_code}: {r.text[:300]}")
        wives.append(next(m["id"] for m in r.json()["members"] if m["relation"] == "istri"))

    await asyncio.gather(*(one(i) for i in range(count)))
    return wives


async def run(families: int = 600) -> dict[str, Any]:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    url = await recreate_database(f"bench_demo_kb_{CHECKOUT_TAG}")
    await upgrade("registry", url)
    env = {
        "REGISTRY_DATABASE_URL": url,
        "REGISTRY_IMPORT_WORKER_ENABLED": "false",
        "REGISTRY_RATE_LIMIT_DEFAULT": "20000/minute",  # scripts/services.sh's budget for the local stack
    }
    rng = random.Random(10)
    with uvicorn_server("registry.main:create_app", env) as (base, pid):
        api = Api({"registry": base})
        try:
            wives = await _register(api, families)
            plans = [(wife, _extras(rng)) for wife in wives]
            requests = sum(len(extras) for _, extras in plans)
            failed: list[str] = []

            async def stage(wife: str, extras: list[tuple[str, dict[str, Any]]]) -> None:
                # As `Seed.extras`: one family's creates one after the other, keyed, a lookup on a conflict.
                for kind, body in extras:
                    path = f"/v1/persons/{wife}/kb-status" if kind == "kb" else "/v1/pregnancies"
                    sent = body if kind == "kb" else {"person_id": wife, **body}
                    if await api.create(kind, "registry", path, sent, key=f"bench-{wife}-{kind}") is None:
                        failed.append(kind)

            server_cpu = cpu_seconds(pid) or 0.0
            client_cpu = resource.getrusage(resource.RUSAGE_SELF)
            began = time.perf_counter()
            await asyncio.gather(*(stage(wife, extras) for wife, extras in plans))
            seconds = time.perf_counter() - began
            server_cpu = (cpu_seconds(pid) or server_cpu) - server_cpu
            after = resource.getrusage(resource.RUSAGE_SELF)
            client = after.ru_utime + after.ru_stime - client_cpu.ru_utime - client_cpu.ru_stime
        finally:
            await api.aclose()
    if failed:
        raise RuntimeError(f"{len(failed)} creates failed: {api.tally.failed}")
    return {
        "families": families,
        "requests": requests,
        "stage_seconds": round(seconds, 2),
        "requests_per_s": round(requests / seconds, 1),
        "registry_cpu_ms_per_request": round(server_cpu * 1000 / requests, 2),
        "client_cpu_ms_per_request": round(client * 1000 / requests, 2),
        "demo_stage_estimate_s": round(seconds / families * 5000, 1),
    }


if __name__ == "__main__":
    print(asyncio.run(run()))
