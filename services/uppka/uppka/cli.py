"""`kencana uppka ...`: operations of the uppka service."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated

import typer

app = typer.Typer(help="UPPKA service tools.", no_args_is_help=True)


@app.command("sweep-categories")
def sweep_categories(
    on: Annotated[
        str | None,
        typer.Option(help="Sweep through this day, YYYY-MM-DD (default: today in Asia/Jakarta)"),
    ] = None,
) -> None:
    """Apply the 10th, 25th and 60th birthdays of every day not yet swept, up to --on, to members' categories."""
    from shared.db import create_engine, create_sessionmaker
    from uppka.categories.service import sweep
    from uppka.config import Settings
    from uppka.models import load_all_models

    try:
        through = date.fromisoformat(on) if on is not None else None
    except ValueError as exc:
        raise typer.BadParameter("use YYYY-MM-DD", param_hint="--on") from exc
    load_all_models()

    async def run() -> None:
        engine = create_engine(Settings().database_url, pool_size=1)
        try:
            async with create_sessionmaker(engine)() as session:
                result = await sweep(session, through)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--on") from exc
        finally:
            await engine.dispose()
        if not result.locked:
            typer.echo("another process is sweeping; nothing done", err=True)
            raise typer.Exit(1)
        typer.echo(
            f"swept {len(result.days)} day(s) through {result.through.isoformat()}: "
            f"{result.members_changed} member(s) changed category"
        )

    asyncio.run(run())
