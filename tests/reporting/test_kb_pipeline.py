"""Per-couple family planning figures through real Kafka and PostgreSQL, against hand computations.

The events and what each couple contributes are described in kb_dataset.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from reporting.config import Settings
from reporting.consumer import TOPICS
from reporting.main import create_app
from reporting.projection.handlers import apply_batch, handlers
from reporting.rebuild import rebuild

from shared.db import create_engine, create_sessionmaker
from shared.kafka import delete_topics
from shared.migrations import upgrade
from shared.runtime import ensure_service_topics
from shared.testing.plugin import CHECKOUT_TAG, bearer, recreate_database, running_app, unique
from tests.reporting.conftest import fact_snapshot, produce, project, scratch_engine
from tests.reporting.dataset import V1, V2, V3
from tests.reporting.kb_dataset import KbDataset, build_kb
from tests.reporting.test_scale_out import PARTITIONS, clear, deliveries, state

pytestmark = [pytest.mark.integration, pytest.mark.kafka]


class Couples:
    def __init__(self, url: str, settings: Settings, engine: Any, data: KbDataset) -> None:
        self.url, self.settings, self.engine, self.data = url, settings, engine, data

    async def summary(self, code: str, period: str, scopes: str = "reporting:read") -> dict[str, Any]:
        async with running_app(create_app(Settings(database_url=self.url))) as client:
            r = await client.get(f"/v1/regions/{code}/summary?period={period}", headers=bearer(scopes))
        assert r.status_code == 200, r.text
        return r.json()["indicators"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
async def couples(kafka_bootstrap: str) -> AsyncIterator[Couples]:
    url = await recreate_database(f"test_reporting_kb_{CHECKOUT_TAG}")
    await upgrade("reporting", url)
    settings = Settings(database_url=url, topic_suffix="." + unique(), topic_partitions=3)
    await ensure_service_topics(settings, TOPICS)
    engine = create_engine(url, pool_size=4)
    data = build_kb()
    await produce(settings, data.envelopes + data.duplicates)
    await project(settings, engine, len(data.envelopes) + len(data.duplicates))
    try:
        yield Couples(url, settings, engine, data)
    finally:
        await engine.dispose()
        await delete_topics(settings.kafka_bootstrap_servers, [settings.topic(t) for t in TOPICS])


def pick(values: dict[str, Any], *names: str) -> tuple[Any, ...]:
    return tuple(values[n] for n in names)


async def test_march_per_couple(couples: Couples) -> None:
    mar = await couples.summary("ID", "2026-03")
    # PUS: WA, WC, WD, WE, WF (WB is 50 since 15 March) = 5; users WA (husband's MOP), WC pil, WD implant,
    # WF legacy MAL/traditional = 4; modern: WA, WC, WD = 3; MKJP: WA, WD = 2; unmet need: WE (TIAL) = 1.
    assert pick(mar, "pus", "kb_users", "kb_modern_users", "mkjp_users") == (5, 4, 3, 2)
    assert pick(mar, "cpr", "mcpr", "mkjp_share", "unmet_need") == (0.8, 0.6, 0.5, 0.2)
    assert pick(mar, "cpr_numerator", "cpr_denominator", "mcpr_numerator", "mcpr_denominator") == (4, 5, 3, 5)
    assert pick(mar, "kb_users_mop", "kb_users_implant", "kb_users_pil", "kb_users_mal_tradisional") == (
        1,
        1,
        1,
        1,
    )
    assert pick(mar, "kb_users_suntik", "kb_users_kondom") == (0, 0)
    # New acceptor: WC (IAT, then pil from 2 March). Switcher: WD (pil -> implant on 10 March).
    assert pick(mar, "kb_new_acceptors", "mkjp_switchers") == (1, 1)
    # KB Mandiri: WD's implant from a private service; KB Lestari MKJP: WA (MOP since 2020), not WD (March).
    assert pick(mar, "kb_mandiri", "kb_mandiri_share", "kb_lestari_mkjp", "kb_lestari_mkjp_share") == (
        1,
        0.25,
        1,
        0.25,
    )
    # All of these are on fewer than 25 couples: flagged, not presented as plain rates.
    async with running_app(create_app(Settings(database_url=couples.url))) as client:
        body = (
            await client.get("/v1/regions/ID/summary?period=2026-03", headers=bearer("reporting:read"))
        ).json()
    assert {"cpr", "mcpr", "kb_mandiri_share", "kb_lestari_mkjp_share"} <= set(body["small_numbers"])


async def test_the_husbands_vasectomy_counts_for_the_couple(couples: Couples) -> None:
    fa = await couples.summary(V2, "2026-03")
    assert pick(fa, "pus", "kb_users", "cpr", "mkjp_users", "mkjp_share", "kb_users_mop") == (
        1,
        1,
        1.0,
        1,
        1.0,
        1,
    )


async def test_a_wife_ages_out_of_pus_in_the_month_she_completes_fifty(couples: Couples) -> None:
    feb, mar = await couples.summary(V3, "2026-02"), await couples.summary(V3, "2026-03")
    assert pick(feb, "pus", "kb_users", "kb_users_suntik", "kb_mandiri", "cpr") == (1, 1, 1, 1, 1.0)
    # The sweep's person.updated (delivered twice, and repeated a day later) doubles nothing.
    assert pick(mar, "pus", "kb_users", "kb_mandiri", "cpr", "persons_registered") == (0, 0, 0, None, 1)


async def test_february_and_the_quarter(couples: Couples) -> None:
    feb = await couples.summary("ID", "2026-02")
    # PUS 6 (WB still 49); users WA, WB, WD (her pill is the couple's method beside HD's condoms), WF = 4;
    # modern WA, WB, WD = 3; MKJP WA; non-users WC (IAT) and WE (TIAL). HD's condoms start nothing.
    assert pick(feb, "pus", "kb_users", "kb_modern_users", "mkjp_users") == (6, 4, 3, 1)
    assert feb["cpr"] == pytest.approx(4 / 6, abs=1e-6) and feb["mcpr"] == 0.5
    assert feb["unmet_need"] == pytest.approx(2 / 6, abs=1e-6)
    assert pick(feb, "kb_users_pil", "kb_users_kondom", "kb_new_acceptors", "mkjp_switchers") == (1, 0, 0, 0)
    assert pick(feb, "kb_mandiri", "kb_lestari_mkjp") == (1, 1)
    jan = await couples.summary("ID", "2026-01")
    # Every use recorded in January began before registration: continuing use, no new acceptor.
    assert pick(jan, "pus", "kb_users", "kb_new_acceptors") == (6, 4, 0)
    q1 = await couples.summary("ID", "2026-Q1")
    assert pick(q1, "pus", "kb_users", "kb_new_acceptors", "mkjp_switchers", "kb_lestari_mkjp") == (
        5,
        4,
        1,
        1,
        1,
    )


async def test_a_late_kb_change_of_a_member_survives_the_join(couples: Couples) -> None:
    mar = await couples.summary(V1, "2026-03")
    # Members: WC (pus, pil from 2 March, learnt after her join on 10 March), WE (pus, TIAL), a remaja.
    members = pick(
        mar, "uppka_members", "uppka_members_pus", "uppka_members_kb_users", "uppka_members_pus_kb_users"
    )
    assert members == (3, 2, 1, 1)
    assert pick(
        mar,
        "uppka_members_kb_participation",
        "uppka_members_kb_participation_numerator",
        "uppka_members_kb_participation_denominator",
    ) == (0.5, 1, 2)
    feb = await couples.summary(V1, "2026-02")
    assert pick(feb, "uppka_members", "uppka_members_kb_participation") == (2, 0.0)


async def test_public_callers_do_not_see_small_village_figures(couples: Couples) -> None:
    v1 = await couples.summary(V1, "2026-03", scopes="reporting:public")
    # V1 has 4 PUS: a small cell, so every KB ratio on it is hidden with its sides.
    assert pick(v1, "pus", "mcpr", "mcpr_numerator", "kb_mandiri_share", "kb_lestari_mkjp_share") == (
        None,
        None,
        None,
        None,
        None,
    )


async def test_rebuild_gives_the_incremental_figures(couples: Couples) -> None:
    before = await fact_snapshot(couples.engine)
    assert any(k[3] == "f.kb.new_acceptors" for k in before) and any(k[3] == "d.kb.mkjp_new" for k in before)
    report = await rebuild(couples.settings, timeout=60)
    assert report.events_applied == len(couples.data.envelopes)
    assert await fact_snapshot(couples.engine) == before
    mar = await couples.summary("ID", "2026-03")
    assert pick(mar, "cpr", "mcpr", "kb_new_acceptors", "mkjp_switchers", "kb_lestari_mkjp") == (
        0.8,
        0.6,
        1,
        1,
        1,
    )


@pytest.fixture
async def fold_engine() -> AsyncIterator[Any]:
    async with scratch_engine("kbfold") as engine:
        yield engine


async def test_couples_folded_in_batches_equal_one_event_at_a_time(fold_engine: Any) -> None:
    """A husband's event re-folds his wife in the batch path exactly as alone (and the reverse order too)."""
    events = deliveries(build_kb().envelopes)
    sessionmaker = create_sessionmaker(fold_engine)
    one_by_one = handlers(PARTITIONS)
    for d in events:
        async with sessionmaker() as session, session.begin():
            await one_by_one[d.envelope.type](session, d.envelope, d.data)
    expected = await state(fold_engine)
    assert any("s.kb.mkjp_users" in row for row in expected["facts"])
    for batch in (events, list(reversed(events))):
        for size in (len(batch), 5):
            await clear(fold_engine)
            for i in range(0, len(batch), size):
                async with sessionmaker() as session, session.begin():
                    await apply_batch(session, batch[i : i + size])
            got = await state(fold_engine)
            assert got["facts"] == expected["facts"], f"batches of {size}"
