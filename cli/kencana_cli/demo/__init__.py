"""`kencana demo`: load a synthetic programme and play the stunting story, only through the public APIs."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

from aiokafka.errors import KafkaError
from rich.console import Console

from kencana_cli.demo.api import Api, DemoError, poll
from kencana_cli.demo.events import count_event_types
from kencana_cli.demo.life import Life
from kencana_cli.demo.ministry import Ministry
from kencana_cli.demo.pipeline import PIPELINE_DEADLINE, wait_for_pipeline
from kencana_cli.demo.plan import KITCHEN_RWS, build_plan
from kencana_cli.demo.seed import Seeder
from kencana_cli.demo.story import Story
from kencana_cli.demo.summary import print_summary
from shared.config import kafka_bootstrap_servers

__all__ = ["DemoError", "DemoOptions", "run_demo"]

TOPICS_DEADLINE = 120.0  # reading every event of a 5,000-family demo takes seconds


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
    pipeline_deadline: float = PIPELINE_DEADLINE
    # Where the services publish: the closing check reads their topics (a test stack adds a topic suffix).
    kafka_bootstrap_servers: str = field(default_factory=kafka_bootstrap_servers)
    topic_suffix: str = ""


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
    ministry = Ministry(api, console, bootstrap_servers=options.kafka_bootstrap_servers)
    try:
        await _healthy(api, console)
        console.print(
            f"[bold]Kencana demo[/]: {options.families} families in {len(plan.villages)} Kampung KB villages of "
            + " and ".join(name for _, name in plan.provinces)
            + f", {options.groups} UPPKA groups, {len(plan.kitchen_villages)} DASHAT kitchens (seed {options.seed})"
        )
        seeding = time.monotonic()
        seeded = await Seeder(api, plan, console).run()
        timings: dict[str, float] = {"seeding": time.monotonic() - seeding}
        # The figures must be the whole truth: let reporting and DASHAT work through the seeding backlog first
        # (this also keeps the story's latency the pipeline's own, not the backlog's).
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
        provinces = [code for code, _ in plan.provinces]
        console.print()
        console.print(
            "[bold]Waiting for the event pipeline[/] (reporting projects every event; DASHAT enrols)"
        )
        done, waited = await wait_for_pipeline(
            api,
            console,
            why="the seeding",
            region=plan.story.village.province,
            dashat_regions=provinces,
            sample=stunted,
            deadline=options.pipeline_deadline,
        )
        timings["waiting for the pipeline"] = waited
        if done:
            console.print(f"  reporting and DASHAT caught up with every event ({waited:.1f} s)")
        # A ministry subscribes before the story, so the story's measurement, case and correction reach it.
        console.print()
        console.print("[bold]A ministry subscribes[/] (curated stream + webhook, issue 15)")
        streaming = await ministry.register()
        story_started = time.monotonic()
        await Story(api, plan, seeded, console).run()
        timings["story"] = time.monotonic() - story_started
        life_started = time.monotonic()
        await Life(api, plan, seeded, console).run()
        timings["programme life"] = time.monotonic() - life_started
        _, timings["waiting before the summary"] = await wait_for_pipeline(
            api,
            console,
            why="before the summary",
            region=plan.story.village.province,
            dashat_regions=provinces,
            deadline=options.pipeline_deadline,
        )
        counting = time.monotonic()
        seen: Counter[str] | None = None
        try:
            seen = await asyncio.wait_for(
                count_event_types(options.kafka_bootstrap_servers, options.topic_suffix), TOPICS_DEADLINE
            )
        except (KafkaError, OSError, TimeoutError) as exc:
            # A deployed system's Kafka may not be reachable from here: the figures above still stand.
            console.print(
                f"  [yellow]the topics at {options.kafka_bootstrap_servers} could not be read ({exc!r});"
                " the event counts are skipped[/]"
            )
        timings["reading the topics"] = time.monotonic() - counting
        await print_summary(
            api, plan, console, last_act=ministry.show if streaming else None, event_counts=seen
        )
        timings["total"] = time.monotonic() - started
        console.print("  time: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    finally:
        await ministry.close()
        await api.aclose()
