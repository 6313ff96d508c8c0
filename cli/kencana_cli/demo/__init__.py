"""`kencana demo`: load a synthetic programme and play the stunting story, only through the public APIs."""

from __future__ import annotations

import time
from dataclasses import dataclass

from rich.console import Console

from kencana_cli.demo.api import Api, DemoError, poll
from kencana_cli.demo.plan import KITCHEN_RWS, build_plan
from kencana_cli.demo.seed import Seeder, wait_for_placements
from kencana_cli.demo.story import Story
from kencana_cli.demo.summary import print_summary

__all__ = ["DemoError", "DemoOptions", "run_demo"]


@dataclass(frozen=True)
class DemoOptions:
    registry_url: str = "http://127.0.0.1:8001"
    uppka_url: str = "http://127.0.0.1:8002"
    dashat_url: str = "http://127.0.0.1:8003"
    reporting_url: str = "http://127.0.0.1:8004"
    families: int = 5000
    villages: int = 20
    groups: int = 30
    kitchens: int = 15
    seed: int = 2026
    concurrency: int = 16


async def _healthy(api: Api, console: Console) -> None:
    for svc in ("registry", "uppka", "dashat"):

        async def up(svc: str = svc) -> bool:
            try:
                r = await api.clients[svc].get("/healthz", timeout=2)
            except Exception:
                return False
            return r.status_code == 200

        ok, _ = await poll(up, timeout=30, interval=0.5)
        if not ok:
            raise DemoError(f"{svc} does not answer at {api.urls[svc]}/healthz (start the services: make up)")


async def run_demo(options: DemoOptions, console: Console | None = None) -> None:
    console = console or Console()
    started = time.monotonic()
    urls = {
        "registry": options.registry_url,
        "uppka": options.uppka_url,
        "dashat": options.dashat_url,
        "reporting": options.reporting_url,
    }
    plan = build_plan(
        seed=options.seed,
        families=options.families,
        villages=options.villages,
        kitchens=options.kitchens,
        groups=options.groups,
    )
    api = Api(urls, concurrency=options.concurrency, kader_region=plan.story.village.regency)
    try:
        await _healthy(api, console)
        console.print(
            f"[bold]Kencana demo[/]: {options.families} families in {len(plan.villages)} Kampung KB villages of "
            + " and ".join(name for _, name in plan.provinces)
            + f", {options.groups} UPPKA groups, {len(plan.kitchen_villages)} DASHAT kitchens (seed {options.seed})"
        )
        seeded = await Seeder(api, plan, console).run()
        # The story's latency should be the pipeline's, not the seeding backlog's: let DASHAT catch up first.
        served = {v.code for v in plan.kitchen_villages}
        stunted = [
            (seeded.families[fp.n]["planned_members"][e.member]["id"], fp.village.code)
            for fp in plan.families
            for e in fp.extras
            if e.kind == "measurement"
            and (e.expected_haz or 0) < -2
            and fp.village.code in served
            and fp.rw in KITCHEN_RWS
            and fp.n in seeded.families
            and seeded.families[fp.n]["planned_members"][e.member] is not None
        ][-5:]
        if stunted:
            done, waited = await wait_for_placements(api, stunted, timeout=120)
            state = "caught up with" if done else "is still working through"
            console.print(f"  DASHAT {state} the registry's events ({waited:.1f} s)")
        await Story(api, plan, seeded, console).run()
        await print_summary(api, plan, console)
        console.print(f"  total time {time.monotonic() - started:.1f} s")
    finally:
        await api.aclose()
