"""The closing summary: the main indicators per province, and where to go next."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import date, timedelta

from rich.console import Console
from rich.table import Table

from kencana_cli.demo.api import Api
from kencana_cli.demo.events import catalogue
from kencana_cli.demo.plan import Plan, today
from kencana_cli.demo.story import MAIN_INDICATORS, format_figure, indicators


async def _counts(api: Api, province: str) -> dict[str, float | None]:
    """Fallback when reporting cannot answer: counts read from the owning services' lists."""
    reg = {"region": province}

    async def n(svc: str, path: str, **params: str) -> float:
        return float(len(await api.all_pages(svc, path, {**reg, **params})))

    families, users, mkjp, cases, groups, enrolled = await asyncio.gather(
        n("registry", "/v1/families"),
        n("registry", "/v1/kb-statuses", is_user="true"),
        n("registry", "/v1/kb-statuses", mkjp="true"),
        n("registry", "/v1/stunting-cases", status="open"),
        n("uppka", "/v1/groups"),
        n("dashat", "/v1/enrolments", status="active"),
    )
    kitchens = await api.all_pages("dashat", "/v1/kitchens")
    pus = float(len(await api.all_pages("registry", "/v1/kb-statuses", reg)))
    return {
        "families registered": families,
        "PUS with a KB status": pus,
        "CPR (KB users / PUS), %": round(100 * users / pus, 1) if pus else 0.0,
        "MKJP share of users, %": round(100 * mkjp / users, 1) if users else 0.0,
        "open baduta stunting cases": cases,
        "UPPKA groups": groups,
        "DASHAT kitchens": float(sum(1 for k in kitchens if k["village_code"].startswith(province + "."))),
        "active DASHAT enrolments": enrolled,
    }


# Figures summed over a month (money moved, portions served): the current month is still open (UPPKA groups
# report a month after it ends), so they are shown for the last complete month; the others are stocks at today.
FLOW_INDICATORS = frozenset({"uppka_omzet", "uppka_dashat_contributions", "dashat_portions_served"})


def last_complete_month(day: date) -> str:
    return (day.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")


def print_event_counts(console: Console, seen: Counter[str]) -> None:
    """Records per event type of the catalogue on the topics, and whether every type was seen."""
    types = catalogue()
    table = Table(title="Events on the topics, per type (the whole history)", title_justify="left")
    for _ in range(2):
        table.add_column("event type")
        table.add_column("events", justify="right")
    half = (len(types) + 1) // 2

    def cells(t: str | None) -> list[str]:
        if t is None:
            return ["", ""]
        n = seen.get(t, 0)
        return [t, f"{n:,}" if n else "[red]0[/]"]

    for left, right in itertools.zip_longest(types[:half], types[half:]):
        table.add_row(*cells(left), *cells(right))
    console.print(table)
    missing = [t for t in types if not seen.get(t)]
    if missing:
        console.print(
            f"  [red]{len(missing)} of the {len(types)} event types never appeared[/]: {', '.join(missing)}"
        )
    else:
        console.print(f"  all {len(types)} event types seen ({sum(seen.values()):,} events)")


async def print_summary(
    api: Api,
    plan: Plan,
    console: Console,
    last_act: Callable[[], Awaitable[None]] | None = None,
    event_counts: Counter[str] | None = None,
) -> None:
    console.print()
    console.print("[bold]4. Summary[/]")
    period = today().strftime("%Y-%m")
    flow_period = last_complete_month(today())
    columns: dict[str, dict[str, float | None]] = {}
    source = "reporting service"
    for code, _ in plan.provinces:
        got, why = await indicators(api, code, "province", period)
        flows, _ = await indicators(api, code, "province", flow_period)
        if got is None:
            source = f"counts from registry, uppka and dashat ({why})"
            columns = {c: await _counts(api, c) for c, _ in plan.provinces}
            break
        figures: dict[str, float | None] = {k: got[k] for k in MAIN_INDICATORS if k in got} or dict(got)
        for k in FLOW_INDICATORS & set(figures):
            figures[k] = (flows or {}).get(k)
        columns[code] = {
            (f"{k} ({flow_period})" if k in FLOW_INDICATORS else k): v for k, v in figures.items()
        }
    table = Table(
        title=f"Main indicators at {period} (flows: {flow_period}, the last complete month) — source: {source}",
        title_justify="left",
    )
    table.add_column("indicator")
    for _, name in plan.provinces:
        table.add_column(name, justify="right")
    names: list[str] = []
    for figures in columns.values():
        names += [k for k in figures if k not in names]
    for k in names[:30]:
        table.add_row(k, *(format_figure(columns[c].get(k)) for c, _ in plan.provinces))
    console.print(table)
    tally = api.tally
    kinds = sorted(set(tally.created) | set(tally.reused))
    console.print(
        "  records: "
        + ", ".join(f"{k} {tally.created.get(k, 0)} new/{tally.reused.get(k, 0)} reused" for k in kinds)
    )
    if tally.failed:
        for kind, reasons in tally.failed.items():
            console.print(f"  [yellow]{len(reasons)} {kind} refused[/], e.g. {reasons[0]}")
    if event_counts is not None:
        print_event_counts(console, event_counts)
    if (
        last_act is not None
    ):  # the ministry's stream and webhook (issue 15): the end of the story, before the notes
        await last_act()
    console.print()
    for svc, url in api.urls.items():
        console.print(f"  {svc:<10} API docs: {url}/docs")
    console.print(
        '  a token:  .venv/bin/kencana token --scope "registry:read registry:write" --region 15.71'
        '   (then: curl -H "Authorization: Bearer $TOKEN" ' + api.urls["registry"] + "/v1/families)"
    )
    console.print("  the services keep running; stop everything with: make down")
    console.print("[bold green]Demo finished.[/]")
