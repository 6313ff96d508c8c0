"""`kencana topics check|repair`: the event topics keep their whole history (settings in shared/topics.py)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from shared.kafka import (
    describe_topic_configs,
    ensure_topics,
    history_risks_on_broker,
    keep_history,
    partition_offsets,
)
from shared.topics import (
    CONSUMER_GROUPS,
    DEAD_LETTER_PARTITIONS,
    EVENT_TOPICS,
    REPAIR_COMMAND,
    dead_letter_topic,
    topic_config,
)

app = typer.Typer(
    help="Kafka topics: check and repair the event topics' retention (docs/runbook.md, Event history).",
    no_args_is_help=True,
)

Bootstrap = Annotated[
    str,
    typer.Option("--bootstrap-servers", envvar="KENCANA_KAFKA_BOOTSTRAP_SERVERS", help="Kafka to talk to"),
]
Suffix = Annotated[
    str,
    typer.Option(
        "--suffix",
        envvar="KENCANA_TOPIC_SUFFIX",
        help="Added to every topic name (the services' TOPIC_SUFFIX)",
    ),
]


def _event_topics(suffix: str) -> list[str]:
    return [f"{t}{suffix}" for t in EVENT_TOPICS]


def _dead_letter_topics(suffix: str) -> list[str]:
    return [dead_letter_topic(f"{g}{suffix}") for g in CONSUMER_GROUPS]


@app.command()
def check(bootstrap_servers: Bootstrap = "127.0.0.1:9092", suffix: Suffix = "") -> None:
    """Show each event topic's retention and deleted events; exit 1 when a topic drops (or dropped) history."""

    async def run() -> int:
        topics = _event_topics(suffix)
        configs = await describe_topic_configs(bootstrap_servers, topics)
        risks = await history_risks_on_broker(bootstrap_servers, topics)
        offsets = await partition_offsets(bootstrap_servers, topics)
        bad = 0
        for topic in topics:
            config = configs.get(topic)
            if config is None:
                typer.echo(f"{topic}: missing (the services or `{REPAIR_COMMAND}` create it)")
                continue
            shown = ", ".join(
                f"{k}={config.get(k, '?')}" for k in ("cleanup.policy", "retention.ms", "retention.bytes")
            )
            typer.echo(f"{topic}: {shown}")
            for risk in (r for r in risks if r.topic == topic):
                bad += 1
                typer.echo(f"  drops history: {risk.setting}={risk.value} ({risk.why})")
            for tp, (earliest, _end) in sorted(offsets.items(), key=lambda kv: kv[0].partition):
                if tp.topic == topic and earliest > 0:
                    bad += 1
                    typer.echo(f"  partition {tp.partition}: the first {earliest} events are already deleted")
        if bad:
            typer.echo(f"fix the settings with `{REPAIR_COMMAND}` (deleted events stay deleted)", err=True)
            return 1
        typer.echo("every event topic keeps its whole history")
        return 0

    raise typer.Exit(asyncio.run(run()))


@app.command()
def repair(
    bootstrap_servers: Bootstrap = "127.0.0.1:9092",
    suffix: Suffix = "",
    partitions: Annotated[
        int, typer.Option(envvar="KENCANA_TOPIC_PARTITIONS", help="Partitions of an event topic it creates")
    ] = 6,
    replication_factor: Annotated[
        int, typer.Option(envvar="KENCANA_TOPIC_REPLICATION_FACTOR", help="Replicas of a topic it creates")
    ] = 1,
) -> None:
    """Create missing event and dead-letter topics, and make existing event topics keep every event."""

    async def run() -> None:
        events = _event_topics(suffix)
        await ensure_topics(
            bootstrap_servers,
            events,
            partitions=partitions,
            replication_factor=replication_factor,
            config=topic_config("events", replication_factor=replication_factor),
        )
        await ensure_topics(
            bootstrap_servers,
            _dead_letter_topics(suffix),
            partitions=DEAD_LETTER_PARTITIONS,
            replication_factor=replication_factor,
            config=topic_config("dead-letters", replication_factor=replication_factor),
        )
        for risk in await keep_history(bootstrap_servers, events):
            typer.echo(f"repaired {risk.topic}: {risk.setting} was {risk.value} ({risk.why})")
        lost = [
            (tp, earliest)
            for tp, (earliest, _) in (await partition_offsets(bootstrap_servers, events)).items()
            if earliest > 0
        ]
        for tp, earliest in sorted(lost, key=lambda x: (x[0].topic, x[0].partition)):
            typer.echo(
                f"{tp.topic} partition {tp.partition}: the first {earliest} events were deleted before; "
                "a rebuild will refuse (docs/runbook.md, Event history)",
                err=True,
            )
        typer.echo("event topics keep every event: " + ", ".join(events))

    asyncio.run(run())


if __name__ == "__main__":
    # `python -m kencana_cli.topics repair`: what scripts/infra.sh runs, without loading every service's CLI.
    app()
