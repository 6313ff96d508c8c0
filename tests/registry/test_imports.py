"""Bulk import: validate vs commit, per-row errors, idempotent re-import, atomic families, region scope, jobs."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import uuid
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from registry.config import Settings
from registry.families.models import Person
from registry.growth.domain import score_child
from registry.health.models import KbStatus, Pregnancy
from registry.identity.domain import make_kk
from registry.imports import domain
from registry.imports import repository as import_repo
from registry.imports.jobs import ImportWorker
from registry.imports.models import ImportChunk, ImportJob
from registry.imports.pipeline import run_chunk
from registry.main import create_app
from registry.models import outbox
from registry.pii import PiiVault, Sealed
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared.clock import business_today
from shared.db import create_sessionmaker, new_ids, utcnow
from shared.events import EventData
from shared.events.envelope import build_envelope
from shared.events.registry import ChildMeasured, PersonRegistered
from shared.outbox import Relay, outbox_records
from shared.testing.plugin import bearer, consume, running_app, wait_for
from tests.registry.conftest import VILLAGE, nik, serial

pytestmark = pytest.mark.integration

IMPORTER = "registry:read registry:write registry:import"
COLUMNS = [
    "kk_number", "village_code", "rw", "rt", "latrine_type", "drinking_water_source", "nik", "name", "sex",
    "birth_date", "relation", "marital_status", "measured_on", "weight_kg", "lenhei_cm", "position",
]  # fmt: skip


def imp_auth(region: str | None = "15.71") -> dict[str, str]:
    # The tests find what an import made by NIK: a search needs its scope and a purpose (logged).
    return {**bearer(IMPORTER + " registry:nik:search", region=region), "X-Purpose": "import check"}


def family_rows(
    village: str = VILLAGE, *, child_measured: bool = False, kk: str | None = None, **override: Any
) -> list[dict[str, Any]]:
    """A head, a wife and a child without NIK (optionally measured), as import rows."""
    kk = kk or make_kk(village[:8], date(2015, 3, 12), serial())
    common = {"kk_number": kk, "village_code": village, "rw": "003", "rt": "001", "latrine_type": "tidak_ada"}
    child_birth = business_today() - timedelta(days=300)
    rows = [
        {**common, "nik": nik(date(1990, 1, 1), "L"), "name": "Budi Santoso", "sex": "L",
         "birth_date": "1990-01-01", "relation": "kepala_keluarga", "marital_status": "kawin"},
        {**common, "nik": nik(date(1995, 5, 5), "P"), "name": "Siti Aminah", "sex": "P",
         "birth_date": "1995-05-05", "relation": "istri", "marital_status": "kawin"},
        {**common, "name": "Ani", "sex": "P", "birth_date": child_birth.isoformat(), "relation": "anak"},
    ]  # fmt: skip
    if child_measured:
        rows[2].update(
            measured_on=business_today().isoformat(), weight_kg="6.0", lenhei_cm="60.0", position="l"
        )
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
    future[2]["birth_date"] = (business_today() + timedelta(days=3)).isoformat()
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
        assert await run_chunk(sm, vault, job, token, 0, chunks[0], {}, 3, isolate=False)
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
        assert not await run_chunk(sm, vault, job, token, 1, chunks[1], {}, 3, isolate=False)


# ------------------------------------------------------------------------------------------ bulk mechanics


def test_batched_sealing_and_indexes_are_those_of_the_vault() -> None:
    key, index_key = bytes(range(32)), bytes(range(32, 64))
    vault = PiiVault([("k1", key)], index_key)
    owners = [uuid.uuid4() for _ in range(50)]
    numbers = [f"15710101019{i:05d}" for i in range(50)]
    plain = [hmac.new(index_key, f"nik:{n}".encode(), hashlib.sha256).digest() for n in numbers]
    assert vault.index_many("nik", numbers) == [vault.index("nik", n) for n in numbers] == plain
    assert vault.index_many("kk", numbers) != vault.index_many("nik", numbers)  # bound to the kind
    blobs = vault.seal_many("nik", list(zip(numbers, owners, strict=True)))
    assert len({b[:12] for b in blobs}) == 50  # a fresh nonce each
    for number, owner, blob in zip(numbers, owners, blobs, strict=True):
        # Byte for byte what `seal` makes with the same nonce: AES-256-GCM bound to kind and owning row.
        nonce = blob[:12]
        aad = f"kencana-registry:nik:{owner}".encode()
        assert blob == nonce + AESGCM(key).encrypt(nonce, number.encode(), aad)
        assert vault.open("nik", Sealed("k1", blob), owner) == number
        with pytest.raises(InvalidTag):
            vault.open("nik", Sealed("k1", blob), uuid.uuid4())


def test_outbox_records_are_the_envelopes_publish_writes() -> None:
    family_id = uuid.uuid4()
    events: list[tuple[EventData, str | uuid.UUID]] = [
        (
            PersonRegistered(
                person_id=uuid.uuid4(), family_id=family_id, village_code=VILLAGE, rw=None, sex="P",
                birth_date=date(2024, 1, 2), relation="anak", marital_status="belum_kawin", has_nik=False,
                pus=False, rule_version="r1",
            ),
            family_id,
        )
        for _ in range(3)
    ] + [
        (
            ChildMeasured(
                measurement_id=uuid.uuid4(), person_id=uuid.uuid4(), family_id=family_id, village_code=VILLAGE,
                sex="L", measured_on=date(2026, 1, 1), age_days=300, weight_kg=7.5, haz=-2.5, rule_version="r1",
            ),
            str(family_id),
        )
    ]  # fmt: skip
    records = outbox_records(events, correlation_id="job-1")
    assert len({r[0] for r in records}) == 4
    times = set()
    for (data, key), (event_id, topic, partition_key, event_type, text) in zip(events, records, strict=True):
        stored = orjson.loads(text)
        expected = build_envelope(
            data,
            key=str(key),
            correlation_id="job-1",
            event_id=event_id,
            time=datetime.fromisoformat(stored["time"]),
        ).model_dump(mode="json", exclude_none=True)
        assert stored == expected
        assert (topic, partition_key, event_type) == (data.topic(), str(key), data.event_type)
        times.add(stored["time"])
    assert len(times) == 1  # one event time per batch


async def test_a_crash_mid_chunk_leaves_nothing_and_the_retry_writes_everything_once(
    registry_url: str, registry_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(database_url=registry_url, import_worker_enabled=False, import_sync_max_rows=1)
    families = 40
    body, rows = big_file(families)  # one chunk at the default chunk size
    copied: list[str] = []
    real_copy = import_repo.copy_records

    async def crash_before_the_events(session: AsyncSession, table: str, *args: Any) -> None:
        copied.append(table)
        if table == "outbox" and copied.count("outbox") == 1:
            raise ConnectionResetError("worker lost its database connection mid-chunk")
        await real_copy(session, table, *args)

    monkeypatch.setattr(import_repo, "copy_records", crash_before_the_events)
    async with running_app(create_app(settings)) as client:
        r = await client.post(
            "/v1/imports?mode=commit", content=body, headers={**imp_auth(), "Content-Type": "text/csv"}
        )
        assert r.status_code == 202
        job_id = r.json()["id"]
        sm = create_sessionmaker(registry_engine)
        worker = ImportWorker(sm, PiiVault.from_settings(settings), chunk_rows=settings.import_chunk_rows)
        assert await worker.run_once()  # the first attempt dies after families and persons were copied
        async with sm() as s:
            job = await s.get_one(ImportJob, uuid.UUID(job_id))
            assert job.status == "queued" and job.attempts == 1
            assert await s.scalar(select(func.count()).select_from(ImportChunk)
                                  .where(ImportChunk.job_id == job.id)) == 0  # fmt: skip
        assert "person" in copied and copied[-1] == "outbox"
        assert await worker.run_once()
        done = (await client.get(f"/v1/imports/{job_id}", headers=imp_auth())).json()
    assert done["status"] == "done" and done["summary"]["rows"]["created"] == len(rows)
    async with sm() as s:
        indexes = PiiVault.from_settings(settings).index_many("nik", [r["nik"] for r in rows if r.get("nik")])
        holders = select(Person.family_id).where(Person.nik_index.in_(indexes))
        persons = await s.scalar(
            select(func.count()).select_from(Person).where(Person.family_id.in_(holders))
        )
        events = (
            await s.execute(
                select(outbox.c.event_type, func.count())
                .where(outbox.c.envelope["correlationid"].astext == job_id)
                .group_by(outbox.c.event_type)
            )
        ).all()
    assert persons == 3 * families
    assert dict(events) == {
        "registry.family.registered.v1": families,
        "registry.person.registered.v1": 3 * families,
        "registry.child.measured.v1": families,
        "registry.family.stunting_risk_changed.v1": families,
        "registry.baduta.stunting_detected.v1": families,
    }


async def test_a_large_file_with_mixed_errors_over_several_chunks(
    registry_url: str, registry_engine: AsyncEngine
) -> None:
    families = [family_rows(child_measured=i % 2 == 0) for i in range(120)]
    families[3][1]["nik"] = families[3][1]["nik"][:12] + "0000"  # serial zero
    families[10][0]["village_code"] = "32.76.01.1006"  # out of region, on one row only: inconsistent family
    for row in families[20]:
        row["village_code"] = "32.76.01.1006"  # the whole family out of region
    families[90][1]["nik"] = families[5][1]["nik"]  # the same NIK in another chunk
    families[100][2]["birth_date"] = (business_today() + timedelta(days=2)).isoformat()
    rows = [r for f in families for r in f]
    body = to_csv(rows)
    row_of = {id(r): n for n, r in enumerate(rows, start=1)}
    settings = Settings(database_url=registry_url, import_worker_enabled=False, import_sync_max_rows=1)
    async with running_app(create_app(settings)) as client:
        r = await client.post(
            "/v1/imports?mode=commit", content=body, headers={**imp_auth(), "Content-Type": "text/csv"}
        )
        assert r.status_code == 202
        job_id = r.json()["id"]
        worker = ImportWorker(
            create_sessionmaker(registry_engine), PiiVault.from_settings(settings), chunk_rows=100
        )
        assert await worker.run_once()
        job = (await client.get(f"/v1/imports/{job_id}", headers=imp_auth())).json()
        got = rules_of(await issues(client, job_id, limit=200))
    assert job["status"] == "done" and job["chunks_total"] == 4
    assert job["summary"]["families"] == {"created": 115, "updated": 0, "unchanged": 0, "rejected": 5}
    assert job["summary"]["rows"] == {"created": 345, "updated": 0, "unchanged": 0, "rejected": 15}
    assert job["summary"]["measurements"]["created"] == 56
    assert {
        (row_of[id(families[3][1])], "nik", "nik.serial_zero"),
        (row_of[id(families[3][0])], "kk_number", "import.family_rejected"),
        (row_of[id(families[10][1])], "village_code", "import.family_inconsistent"),
        (row_of[id(families[20][0])], "village_code", "region.out_of_scope"),
        (row_of[id(families[90][1])], "nik", "nik.duplicate"),
        (row_of[id(families[100][2])], "birth_date", "person.birth_date_future"),
    } <= got
    assert {n for n, _, _ in got} == {row_of[id(r)] for i in (3, 10, 20, 90, 100) for r in families[i]}


def test_ids_drawn_in_blocks_are_random_version_4_uuids() -> None:
    ids = new_ids(5000)
    assert len(set(ids)) == 5000
    for u in ids:
        same = uuid.UUID(str(u))
        assert (u.version, u.variant) == (4, uuid.RFC_4122)
        assert u == same and hash(u) == hash(same) and u.bytes == same.bytes


# ------------------------------------------------------------------------------------------ KB and pregnancy


HEALTH_COLUMNS = [
    *COLUMNS,
    "kb_method",
    "kb_since",
    "kb_reason_non_use",
    "kb_service_source",
    "pregnancy_lmp",
]


async def test_kb_status_and_pregnancy_columns_follow_the_api_rules_and_reimport_changes_nothing(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    since = (business_today() - timedelta(days=200)).isoformat()
    lmp = (business_today() - timedelta(days=60)).isoformat()
    users = family_rows()
    users[1].update(kb_method="implant", kb_since=since, kb_service_source="pemerintah")
    users[0].update(kb_reason_non_use="ingin_anak_segera", kb_since=since)
    pregnant = family_rows()
    pregnant[1].update(kb_reason_non_use="hamil", kb_since=lmp, pregnancy_lmp=lmp)
    wrong_sex = family_rows()
    wrong_sex[1].update(kb_method="mop", kb_since=since)
    man_pregnant = family_rows()
    man_pregnant[0].update(pregnancy_lmp=lmp)
    no_since = family_rows()
    no_since[1].update(kb_method="pil")
    user_with_reason = family_rows()
    user_with_reason[1].update(kb_method="implant", kb_reason_non_use="iat", kb_since=since)
    rows = users + pregnant + wrong_sex + man_pregnant + no_since + user_with_reason
    body = to_csv(rows, HEALTH_COLUMNS)
    async with session.begin():
        before = await session.scalar(select(outbox.c.seq).order_by(outbox.c.seq.desc()).limit(1))

    job = await post_import(client, body)
    s = job["summary"]
    assert s["families"]["created"] == 2 and s["families"]["rejected"] == 4
    assert s["kb_statuses"] == {
        "created": 3,
        "updated": 0,
        "unchanged": 0,
        "rejected": 2,
    }  # + an unreadable row
    assert s["pregnancies"] == {"created": 1, "updated": 0, "unchanged": 0, "rejected": 1}
    assert {
        (8, "kb_method", "kb.method_sex"),
        (10, "pregnancy_lmp", "pregnancy.not_a_woman"),
        (14, "kb_since", "missing"),
        (17, "kb_reason_non_use", "kb.reason_for_user"),
    } <= rules_of(await issues(client, job["id"]))
    events = await outbox_since(session, before)
    kb = [e["data"] for t, e in events if t == "registry.kb_status.changed.v1"]
    assert sorted(
        (k["method"] or "", k["mkjp"], k["is_user"], k.get("previous_method"), k.get("reason_non_use"))
        for k in kb
    ) == [
        ("", False, False, None, "hamil"),
        ("", False, False, None, "ingin_anak_segera"),
        ("implant", True, True, None, None),
    ]
    [preg] = [e["data"] for t, e in events if t == "registry.pregnancy.registered.v1"]
    # The LMP no longer travels (issue 12, item 7: no consumer needs it); the due day computed from it does.
    due = (date.fromisoformat(lmp) + timedelta(days=280)).isoformat()
    assert preg["lmp"] is None and preg["expected_delivery"] == due
    assert preg["krs"] is True and preg["mother_age_years"] > 20
    risk = [e["data"] for t, e in events if t == "registry.family.stunting_risk_changed.v1"]
    assert any(r["family_id"] == preg["family_id"] and r["at_risk"] for r in risk)
    async with session.begin():
        statuses = (
            await session.scalars(
                select(KbStatus).where(KbStatus.person_id.in_([k["person_id"] for k in kb]))
            )
        ).all()
        ongoing = await session.scalar(
            select(Pregnancy).where(Pregnancy.id == uuid.UUID(preg["pregnancy_id"]))
        )
    assert len(statuses) == 3 and all(st.current for st in statuses)
    assert ongoing is not None and ongoing.status == "ongoing"

    # Same file again: every KB status and the pregnancy unchanged, no event.
    before = await _last_seq(session)
    again = await post_import(client, to_csv(users + pregnant, HEALTH_COLUMNS))
    assert again["summary"]["kb_statuses"] == {"created": 0, "updated": 0, "unchanged": 3, "rejected": 0}
    assert again["summary"]["pregnancies"] == {"created": 0, "updated": 0, "unchanged": 1, "rejected": 0}
    assert await outbox_since(session, before) == []

    # A new method adds a status (the previous one closes); another HPHT while pregnant is a row error.
    users[1]["kb_method"] = "iud"
    pregnant[1]["pregnancy_lmp"] = (business_today() - timedelta(days=30)).isoformat()
    job = await post_import(client, to_csv(users + pregnant, HEALTH_COLUMNS))
    assert job["summary"]["kb_statuses"]["created"] == 1 and job["summary"]["families"]["rejected"] == 1
    assert (5, "pregnancy_lmp", "pregnancy.ongoing_exists") in rules_of(await issues(client, job["id"]))
    [(kind, changed)] = await outbox_since(session, before)
    assert kind == "registry.kb_status.changed.v1"
    # Same kb_since, another method: the file corrects that entry (nobody switches on the day they started), so
    # the event compares with what held before kb_since, which nothing recorded: no switch from implant.
    data = changed["data"]
    assert (data["method"], data["previous_method"], data["first_record"]) == ("iud", None, False)


async def _last_seq(session: AsyncSession) -> int | None:
    async with session.begin():
        seq: int | None = await session.scalar(select(outbox.c.seq).order_by(outbox.c.seq.desc()).limit(1))
        return seq


async def test_a_nik_registered_meanwhile_fails_only_its_family_when_the_copy_collides(
    registry_url: str, registry_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(database_url=registry_url, import_worker_enabled=False, import_sync_max_rows=3)
    first = family_rows()
    later = [family_rows(), family_rows(), family_rows()]
    later[1][0]["nik"] = first[0]["nik"]  # registered by the first import, after the planner looked
    async with running_app(create_app(settings)) as client:
        await post_import(client, to_csv(first))

        async def holders_not_yet_there(session: AsyncSession, stage_id: uuid.UUID) -> dict[bytes, Any]:
            return {}

        monkeypatch.setattr(import_repo, "staged_nik_holders", holders_not_yet_there)
        r = await client.post(
            "/v1/imports?mode=commit",
            content=to_csv([r for f in later for r in f]),
            headers={**imp_auth(), "Content-Type": "text/csv"},
        )
        assert r.status_code == 202
        worker = ImportWorker(
            create_sessionmaker(registry_engine), PiiVault.from_settings(settings), chunk_rows=5000
        )
        assert await worker.run_once()
        job = (await client.get(f"/v1/imports/{r.json()['id']}", headers=imp_auth())).json()
        got = rules_of(await issues(client, job["id"]))
    assert job["status"] == "done"
    assert job["summary"]["families"] == {"created": 2, "updated": 0, "unchanged": 0, "rejected": 1}
    assert (4, "kk_number", "unique") in got and {n for n, _, _ in got} == {4, 5, 6}


async def test_a_cell_with_nul_or_a_direction_override_is_a_row_error_not_a_500(
    client: httpx.AsyncClient,
) -> None:
    bad, good = family_rows(), family_rows()
    bad[0]["name"] = "Budi\u0000Santoso"
    bad[1]["name"] = "Siti \u202enimA"
    for mode in ("validate", "commit"):
        job = await post_import(client, to_csv(bad + good), mode=mode)
        assert job["summary"]["families"]["rejected"] == 1 and job["summary"]["families"]["created"] == 1
        got = rules_of(await issues(client, job["id"]))
        assert {(1, "name", "text_forbidden_character"), (2, "name", "text_forbidden_character")} <= got
