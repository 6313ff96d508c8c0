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
    from shared.history import IncompleteHistory
    from shared.topics import REPAIR_COMMAND

    try:
        report = asyncio.run(run(Settings(), timeout=timeout))
    except IncompleteHistory as exc:
        typer.echo(
            "refused: the event topics no longer hold their whole history, so a rebuild would produce",
            err=True,
        )
        typer.echo("indicators from part of it. Nothing was changed. Where events are missing:", err=True)
        for gap in exc.gaps:
            typer.echo(f"  - {gap.describe()}", err=True)
        typer.echo(
            f"Deleted events cannot be replayed. `{REPAIR_COMMAND}` stops further deletion; to recover, restore the"
            " topics from a backup or tiered storage (docs/runbook.md, Event history).",
            err=True,
        )
        raise typer.Exit(2) from exc
    typer.echo(
        f"rebuilt: {report.events_applied} events applied, {report.duplicates} duplicates, "
        f"{report.dead_lettered} dead-lettered, {report.facts} fact rows"
    )
