"""`kencana` CLI entry point."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from pathlib import Path
from typing import Annotated

import typer

from kencana_cli.kafka_security import app as kafka_security_app
from kencana_cli.topics import app as topics_app
from shared.auth import issue_dev_token
from shared.config import pg_server_url
from shared.migrations import SERVICES, has_migrations, upgrade

app = typer.Typer(
    help="Kencana operations: dev tokens, migrations, event catalogue, service tools.", no_args_is_help=True
)
events_app = typer.Typer(
    help="The event catalogue (AsyncAPI + JSON Schemas in docs/events).", no_args_is_help=True
)
app.add_typer(events_app, name="events")
app.add_typer(topics_app, name="topics")
app.add_typer(kafka_security_app, name="kafka-security")
dlq_app = typer.Typer(help="Dead-letter topics of the consumer groups.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")


@app.command()
def token(
    scope: Annotated[str, typer.Option(help="Space separated scopes, e.g. 'registry:read registry:write'")],
    region: Annotated[str | None, typer.Option(help="Kemendagri code prefix the token is limited to")] = None,
    sub: Annotated[str, typer.Option(help="Subject (user or client id)")] = "dev-user",
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds")] = 3600,
) -> None:
    """Print a signed development JWT that the local services accept."""
    typer.echo(issue_dev_token(scopes=scope.split(), region=region, sub=sub, ttl_seconds=ttl))


@app.command()
def migrate(
    service: Annotated[list[str] | None, typer.Option(help="Only these services (default: all)")] = None,
) -> None:
    """Apply every service's migrations to its database."""
    import os

    targets = service or [s for s in SERVICES if has_migrations(s)]

    async def run() -> None:
        for name in targets:
            url = os.environ.get(f"{name.upper()}_DATABASE_URL") or f"{pg_server_url()}/{name}"
            await upgrade(name, url)
            typer.echo(f"migrated {name}")

    asyncio.run(run())


@events_app.command("generate")
def events_generate() -> None:
    """Regenerate docs/events from the event models and docs/streams from the public stream contract."""
    from reporting.streams.asyncapi import write_documents as write_public

    from shared.events.asyncapi import write_documents

    for path in [*write_documents(), *write_public()]:
        typer.echo(f"wrote {path}")


@events_app.command("publish")
def events_publish() -> None:
    """Freeze the schema of every event version not yet published into docs/events/published (run on release)."""
    from shared.events.compat import publish

    for path in publish():
        typer.echo(f"published {path}")


@events_app.command("check")
def events_check() -> None:
    """Fail when docs/events differs from what the code generates or breaks a published event version."""
    from reporting.streams.asyncapi import drift as public_drift

    from shared.events.asyncapi import drift
    from shared.events.compat import contract_problems

    problems = drift() + [f"streams/{p}" for p in public_drift()] + contract_problems()
    if problems:
        typer.echo(
            "event documents drifted (run `kencana events generate`): " + ", ".join(problems), err=True
        )
        raise typer.Exit(1)
    typer.echo("event documents match the code")


