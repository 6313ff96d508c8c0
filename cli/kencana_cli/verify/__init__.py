"""`kencana reporting verify`: reporting's figures recounted from the source services' own APIs."""

from __future__ import annotations

import asyncio
import os
from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.console import Console

from kencana_cli.verify.figures import BY_NAME, FIGURES, current_periods, parse_period
from kencana_cli.verify.run import SCOPES, VerifyError, VerifyOptions, print_table, verify

__all__ = ["command"]

# The services date facts by UTC (registry, DASHAT) or by the programme's clock (uppka: a member who joins at 06:00
# WIB joined "today" in Jakarta, still yesterday in UTC). The default periods are those of Jakarta's date; every
# period is recounted as at its last day (figures.Period), so nothing a service has dated today falls outside it.
PROGRAMME_TIMEZONE = ZoneInfo("Asia/Jakarta")


def command(
    period: Annotated[
        list[str] | None,
        typer.Option(help="YYYY-MM, YYYY-Qn or YYYY, repeatable (default: this month, quarter and year)"),
    ] = None,
    region: Annotated[
        list[str] | None,
        typer.Option(
            help="Kemendagri code or ID, repeatable (default: the nation, each province and regency)"
        ),
    ] = None,
    figure: Annotated[
        list[str] | None, typer.Option(help="Only these figures, repeatable (default: every main figure)")
    ] = None,
    strict: Annotated[bool, typer.Option(help="A figure missing in reporting is a failure too")] = False,
    problems_only: Annotated[bool, typer.Option(help="Print only the lines that are not equal")] = False,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="KENCANA_TOKEN", help="Bearer token (default: a local dev token)", show_default=False
        ),
    ] = None,
    registry_url: Annotated[str, typer.Option(envvar="KENCANA_REGISTRY_URL")] = "http://127.0.0.1:8001",
    uppka_url: Annotated[str, typer.Option(envvar="KENCANA_UPPKA_URL")] = "http://127.0.0.1:8002",
    dashat_url: Annotated[str, typer.Option(envvar="KENCANA_DASHAT_URL")] = "http://127.0.0.1:8003",
    reporting_url: Annotated[str, typer.Option(envvar="KENCANA_REPORTING_URL")] = "http://127.0.0.1:8004",
) -> None:
    """Recount the main figures from registry, uppka and DASHAT and compare them with reporting's summaries.

    Exit 0 when every figure reporting publishes equals the recount, 1 when one differs (or, with --strict, is
    missing in reporting), 2 when a service cannot be asked.
    """
    today = datetime.now(PROGRAMME_TIMEZONE).date()
    try:
        periods = [parse_period(p) for p in period] if period else current_periods(today)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--period") from exc
    if any(p.first > today for p in periods):
        raise typer.BadParameter("a period that has not begun has nothing to check", param_hint="--period")
    unknown = [f for f in figure or [] if f not in BY_NAME]
    if unknown:
        raise typer.BadParameter(
            f"unknown figure(s) {', '.join(unknown)}; known: {', '.join(BY_NAME)}", param_hint="--figure"
        )
    if token is None:
        from shared.auth import issue_dev_token

        token = issue_dev_token(scopes=SCOPES, sub="kencana-verify", ttl_seconds=3600)
    options = VerifyOptions(
        urls={"registry": registry_url, "uppka": uppka_url, "dashat": dashat_url, "reporting": reporting_url},
        token=token,
        periods=periods,
        today=today,
        regions=[r.strip() for r in region or []],
        figures=[BY_NAME[f] for f in figure] if figure else list(FIGURES),
    )
    console = Console(width=max(120, int(os.environ.get("COLUMNS", "0") or 0)))
    try:
        outcome = asyncio.run(verify(options))
    except VerifyError as exc:
        console.print(f"[bold red]verify failed:[/] {exc}")
        raise typer.Exit(2) from exc
    print_table(outcome, console, only_problems=problems_only)
    if outcome.failed(strict=strict):
        raise typer.Exit(1)
