"""`kencana demo --small` against the running stack, twice: it ends with the summary and adds nothing again.

The families go in through the registry's bulk import; the second run re-imports the same file.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from kencana_cli.demo.plan import choose_villages

from shared.config import kafka_bootstrap_servers
from shared.events.envelope import event_types
from shared.kafka import security_options
from shared.testing.plugin import bearer
from shared.topics import EVENT_TOPICS
from tests.e2e.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.kafka]

SMALL_VILLAGES = 4


def run_demo(stack: Stack) -> subprocess.CompletedProcess[str]:
    urls = [f"--{svc}-url={stack.base_url(svc)}" for svc in ("registry", "uppka", "dashat", "reporting")]
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "kencana"),
            "demo",
            "--small",
            *urls,
            f"--topic-suffix={stack.suffix}",
        ],
        capture_output=True,
        text=True,
        timeout=150,
        env={**os.environ, "COLUMNS": "160"},
        check=False,
    )


async def counts(stack: Stack) -> dict[str, int]:
    """Records in the demo's villages (the other end-to-end tests use other villages)."""
    headers = bearer("registry:read uppka:read dashat:read", sub="e2e-demo-check")
    out = {"families": 0, "groups": 0, "kitchens": 0, "kampung_kb": 0, "linked": 0}
    async with httpx.AsyncClient(timeout=15) as client:
        for village in choose_villages(SMALL_VILLAGES):
            for name, svc, path, params in (
                ("families", "registry", "/v1/families", {"region": village.code}),
                ("kampung_kb", "registry", "/v1/kampung-kb", {"region": village.code}),
                ("groups", "uppka", "/v1/groups", {"region": village.code}),
                ("kitchens", "dashat", "/v1/kitchens", {"village_code": village.code}),
            ):
                query: dict[str, str | int] = {**params, "limit": 200}
                while True:
                    r = await client.get(stack.base_url(svc) + path, params=query, headers=headers)
                    assert r.status_code == 200, r.text
                    out[name] += len(r.json()["items"])
                    if name == "families":
                        out["linked"] += sum(1 for f in r.json()["items"] if f["kampung_kb_id"] is not None)
                    if not r.json()["next_cursor"]:
                        break
                    query["cursor"] = r.json()["next_cursor"]
    return out


async def types_on_topics(stack: Stack, wanted: set[str], timeout: float = 30.0) -> Counter[str]:
    """Records per `ce_type` on the stack's three event topics, read from the beginning without a group."""
    topics = [f"{t}{stack.suffix}" for t in EVENT_TOPICS]
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=kafka_bootstrap_servers(),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **security_options(),  # the secured bus: the same user and TLS as every other client of the process
    )
    seen: Counter[str] = Counter()
    await consumer.start()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not wanted <= set(seen) and loop.time() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for r in records:
                    seen[dict(r.headers)["ce_type"].decode()] += 1
    finally:
        await consumer.stop()
    return seen


async def test_demo_twice_ends_with_the_summary_and_creates_no_duplicates(stack: Stack) -> None:
    first = await asyncio.to_thread(run_demo, stack)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "Summary" in first.stdout and "Demo finished." in first.stdout
    assert "exit reason retracted" in first.stdout
    # The last act: the ministry's stream (its topic read back) and a webhook POST whose signature verified.
    ministry = first.stdout.split("What kemenkes-demo received", 1)[1]
    assert "child.measured.v1" in ministry and "every signature verified" in ministry
    # Every event type of the catalogue is on the topics, read back here with a consumer of our own (a new
    # event type without a step in the demo fails this), and the demo's own closing check says so too.
    catalogue = set(event_types())
    assert len(catalogue) >= 42
    seen = await types_on_topics(stack, catalogue)
    assert catalogue - set(seen) == set(), (
        f"event types the demo never produced: {sorted(catalogue - set(seen))}"
    )
    assert f"all {len(catalogue)} event types seen" in first.stdout
    life = first.stdout.split("A month of programme life", 1)[1].split("Summary", 1)[0]
    assert "enrolled at" in life and "flags no improvement" in life and "(moved)" in life
    after_first = await counts(stack)
    assert after_first["families"] == 62  # 60 + the story family + the Saputra family (programme life)
    assert after_first["kampung_kb"] == SMALL_VILLAGES
    assert after_first["linked"] == 62  # the import's kampung_kb_code linked every family to its Kampung KB
    # The seeded groups and the new one of programme life; the CSR trial kitchen is outside these villages.
    assert after_first["groups"] == 4 and after_first["kitchens"] == 2

    second = await asyncio.to_thread(run_demo, stack)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "Demo finished." in second.stdout
    assert await counts(stack) == after_first
    assert "family 0 new/61 reused" in second.stdout and "life_family 0 new/1 reused" in second.stdout
    assert f"all {len(catalogue)} event types seen" in second.stdout
    # The families came through the bulk import: the second import of the same file changes nothing.
    assert (
        "families 61 unchanged; persons" in second.stdout
        and "created" not in second.stdout.split("import of 61 families", 1)[1].split("\n", 1)[0]
    )
    # The figures are read once the pipeline is idle, so the story's own changes show in the table.
    assert "after correction" in first.stdout and "(+750,000)" in first.stdout
    stack.assert_alive()