@app.command()
def demo(
    families: Annotated[int, typer.Option(help="Families to register")] = 5000,
    villages: Annotated[int, typer.Option(help="Kampung KB villages (at most 20)")] = 20,
    groups: Annotated[int, typer.Option(help="UPPKA groups")] = 30,
    kitchens: Annotated[int, typer.Option(help="DASHAT kitchens (one per village, at most --villages)")] = 15,
    small: Annotated[
        bool, typer.Option("--small", help="A quick run: 60 families, 4 villages, 3 groups, 2 kitchens")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic data (same seed: same records)")] = 2026,
    concurrency: Annotated[int, typer.Option(help="Requests in flight at most")] = 16,
    registry_url: Annotated[str, typer.Option(help="Registry API")] = "http://127.0.0.1:8001",
    uppka_url: Annotated[str, typer.Option(help="UPPKA API")] = "http://127.0.0.1:8002",
    dashat_url: Annotated[str, typer.Option(help="DASHAT API")] = "http://127.0.0.1:8003",
    reporting_url: Annotated[str, typer.Option(help="Reporting API")] = "http://127.0.0.1:8004",
    kafka_bootstrap_servers: Annotated[
        str | None,
        typer.Option(help="Kafka, to read the topics at the end (default: KENCANA_KAFKA_BOOTSTRAP_SERVERS)"),
    ] = None,
    topic_suffix: Annotated[
        str, typer.Option(envvar="KENCANA_TOPIC_SUFFIX", help="The services' topic suffix, if they use one")
    ] = "",
) -> None:
    """Load a synthetic programme and play the stunting story through the public APIs (services must run)."""
    from kencana_cli.demo import DemoError, DemoOptions, run_demo

    if small:
        families, villages, groups, kitchens = (
            min(families, 60),
            min(villages, 4),
            min(groups, 3),
            min(kitchens, 2),
        )
    options = DemoOptions(
        registry_url=registry_url.rstrip("/"),
        uppka_url=uppka_url.rstrip("/"),
        dashat_url=dashat_url.rstrip("/"),
        reporting_url=reporting_url.rstrip("/"),
        families=families,
        villages=max(1, min(villages, 20)),
        groups=groups,
        kitchens=kitchens,
        seed=seed,
        concurrency=concurrency,
        topic_suffix=topic_suffix,
    )
    if kafka_bootstrap_servers:
        options = dataclasses.replace(options, kafka_bootstrap_servers=kafka_bootstrap_servers)
    try:
        asyncio.run(run_demo(options))
    except DemoError as exc:
        typer.echo(f"demo failed: {exc}", err=True)
        raise typer.Exit(1) from exc


@app.command("subject-export")
def subject_export(
    person_id: Annotated[str, typer.Argument(help="The person's Kencana id (registry person id)")],
    purpose: Annotated[
        str,
        typer.Option(
            help="The data-subject request's reference (sent as X-Purpose, audited by every service)"
        ),
    ],
    token: Annotated[
        str,
        typer.Option(
            envvar="KENCANA_TOKEN",
            help="Bearer token with kencana:subject:export (and registry:pii:read to show the NIK unmasked)",
        ),
    ],
    out: Annotated[
        Path | None, typer.Option(help="Write the JSON document here (default: standard output)")
    ] = None,
    registry_url: Annotated[str, typer.Option(help="Registry API")] = "http://127.0.0.1:8001",
    uppka_url: Annotated[str, typer.Option(help="UPPKA API")] = "http://127.0.0.1:8002",
    dashat_url: Annotated[str, typer.Option(help="DASHAT API")] = "http://127.0.0.1:8003",
    reporting_url: Annotated[str, typer.Option(help="Reporting API")] = "http://127.0.0.1:8004",
) -> None:
    """Everything the four services hold about one person, as one JSON document (UU 27/2022 PDP)."""
    import json
    import uuid

    from kencana_cli.subject_export import SubjectExportError, collect

    try:
        pid = uuid.UUID(person_id)
    except ValueError as exc:
        typer.echo("person_id: not a UUID", err=True)
        raise typer.Exit(2) from exc
    urls = {"registry": registry_url, "uppka": uppka_url, "dashat": dashat_url, "reporting": reporting_url}
    try:
        document = asyncio.run(collect(pid, token=token, purpose=purpose, urls=urls))
    except SubjectExportError as exc:
        typer.echo(f"subject export failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    text = json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        # The document is personal data: readable by the owner only.
        out.touch(mode=0o600, exist_ok=True)
        out.chmod(0o600)
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}", err=True)


@dlq_app.command("replay")
def dlq_replay(
    group: Annotated[
        str, typer.Argument(help="Consumer group whose `<group>.dlq` to replay, e.g. dashat.projector")
    ],
    bootstrap: Annotated[
        str | None, typer.Option(help="Kafka bootstrap servers (default: the configured)")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Give up after this many seconds")] = 300.0,
) -> None:
    """After the fix: send each dead letter not yet replayed back to its original topic (applied once: inbox)."""
    from shared.config import kafka_bootstrap_servers
    from shared.dlq import replay_dead_letters

    report = asyncio.run(replay_dead_letters(bootstrap or kafka_bootstrap_servers(), group, timeout=timeout))
    for topic, n in sorted(report.resent.items()):
        typer.echo(f"{topic}: {n} resent")
    typer.echo(
        f"{report.dead_letter_topic}: {sum(report.resent.values())} resent, {report.without_origin} without origin"
    )


@app.command()
def zscore(
    input_csv: Annotated[Path, typer.Argument(help="Survey CSV with WHO Anthro column names")],
    output_csv: Annotated[Path, typer.Argument(help="Where to write the scored CSV")],
) -> None:
    """Score a survey file offline (WHO 2006 HAZ/WAZ/WHZ, flags and classes)."""
    from registry.anthropometry.survey import score_csv

    rows_with_errors = score_csv(input_csv, output_csv)
    typer.echo(
        f"wrote {output_csv}; rows that could not be scored: {rows_with_errors} (see the error column)"
    )


def _load_optional_commands() -> None:
    """Service tools register themselves when their package provides `cli.py` with a Typer `app`."""
    import importlib

    from kencana_cli.verify import command as verify_command

    reporting_app: typer.Typer | None = None
    for name in ("reporting", "registry", "uppka", "dashat"):
        try:
            module = importlib.import_module(f"{name}.cli")
        except ModuleNotFoundError as exc:
            if exc.name not in (f"{name}.cli", name):
                raise
            continue
        app.add_typer(module.app, name=name)
        if name == "reporting":
            reporting_app = module.app
    if reporting_app is None:
        # `verify` only uses the services' HTTP APIs, so it is there even where the reporting package is not.
        reporting_app = typer.Typer(help="Reporting service tools.", no_args_is_help=True)
        app.add_typer(reporting_app, name="reporting")
    reporting_app.command("verify")(verify_command)


_load_optional_commands()

if __name__ == "__main__":
    sys.exit(app())
