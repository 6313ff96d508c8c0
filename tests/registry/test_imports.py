"""Bulk import: validate vs commit, per-row errors, idempotent re-import, atomic families, region scope, jobs."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Any

import httpx
import orjson
import pytest
from registry.config import Settings
from registry.families.models import Person
from registry.growth.domain import score_child
from registry.identity.domain import make_kk
from registry.imports import domain
from registry.imports.jobs import ImportWorker, _run_chunk
from registry.imports.models import ImportChunk, ImportJob
from registry.main import create_app
from registry.models import outbox
from registry.pii import PiiVault
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared.db import create_sessionmaker, utcnow
from shared.outbox import Relay
from shared.testing.plugin import bearer, consume, running_app, wait_for
from tests.registry.conftest import VILLAGE, nik, serial

pytestmark = pytest.mark.integration

IMPORTER = "registry:read registry:write registry:import"
COLUMNS = [
    "kk_number", "village_code", "rw", "rt", "latrine_type", "drinking_water_source", "nik", "name", "sex",
    "birth_date", "relation", "marital_status", "measured_on", "weight_kg", "lenhei_cm", "position",
]  # fmt: skip


def imp_auth(region: str | None = "15.71") -> dict[str, str]:
    return bearer(IMPORTER, region=region)


def family_rows(
    village: str = VILLAGE, *, child_measured: bool = False, kk: str | None = None, **override: Any
) -> list[dict[str, Any]]:
    """A head, a wife and a child without NIK (optionally measured), as import rows."""
    kk = kk or make_kk(village[:8], date(2015, 3, 12), serial())
    common = {"kk_number": kk, "village_code": village, "rw": "003", "rt": "001", "latrine_type": "tidak_ada"}
    child_birth = date.today() - timedelta(days=300)
    rows = [
        {**common, "nik": nik(date(1990, 1, 1), "L"), "name": "Budi Santoso", "sex": "L",
         "birth_date": "1990-01-01", "relation": "kepala_keluarga", "marital_status": "kawin"},
        {**common, "nik": nik(date(1995, 5, 5), "P"), "name": "Siti Aminah", "sex": "P",
         "birth_date": "1995-05-05", "relation": "istri", "marital_status": "kawin"},
        {**common, "name": "Ani", "sex": "P", "birth_date": child_birth.isoformat(), "relation": "anak"},
    ]  # fmt: skip
    if child_measured:
        rows[2].update(measured_on=date.today().isoformat(), weight_kg="6.0", lenhei_cm="60.0", position="l")
    for key, value in override.items():
        rows[0][key] = value
    return rows


def to_csv(rows: list[dict[str, Any]], columns: list[str] = COLUMNS) -> bytes:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    return buf.getvalue().encode()


def to_ndjson(rows: list[dict[str, Any]]) -> bytes:
    return b"\n".join(orjson.dumps(r) for r in rows) + b"\n"


async def post_import(
    client: httpx.AsyncClient,
    body: bytes,
    *,
    mode: str = "commit",
    on_mismatch: str = "reject",
    content_type: str = "text/csv",
    headers: dict[str, str] | None = None,
    expect: int | None = None,
) -> dict[str, Any]:
    r = await client.post(
        f"/v1/imports?mode={mode}&on_mismatch={on_mismatch}",
        content=body,
        headers={**(headers or imp_auth()), "Content-Type": content_type},
    )
    wanted = expect if expect is not None else (201 if mode == "commit" else 200)
    assert r.status_code == wanted, r.text
    data: dict[str, Any] = r.json()
    return data


async def issues(client: httpx.AsyncClient, job_id: str, **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        q = {"limit": 2, **params, **({"cursor": cursor} if cursor else {})}
        r = await client.get(f"/v1/imports/{job_id}/errors", params=q, headers=imp_auth())
        assert r.status_code == 200, r.text
        page = r.json()
        out += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return out


def rules_of(items: list[dict[str, Any]]) -> set[tuple[int, str | None, str]]:
    return {(i["row"], i["field"], i["rule"]) for i in items if i["level"] == "error"}


async def test_validate_writes_nothing_commit_writes_and_reimport_is_unchanged(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    rows = family_rows(child_measured=True) + family_rows()
    body = to_csv(rows)
    job = await post_import(client, body, mode="validate")
    assert job["status"] == "done" and job["progress"] == 1.0
    assert job["summary"]["families"] == {"created": 2, "updated": 0, "unchanged": 0, "rejected": 0}
    assert job["summary"]["persons"]["created"] == 6
    assert job["summary"]["measurements"]["created"] == 1
    head_nik = rows[0]["nik"]
    r = await client.post("/v1/persons:search", json={"nik": head_nik}, headers=imp_auth())
    assert r.json()["items"] == []  # dry run

    job = await post_import(client, body)
    assert job["summary"]["rows"] == {"created": 6, "updated": 0, "unchanged": 0, "rejected": 0}
    r = await client.post("/v1/persons:search", json={"nik": head_nik}, headers=imp_auth())
    [head] = r.json()["items"]
    fam = (await client.get(f"/v1/families/{head['family_id']}", headers=imp_auth())).json()
    assert fam["head_person_id"] == head["id"] and len(fam["members"]) == 3
    assert fam["krs"]["at_risk"] is True  # no latrine, a baduta in the family
    ms = (await client.get("/v1/measurements", params={"person_id": fam["members"][0]["id"]},
                           headers=imp_auth())).json()  # fmt: skip
    child = next(m for m in fam["members"] if m["relation"] == "anak")
    ms = (await client.get("/v1/measurements", params={"person_id": child["id"]}, headers=imp_auth())).json()
    assert len(ms["items"]) == 1
    # The vectorised scoring of the import gives what the API's per-measurement scoring gives.
    m = ms["items"][0]
    ref = score_child(
        sex="P", age_days=m["age_days"], weight_kg=6.0, lenhei_cm=60.0, position="l", oedema=False
    )
    assert (m["haz"], m["waz"], m["whz"], m["haz_class"]) == (ref.zlen, ref.zwei, ref.zwfl, ref.haz_class)

    # Same file again: nothing changes (natural keys: KK, NIK; name + birth date for the child without NIK).
    async with session.begin():
        before = await session.scalar(select(outbox.c.seq).order_by(outbox.c.seq.desc()).limit(1))
    again = await post_import(client, body)
    assert again["summary"]["rows"] == {"created": 0, "updated": 0, "unchanged": 6, "rejected": 0}
    assert again["summary"]["families"]["unchanged"] == 2
    assert again["summary"]["measurements"]["unchanged"] == 1
    async with session.begin():
        after = await session.scalar(select(outbox.c.seq).order_by(outbox.c.seq.desc()).limit(1))
    assert before == after  # no event either

    # NDJSON with one changed fact updates that family only.
    rows[0]["rw"], rows[1]["rw"], rows[2]["rw"] = "007", "007", "007"
    rows[1]["occupation"] = "pedagang"
    job = await post_import(client, to_ndjson(rows), content_type="application/x-ndjson")
    assert job["summary"]["families"] == {"created": 0, "updated": 1, "unchanged": 1, "rejected": 0}
    assert job["summary"]["persons"]["updated"] == 1 and job["summary"]["persons"]["unchanged"] == 5


async def test_per_row_errors_and_atomic_families(client: httpx.AsyncClient) -> None:
    good = family_rows()
    bad_nik = family_rows()
    bad_nik[1]["nik"] = bad_nik[1]["nik"][:12] + "0000"  # serial zero
    short = family_rows()
    short[0]["nik"] = "12345"
    mismatch = family_rows()
    mismatch[1]["birth_date"] = "1995-05-06"  # NIK says 05-05
    sex_mismatch = family_rows()
    sex_mismatch[1]["sex"] = "L"
    unknown_village = family_rows(village="15.71.01.9999")
    headless = family_rows()
    headless[0]["relation"] = "famili_lain"
    future = family_rows()
    future[2]["birth_date"] = (date.today() + timedelta(days=3)).isoformat()
    bad_sex = family_rows()
    bad_sex[2]["sex"] = "X"
    families = [good, bad_nik, short, mismatch, sex_mismatch, unknown_village, headless, future, bad_sex]
    rows = [r for f in families for r in f]
    body = to_csv(rows)
    # A malformed CSV row (too few cells) at the end.
    body += b"1571011203150009,15.71.01.1001\n"
    job = await post_import(client, body, mode="commit")
    s = job["summary"]
    assert s["families"] == {"created": 1, "updated": 0, "unchanged": 0, "rejected": 9}
    assert s["rows"]["created"] == 3 and s["rows"]["rejected"] == 25
    got = rules_of(await issues(client, job["id"]))
    assert (5, "nik", "nik.serial_zero") in got
    assert (6, "kk_number", "import.family_rejected") in got  # the rest of the family goes with it
    assert (7, "nik", "nik.length") in got
    assert (11, "nik", "nik.birth_date_mismatch") in got
    assert (14, "nik", "nik.sex_mismatch") in got
    assert (16, "village_code", "region.village_unknown") in got
    assert (19, "relation", "family.head_required") in got
    assert (24, "birth_date", "person.birth_date_future") in got
    assert (27, "sex", "literal_error") in got
    assert (28, None, "import.row_malformed") in got


async def test_mismatch_flagged_when_operator_chooses_flag(client: httpx.AsyncClient) -> None:
    rows = family_rows()
    rows[1]["birth_date"] = "1995-05-06"
    job = await post_import(client, to_csv(rows), on_mismatch="flag")
    assert job["summary"]["rows"]["created"] == 3
    assert job["summary"]["issues"] == {"errors": 0, "flagged": 1}
    [flag] = await issues(client, job["id"], level="flagged")
    assert (flag["row"], flag["rule"]) == (2, "nik.birth_date_mismatch") and flag["person_id"]
    # Re-import with the same choice: unchanged, still flagged on the record.
    again = await post_import(client, to_csv(rows), on_mismatch="flag")
    assert again["summary"]["rows"]["unchanged"] == 3


async def test_wrong_columns_and_format_reject_the_file(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/v1/imports", content=b"kk,village\n1,2\n", headers={**imp_auth(), "Content-Type": "text/csv"}
    )
    assert r.status_code == 422 and r.json()["errors"][0]["rule"] == "import.column_unknown"
    r = await client.post(
        "/v1/imports", content=b"kk_number,name\n1,2\n", headers={**imp_auth(), "Content-Type": "text/csv"}
    )
    assert r.status_code == 422 and r.json()["errors"][0]["rule"] == "import.column_missing"
    r = await client.post("/v1/imports", content=b"x", headers={**imp_auth(), "Content-Type": "text/plain"})
    assert r.status_code == 422 and r.json()["errors"][0]["rule"] == "import.format_unknown"
    r = await client.post(
        "/v1/imports", content=b"x", headers={**bearer("registry:write"), "Content-Type": "text/csv"}
    )
    assert r.status_code == 403


async def test_region_scope_applies_per_row(client: httpx.AsyncClient) -> None:
    inside = family_rows()
    outside = family_rows(village="32.76.01.1006")
    job = await post_import(client, to_csv(inside + outside), headers=imp_auth("15.71"))
    assert job["summary"]["families"]["created"] == 1 and job["summary"]["families"]["rejected"] == 1
    got = rules_of(await issues(client, job["id"]))
    assert {(4, "village_code", "region.out_of_scope"), (6, "village_code", "region.out_of_scope")} <= got
    # Another region cannot see the job.
    r = await client.get(f"/v1/imports/{job['id']}", headers=imp_auth("32.76"))
    assert r.status_code == 404
    # A family registered inside 15.71 cannot be touched through a KK number from 32.76's import.
    same_kk = family_rows(village="32.76.01.1006", kk=inside[0]["kk_number"])
    job = await post_import(client, to_csv(same_kk), headers=imp_auth("32.76"))
    assert (1, "kk_number", "kk.duplicate") in rules_of(await issues_for(client, job["id"], "32.76"))


async def new_kampung_kb(client: httpx.AsyncClient, village: str, region: str) -> dict[str, Any]:
    r = await client.post(
        "/v1/kampung-kb",
        json={"code": f"KKB-{uuid.uuid4().hex[:12]}", "name": "KKB Impor", "village_code": village},
        headers=imp_auth(region),
    )
    assert r.status_code == 201, r.text
    kkb: dict[str, Any] = r.json()
    return kkb


async def outbox_since(session: AsyncSession, seq: int | None) -> list[tuple[str, dict[str, Any]]]:
    async with session.begin():
        rows = await session.execute(
            select(outbox.c.event_type, outbox.c.envelope)
            .where(outbox.c.seq > (seq or 0))
            .order_by(outbox.c.seq)
        )
        return [(t, e) for t, e in rows]


async def test_kampung_kb_code_links_updates_and_unknown_codes_are_row_errors(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    kkb = await new_kampung_kb(client, VILLAGE, "15.71")
    other = await new_kampung_kb(client, VILLAGE, "15.71")
    foreign = await new_kampung_kb(client, "32.76.01.1006", "32.76")
    columns = [*COLUMNS, "kampung_kb_code"]
    linked, unknown, outside = family_rows(), family_rows(), family_rows()
    for rows, code in ((linked, kkb["code"]), (unknown, "KKB-NO-SUCH-CODE"), (outside, foreign["code"])):
        for row in rows:
            row["kampung_kb_code"] = code
    body = to_csv(linked + unknown + outside, columns)
    for mode in ("validate", "commit"):
        job = await post_import(client, body, mode=mode)
        assert job["summary"]["families"] == {"created": 1, "updated": 0, "unchanged": 0, "rejected": 2}
        got = rules_of(await issues(client, job["id"]))
        # Outside the region reads exactly like unknown: no existence leak.
        assert {
            (4, "kampung_kb_code", "family.kampung_kb_unknown"),
            (7, "kampung_kb_code", "family.kampung_kb_unknown"),
            (5, "kk_number", "import.family_rejected"),
        } <= got
    r = await client.post("/v1/persons:search", json={"nik": linked[0]["nik"]}, headers=imp_auth())
    family_id = r.json()["items"][0]["family_id"]
    fam = (await client.get(f"/v1/families/{family_id}", headers=imp_auth())).json()
    assert fam["kampung_kb_id"] == kkb["id"]

    # Same value again (or an empty cell / no column): unchanged, no event.
    async with session.begin():
        before = await session.scalar(select(outbox.c.seq).order_by(outbox.c.seq.desc()).limit(1))
    again = await post_import(client, to_csv(linked, columns))
    assert again["summary"]["families"] == {"created": 0, "updated": 0, "unchanged": 1, "rejected": 0}
    again = await post_import(client, to_csv(linked))
    assert again["summary"]["families"]["unchanged"] == 1
    assert await outbox_since(session, before) == []

    # A changed value updates the family, with the API's family-updated event.
    for row in linked:
        row["kampung_kb_code"] = other["code"]
    job = await post_import(client, to_csv(linked, columns))
    assert job["summary"]["families"] == {"created": 0, "updated": 1, "unchanged": 0, "rejected": 0}
    assert job["summary"]["persons"]["unchanged"] == 3
    fam2 = (await client.get(f"/v1/families/{family_id}", headers=imp_auth())).json()
    assert fam2["kampung_kb_id"] == other["id"] and fam2["version"] == fam["version"] + 1
    events = await outbox_since(session, before)
    assert [t for t, _ in events] == ["registry.family.updated.v1"]
    assert events[0][1]["data"]["kampung_kb_id"] == other["id"]


async def issues_for(client: httpx.AsyncClient, job_id: str, region: str) -> list[dict[str, Any]]:
    r = await client.get(f"/v1/imports/{job_id}/errors", headers=imp_auth(region))
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def test_duplicate_nik_in_file_and_against_registry(client: httpx.AsyncClient) -> None:
    a = family_rows()
    b = family_rows()
    b[1]["nik"] = a[1]["nik"]
    job = await post_import(client, to_csv(a + b))
    assert (5, "nik", "nik.duplicate") in rules_of(await issues(client, job["id"]))
    c = family_rows()
    c[0]["nik"] = a[0]["nik"]  # a's head, now in another KK
    job = await post_import(client, to_csv(c))
    assert (1, "nik", "nik.duplicate") in rules_of(await issues(client, job["id"]))


# ------------------------------------------------------------------------------------------ jobs


def big_file(families: int) -> tuple[bytes, list[dict[str, Any]]]:
    rows = [r for _ in range(families) for r in family_rows(child_measured=True)]
    return to_csv(rows), rows


async def test_large_file_is_a_job_with_progress_and_events_reach_kafka(
    registry_url: str, topic_factory: Callable[..., Awaitable[str]], kafka_bootstrap: str
) -> None:
    topic = await topic_factory("registry-import")
    settings = Settings(
        database_url=registry_url,
        import_sync_max_rows=5,
        import_chunk_rows=4,
        import_poll_interval_seconds=0.1,
    )
    body, _ = big_file(4)  # 12 rows; chunks hold whole families, so 4 chunks of 3 rows
    async with running_app(create_app(settings)) as client:
        r = await client.post(
            "/v1/imports?mode=commit", content=body, headers={**imp_auth(), "Content-Type": "text/csv"}
        )
        assert r.status_code == 202, r.text
        location = r.headers["Location"]
        assert r.json()["total_rows"] == 12

        async def finished() -> dict[str, Any] | None:
            job: dict[str, Any] = (await client.get(location, headers=imp_auth())).json()
            return job if job["status"] == "done" else None

        job = await wait_for(finished, timeout=60, what="import job done")
    assert job["processed_rows"] == 12 and job["chunks_done"] == job["chunks_total"] == 4
    assert job["summary"]["rows"]["created"] == 12
    job_id = job["id"]

    engine_settings = Settings(database_url=registry_url, topic_suffix="")
    from shared.db import create_engine

    engine = create_engine(engine_settings.database_url, pool_size=2)
    try:
        relay = Relay(
            service="registry-test-import",
            sessionmaker=create_sessionmaker(engine),
            table=outbox,
            bootstrap_servers=kafka_bootstrap,
            topic_for=lambda _t: topic,
            batch_size=500,
        )
        # Publish everything pending (other tests' rows too); then look for this job's events.
        while await relay.publish_batch():
            pass
        await relay._discard(relay._producer)
    finally:
        await engine.dispose()

    def mine(records: list[Any]) -> list[dict[str, Any]]:
        out = []
        for rec in records:
            env = orjson.loads(rec.value)
            if env.get("correlationid") == job_id:
                out.append(env)
        return out

    records = await consume(topic, until=lambda recs: len(mine(recs)) >= 4 + 12 + 4 * 2, timeout=60)
    types = [e["type"] for e in mine(records)]
    assert types.count("registry.family.registered.v1") == 4
    assert types.count("registry.person.registered.v1") == 12
    assert types.count("registry.child.measured.v1") == 4
    assert types.count("registry.family.stunting_risk_changed.v1") == 4
    for e in mine(records):
        assert "nik" not in e["data"] and "name" not in e["data"]
        assert e["partitionkey"] == e["data"]["family_id"]


async def test_a_crashed_job_is_resumed_after_its_last_chunk(
    registry_url: str, registry_engine: AsyncEngine
) -> None:
    settings = Settings(database_url=registry_url, import_worker_enabled=False, import_sync_max_rows=1)
    body, _ = big_file(3)
    async with running_app(create_app(settings)) as client:
        r = await client.post(
            "/v1/imports?mode=commit", content=body, headers={**imp_auth(), "Content-Type": "text/csv"}
        )
        assert r.status_code == 202
        job_id = uuid.UUID(r.json()["id"])
        sm = create_sessionmaker(registry_engine)
        vault = PiiVault.from_settings(settings)
        # A worker claimed it and committed chunk 0, then died (no more heartbeats): simulate the first part.
        token = uuid.uuid4()
        async with sm() as s, s.begin():
            await s.execute(
                update(ImportJob)
                .where(ImportJob.id == job_id)
                .values(status="running", claim_token=token, heartbeat_at=utcnow(), attempts=1)
            )
        async with sm() as s, s.begin():
            job = await s.get_one(ImportJob, job_id)
        chunks = domain.chunk(domain.group_families(list(domain.parse(body, "csv"))), 3)
        assert len(chunks) == 3
        assert await _run_chunk(sm, vault, job, token, 0, chunks[0], {}, 3, isolate=False)
        async with sm() as s, s.begin():
            await s.execute(
                update(ImportJob)
                .where(ImportJob.id == job_id)
                .values(status="running", heartbeat_at=utcnow() - timedelta(minutes=10))
            )
        mid = (await client.get(f"/v1/imports/{job_id}", headers=imp_auth())).json()
        assert mid["status"] == "running" and mid["processed_rows"] == 3 and mid["chunks_done"] == 1

        # Another worker picks the abandoned job up and finishes it without redoing chunk 0.
        worker = ImportWorker(sm, vault, chunk_rows=3)
        for _ in range(20):
            await worker.run_once()
            async with sm() as s:
                if (await s.get_one(ImportJob, job_id)).status == "done":
                    break
        done = (await client.get(f"/v1/imports/{job_id}", headers=imp_auth())).json()
        assert done["status"] == "done" and done["summary"]["rows"]["created"] == 9
        async with sm() as s:
            attempts = (await s.get_one(ImportJob, job_id)).attempts
            chunk_rows = (
                await s.scalars(select(ImportChunk.chunk_no).where(ImportChunk.job_id == job_id))
            ).all()
            persons = await s.scalar(select(Person.id).where(Person.name == "Budi Santoso").limit(1))
        assert attempts == 2 and sorted(chunk_rows) == [0, 1, 2] and persons is not None
        # The old worker's token is fenced off: it cannot commit anything any more.
        assert not await _run_chunk(sm, vault, job, token, 1, chunks[1], {}, 3, isolate=False)
