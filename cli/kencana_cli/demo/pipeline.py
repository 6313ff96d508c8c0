"""Wait until the event pipeline has caught up, so that the figures read from reporting are the whole truth.

Reporting is a projection of the three services' Kafka topics and DASHAT enrols children from the registry's
events, so right after a bulk load both are minutes behind. The public signals used here:
- reporting's `freshness` (every summary carries it): `offset_lag` per topic, and `events_applied`;
- DASHAT's own lists: the enrolments and waitlist entries it has made (they stop changing once its consumer is
  idle), and, for a sample of stunted children, that each one has been placed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from kencana_cli.demo.api import Api
from kencana_cli.demo.plan import today

PIPELINE_DEADLINE = 600.0  # seconds: a 5,000-family load takes a few minutes to project on a laptop
POLL_SECONDS = 1.0
# Consecutive polls that must see nothing move before the pipeline counts as idle: a relay still emptying its
# outbox shows as a zero lag with events_applied still growing.
QUIET_POLLS = 2


@dataclass
class PipelineState:
    offset_lag: int | None  # None: reporting does not answer
    applied: int
    dashat_placed: int
    sample_placed: bool
    topics: dict[str, int | None]

    def signature(self) -> tuple[int, int]:
        return (self.applied, self.dashat_placed)


async def _reporting(api: Api, region: str) -> tuple[dict[str, int | None] | None, int]:
    period = today().strftime("%Y-%m")
    r = await api.call(
        "reporting", "GET", f"/v1/regions/{region}/summary", params={"period": period}, attempts=2
    )
    if r.status_code != 200:
        return None, 0
    fresh = r.json().get("freshness") or []
    topics = {str(f["topic"]): f.get("offset_lag") for f in fresh}
    return topics, sum(int(f.get("events_applied") or 0) for f in fresh)


async def _dashat_count(api: Api, regions: Sequence[str]) -> int:
    total = 0
    for region in regions:
        total += len(await api.all_pages("dashat", "/v1/enrolments", {"region": region}))
        total += len(await api.all_pages("dashat", "/v1/waitlist", {"region": region}))
    return total


async def _sample_placed(api: Api, children: Sequence[tuple[str, str]]) -> bool:
    for pid, village in children:
        if (await api.get("dashat", "/v1/enrolments", params={"person_id": pid}))["items"]:
            continue
        waiting = await api.all_pages("dashat", "/v1/waitlist", {"region": village})
        if not any(w["person_id"] == pid for w in waiting):
            return False
    return True


async def state(
    api: Api, region: str, dashat_regions: Sequence[str], sample: Sequence[tuple[str, str]]
) -> PipelineState:
    (topics, applied), placed, sample_ok = await asyncio.gather(
        _reporting(api, region), _dashat_count(api, dashat_regions), _sample_placed(api, sample)
    )
    lag = None if topics is None else sum(v or 0 for v in topics.values())
    return PipelineState(lag, applied, placed, sample_ok, topics or {})


async def wait_for_pipeline(
    api: Api,
    console: Console,
    *,
    why: str,
    region: str,
    dashat_regions: Sequence[str],
    sample: Sequence[tuple[str, str]] = (),
    deadline: float = PIPELINE_DEADLINE,
) -> tuple[bool, float]:
    """Poll until reporting's offset lag is 0 on every topic and nothing moves any more (reporting's applied
    count, DASHAT's placements), with a progress bar of the remaining lag. Returns (caught up, seconds waited);
    on the deadline it says so and the caller shows what reporting has."""
    started = time.monotonic()
    first = await state(api, region, dashat_regions, sample)
    if first.offset_lag is None:
        # Without reporting only DASHAT is waited for, with the shorter deadline of the story's own steps.
        console.print("  [yellow]reporting does not answer: waiting for DASHAT only[/]")
        deadline = min(deadline, 120.0)
    columns = (
        TextColumn("  {task.description:<34}"),
        BarColumn(bar_width=36),
        MofNCompleteColumn(),
        TextColumn("events"),
        TimeElapsedColumn(),
    )
    quiet, last, now = 0, first, first
    peak = max(first.offset_lag or 0, 1)
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(f"reporting catching up ({why})", total=peak, completed=0)
        while True:
            lag = now.offset_lag or 0
            if lag > peak:  # more events arrived (a relay still publishing): the bar's whole grows
                peak = lag
            bar.update(task, total=peak, completed=peak - lag)
            idle = not now.offset_lag and now.sample_placed
            quiet = quiet + 1 if idle and now is not first and now.signature() == last.signature() else 0
            if quiet >= QUIET_POLLS:
                waited = time.monotonic() - started
                return True, waited
            if time.monotonic() - started > deadline:
                break
            await asyncio.sleep(POLL_SECONDS)
            last, now = now, await state(api, region, dashat_regions, sample)
            if now.offset_lag is None and last.offset_lag is not None:
                # A failed read of reporting is not progress: keep the last known lag.
                now = PipelineState(last.offset_lag, last.applied, now.dashat_placed, now.sample_placed, {})
    behind = ", ".join(f"{t} {v}" for t, v in sorted(now.topics.items()) if v)
    console.print(
        f"  [yellow]reporting is still catching up after {deadline:.0f} s (offset lag: {behind or 'none'};"
        f" DASHAT sample placed: {'yes' if now.sample_placed else 'no'}); the figures below are what it has"
        " so far and will grow[/]"
    )
    return False, time.monotonic() - started
