"""Host mode of `make test-compose`: the run's own databases and topics on the shared PostgreSQL and Kafka.

    python -m tests.compose.host create <suffix>   databases compose_<service>_<checkout>, fresh
    python -m tests.compose.host drop <suffix>     those databases and every topic named *<suffix>*

The migrate container builds the tables; databases it cannot create (`kencana migrate` creates none). The names
carry the checkout's tag, so two worktrees never meet, and the `compose_` prefix keeps them apart from the unit
tests' test_* and the end-to-end e2e_* databases.
"""

from __future__ import annotations

import asyncio
import sys

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient

from shared.config import kafka_bootstrap_servers, pg_server_url
from shared.kafka import delete_topics, security_options
from shared.testing.plugin import CHECKOUT_TAG, recreate_database
from shared.topics import CONSUMER_GROUPS, EVENT_TOPICS, dead_letter_topic
from tests.e2e.stack import SERVICES

PREFIX = "compose_"


def database_suffix() -> str:
    return f"_{CHECKOUT_TAG}"


def database_names() -> list[str]:
    return [f"{PREFIX}{svc}{database_suffix()}" for svc in SERVICES]


async def create() -> None:
    for name in database_names():
        await recreate_database(name)


async def drop(topic_suffix: str) -> None:
    conn = await asyncpg.connect(
        pg_server_url().replace("postgresql+asyncpg://", "postgresql://") + "/postgres"
    )
    try:
        for name in database_names():
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
    if not topic_suffix:
        return  # never delete the unsuffixed topics of whoever else uses this broker
    # The declared names (event topics end with the suffix, dead-letter topics are <group><suffix>.dlq), and any
    # other topic the broker lists with the suffix (a listing on a loaded broker once came back without them).
    topics = {f"{t}{topic_suffix}" for t in EVENT_TOPICS}
    topics |= {dead_letter_topic(f"{g}{topic_suffix}") for g in CONSUMER_GROUPS}
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap_servers(), **security_options())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
    finally:
        await admin.close()
    topics |= {t for t in existing if topic_suffix in t}
    await delete_topics(kafka_bootstrap_servers(), sorted(topics))
    print(f"dropped {len(database_names())} databases and {len(topics)} topics *{topic_suffix}*")


def main(argv: list[str]) -> int:
    command, suffix = argv[0], argv[1] if len(argv) > 1 else ""
    if command == "create":
        asyncio.run(create())
    elif command == "drop":
        asyncio.run(asyncio.wait_for(drop(suffix), timeout=120))
    elif command == "names":
        print(PREFIX, database_suffix())
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
