"""`kencana reporting verify`: recount the main figures from the source services' APIs and compare.

Only public HTTP APIs are used, with one token (a dev token locally, `--token` / KENCANA_TOKEN against a deployed
system), so anyone can run it after `make demo` or against production.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from kencana_cli.verify.figures import FIGURES, Figure, Period, Row, compare

NATIONAL = "ID"
SCOPES = ["registry:read", "uppka:read", "dashat:read", "reporting:read"]
SOURCES = ("registry", "uppka", "dashat")


class VerifyError(RuntimeError):
    """A service could not be asked (down, refused the token): nothing can be concluded."""


@dataclass(frozen=True)
class VerifyOptions:
    urls: dict[str, str]
    token: str
    periods: list[Period]
    today: date
    regions: list[str] = field(default_factory=list)  # empty: the nation (or the token's region) and below
    figures: list[Figure] = field(default_factory=lambda: list(FIGURES))
    concurrency: int = 6


@dataclass
class Outcome:
    rows: list[Row]
    behind: list[str] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for r in self.rows if r.outcome == outcome)

    def failed(self, *, strict: bool) -> bool:
        return self.count("differs") > 0 or (strict and self.count("missing in reporting") > 0)


def token_region(token: str) -> str | None:
    """The `region` claim of a token (read, not verified: the services verify it)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return None
    region = claims.get("region")
    return str(region) if region else None


class Client:
    def __init__(self, options: VerifyOptions) -> None:
        self.options = options
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(120.0, connect=5.0), headers={"Authorization": f"Bearer {options.token}"}
        )
        self.gate = asyncio.Semaphore(options.concurrency)
        # Topics reporting had not caught up with when it answered: a difference may then be only lag.
        self.behind: set[str] = set()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def get(self, svc: str, path: str, params: dict[str, Any], *, optional: bool = False) -> Any:
        """GET a JSON answer; with `optional` a 404/422 (the service does not know the period) is None."""
        url = self.options.urls[svc].rstrip("/") + path
        async with self.gate:
            try:
                r = await self.http.get(url, params=params)
            except httpx.TransportError as exc:
                raise VerifyError(f"{svc} does not answer at {url}: {exc!r}") from exc
        if r.status_code == 200:
            return r.json()
        if optional and r.status_code in (404, 422):
            return None
        raise VerifyError(f"{svc} GET {path} {params}: {r.status_code} {r.text[:300]}")

    async def sources(self, region: str, period: Period) -> dict[str, dict[str, int]]:
        """Every source's counts for one region and period, and uppka's own reporting coverage."""
        window = {
            "region": region,
            "from": period.first.isoformat(),
            "to": period.last.isoformat(),
        }
        got = await asyncio.gather(*(self.get(svc, "/v1/statistics", window) for svc in SOURCES))
        out = {svc: dict(answer["counts"]) for svc, answer in zip(SOURCES, got, strict=True)}
        # uppka's reporting rate takes a month, a quarter or a year (YYYY-MM, YYYY-Qn, YYYY) and sums the
        # group-months of the period; an older uppka that does not know the period makes it "not in source".
        params = {"period": period.label} | ({} if region == NATIONAL else {"region": region})
        rate = await self.get("uppka", "/v1/indicators/reporting", params, optional=True)
        if rate is not None:
            out["uppka_reporting"] = {k: int(rate[k]) for k in ("due", "on_time", "late", "not_due")}
        return out

    async def reported(self, region: str, period: Period) -> dict[str, Any]:
        answer = await self.get("reporting", f"/v1/regions/{region}/summary", {"period": period.label})
        for topic in answer.get("freshness") or []:
            if topic.get("offset_lag") or topic.get("facts_pending_since"):
                self.behind.add(str(topic.get("topic")))
        return dict(answer["indicators"])

    async def areas(self, region: str, period: Period) -> list[str]:
        """Provinces and regencies inside `region` where a source has records or reporting has figures."""
        window = {
            "region": region,
            "from": period.first.isoformat(),
            "to": period.last.isoformat(),
        }
        found: set[str] = set()
        for answer in await asyncio.gather(*(self.get(svc, "/v1/statistics", window) for svc in SOURCES)):
            found.update(answer.get("areas") or [])
        for level in ("province", "regency"):
            params = {"period": period.label, "level": level} | (
                {} if region == NATIONAL else {"region": region}
            )
            breakdown = await self.get("reporting", "/v1/indicators", params, optional=True)
            found.update(r["region"] for r in (breakdown or {}).get("rows", []))
        inside = [a for a in found if region == NATIONAL or a.startswith(region + ".")]
        return sorted(inside, key=lambda c: (c.count("."), c))


async def verify(options: VerifyOptions) -> Outcome:
    """Every figure for every region and period: recounted from the sources, read from reporting, compared."""
    client = Client(options)
    try:
        regions = list(options.regions)
        if not regions:
            top = token_region(options.token) or NATIONAL
            regions = [top, *await client.areas(top, options.periods[0])]

        async def one(region: str, period: Period) -> list[Row]:
            sources, indicators = await asyncio.gather(
                client.sources(region, period), client.reported(region, period)
            )
            return [compare(f, region, period.label, sources, indicators) for f in options.figures]

        pairs = [(r, p) for r in regions for p in options.periods]
        results = await asyncio.gather(*(one(r, p) for r, p in pairs))
    finally:
        await client.aclose()
    return Outcome([row for rows in results for row in rows], sorted(client.behind))


STYLE = {"equal": "green", "differs": "bold red", "missing in reporting": "yellow", "not in source": "dim"}


def print_table(outcome: Outcome, console: Console, *, only_problems: bool = False) -> None:
    table = Table(title="Reporting against the source services", title_justify="left")
    for column in ("figure", "region", "period", "source count", "reporting count", "equal?"):
        table.add_column(column, justify="right" if "count" in column else "left")
    shown: Sequence[Row] = (
        [r for r in outcome.rows if r.outcome != "equal"] if only_problems else outcome.rows
    )
    for r in shown:
        table.add_row(
            r.figure,
            r.region,
            r.period,
            r.source.show() if r.source else "-",
            r.reporting.show() if r.reporting else "-",
            f"[{STYLE[r.outcome]}]{'yes' if r.outcome == 'equal' else 'NO' if r.outcome == 'differs' else r.outcome}[/]",
        )
    console.print(table)
    console.print(
        f"{outcome.count('equal')} equal, {outcome.count('differs')} differ, "
        f"{outcome.count('missing in reporting')} missing in reporting, {outcome.count('not in source')} not in source"
    )
    if outcome.behind:
        console.print(
            "[yellow]reporting had not caught up with every event of "
            + ", ".join(outcome.behind)
            + " when it answered: run again once its freshness shows no lag[/]"
        )
    differing = sorted({r.figure for r in outcome.rows if r.outcome == "differs"})
    if differing:
        console.print("[bold red]differ:[/] " + ", ".join(differing))
