"""`kencana reporting ...`: operations of the reporting service."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

app = typer.Typer(help="Reporting service tools.", no_args_is_help=True)


@app.command()
def rebuild(
    timeout: Annotated[float, typer.Option(help="Give up after this many seconds")] = 3600.0,
) -> None:
    """Replay every topic from the beginning into fresh tables and swap them in atomically.

    Stop the projector first (`python -m reporting.consumer`) and start it again afterwards.
    """
    from reporting.config import Settings
    from reporting.rebuild import rebuild as run

    report = asyncio.run(run(Settings(), timeout=timeout))
    typer.echo(
        f"rebuilt: {report.events_applied} events applied, {report.duplicates} duplicates, "
        f"{report.dead_lettered} dead-lettered, {report.facts} fact rows"
    )


@app.command()
def bench(
    families: Annotated[int, typer.Option(help="Families the generated projections stand for")] = 1_000_000,
    repeats: Annotated[int, typer.Option(help="Calls per query")] = 30,
) -> None:
    """Query latency on generated projections in a scratch database (see reporting/bench.py)."""
    from reporting.bench import main

    main(families=families, repeats=repeats)
