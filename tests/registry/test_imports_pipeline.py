"""The overlapped chunk pipeline: chunk N+1 is planned while chunk N writes, and every rule of the serial run holds."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from registry.config import Settings
from registry.families.models import Person
from registry.imports import repository as import_repo
from registry.imports.jobs import ImportWorker
from registry.imports.models import ImportChunk, ImportJob
from registry.main import create_app
from registry.models import outbox
from registry.pii import PiiVault
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared.db import create_sessionmaker
from shared.testing.plugin import running_app
from tests.registry.test_imports import family_rows, imp_auth, issues, rules_of, to_csv

pytestmark = pytest.mark.integration


async def _submit(client: Any, rows: list[dict[str, Any]]) -> str:
    r = await client.post(
        "/v1/imports?mode=commit", content=to_csv(rows), headers={**imp_auth(), "Content-Type": "text/csv"}
    )
    assert r.status_code == 202, r.text
    job_id: str = r.json()["id"]
    return job_id


async def _holders(session: AsyncSession, vault: PiiVault, niks: list[str]) -> int:
    found = await session.scalar(
        select(func.count()).select_from(Person).where(Person.nik_index.in_(vault.index_many("nik", niks)))
    )
    return int(found or 0)


async def test_the_next_chunk_is_planned_while_the_one_before_writes_and_still_finds_its_niks(
    registry_url: str, registry_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(database_url=registry_url, import_worker_enabled=False, import_sync_max_rows=1)
    vault = PiiVault.from_settings(settings)
    families = [family_rows() for _ in range(3)]
    families[1][1]["nik"] = families[0][1]["nik"]  # chunk 1's wife carries the NIK chunk 0 is creating
    rows = [r for f in families for r in f]
    order: list[str] = []
    looked_up = [asyncio.Event(), asyncio.Event()]
    real_holders, real_add_chunk = import_repo.staged_nik_holders, import_repo.add_chunk

    async def holders(session: AsyncSession, stage_id: uuid.UUID) -> Any:
        found = await real_holders(session, stage_id)
        order.append("looked up")
        for e in looked_up:
            if not e.is_set():
                e.set()
                break
        return found

    async def add_chunk(session: AsyncSession, job_id: uuid.UUID, chunk_no: int, *args: Any) -> None:
        if chunk_no == 0:
            # Chunk 0 holds its commit until chunk 1 has done its look-ups: a serial run never gets there.
            await asyncio.wait_for(looked_up[1].wait(), 10)
        order.append(f"chunk {chunk_no} recorded")
        await real_add_chunk(session, job_id, chunk_no, *args)

    monkeypatch.setattr(import_repo, "staged_nik_holders", holders)
    monkeypatch.setattr(import_repo, "add_chunk", add_chunk)
    async with running_app(create_app(settings)) as client:
        job_id = await _submit(client, rows)
        worker = ImportWorker(create_sessionmaker(registry_engine), vault, chunk_rows=3)
        assert await worker.run_once()
        job = (await client.get(f"/v1/imports/{job_id}", headers=imp_auth())).json()
        got = rules_of(await issues(client, job_id))
    assert job["status"] == "done", job
    # Chunk 1's look-ups ran before chunk 0 committed.
    assert order[:3] == ["looked up", "looked up", "chunk 0 recorded"] and len(order) == 6
    assert job["summary"]["families"] == {"created": 2, "updated": 0, "unchanged": 0, "rejected": 1}
    # Row 5 (chunk 1's wife) is the file's duplicate of row 2 although the database did not hold row 2 yet.
    assert (5, "nik", "nik.duplicate") in got and {n for n, _, _ in got} == {4, 5, 6}
    async with create_sessionmaker(registry_engine)() as s:
        assert await _holders(s, vault, [families[0][1]["nik"]]) == 1
        assert await _holders(s, vault, [families[2][0]["nik"], families[2][1]["nik"]]) == 2


async def test_a_crash_in_a_later_chunk_leaves_the_chunks_before_and_the_job_resumes_there(
    registry_url: str, registry_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(database_url=registry_url, import_worker_enabled=False, import_sync_max_rows=1)
    vault = PiiVault.from_settings(settings)
    families = [family_rows(child_measured=True) for _ in range(3)]
    real_copy = import_repo.copy_records
    outbox_copies: list[int] = []

    async def crash_in_chunk_1(session: AsyncSession, table: str, *args: Any) -> None:
        if table == "outbox":
            outbox_copies.append(1)
            if len(outbox_copies) == 2:  # chunk 1's events, while chunk 2 is being planned
                raise ConnectionResetError("worker lost its database connection mid-chunk")
        await real_copy(session, table, *args)

    monkeypatch.setattr(import_repo, "copy_records", crash_in_chunk_1)
    sm = create_sessionmaker(registry_engine)
    async with running_app(create_app(settings)) as client:
        job_id = await _submit(client, [r for f in families for r in f])
        worker = ImportWorker(sm, vault, chunk_rows=3)
        assert await worker.run_once()
        async with sm() as s:
            job = await s.get_one(ImportJob, uuid.UUID(job_id))
            assert job.status == "queued" and job.attempts == 1
            done = (await s.scalars(select(ImportChunk.chunk_no).where(ImportChunk.job_id == job.id))).all()
            assert list(done) == [0]
            assert await _holders(s, vault, [families[0][0]["nik"]]) == 1
            assert await _holders(s, vault, [f[0]["nik"] for f in families[1:]]) == 0
        assert await worker.run_once()
        final = (await client.get(f"/v1/imports/{job_id}", headers=imp_auth())).json()
    assert final["status"] == "done" and final["summary"]["rows"]["created"] == 9
    async with sm() as s:
        chunks = (
            await s.scalars(select(ImportChunk.chunk_no).where(ImportChunk.job_id == uuid.UUID(job_id)))
        ).all()
        assert sorted(chunks) == [0, 1, 2]
        assert await _holders(s, vault, [r["nik"] for f in families for r in f[:2]]) == 6
        events: dict[str, int] = dict(
            (
                await s.execute(
                    select(outbox.c.event_type, func.count())
                    .where(outbox.c.envelope["correlationid"].astext == job_id)
                    .group_by(outbox.c.event_type)
                )
            ).all()
        )
    # Each event once: chunk 0's were not written again by the resumed run, chunk 1's not half written before.
    assert events["registry.family.registered.v1"] == 3
    assert events["registry.person.registered.v1"] == 9
    assert events["registry.child.measured.v1"] == 3


async def test_a_number_registered_meanwhile_in_a_middle_chunk_fails_only_its_family(
    registry_url: str, registry_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(database_url=registry_url, import_worker_enabled=False, import_sync_max_rows=3)
    vault = PiiVault.from_settings(settings)
    first = family_rows()
    later = [family_rows(), family_rows(), family_rows()]
    later[1][0]["nik"] = first[0]["nik"]  # registered before, but the look-up is made not to see it
    later[2][1]["nik"] = later[1][1]["nik"]  # and the last chunk repeats a NIK of the collided one
    async with running_app(create_app(settings)) as client:
        r = await client.post(
            "/v1/imports?mode=commit",
            content=to_csv(first),
            headers={**imp_auth(), "Content-Type": "text/csv"},
        )
        assert r.status_code == 201, r.text

        async def holders_not_yet_there(session: AsyncSession, stage_id: uuid.UUID) -> dict[bytes, Any]:
            return {}

        monkeypatch.setattr(import_repo, "staged_nik_holders", holders_not_yet_there)
        job_id = await _submit(client, [r for f in later for r in f])
        worker = ImportWorker(create_sessionmaker(registry_engine), vault, chunk_rows=3)
        assert await worker.run_once()
        job = (await client.get(f"/v1/imports/{job_id}", headers=imp_auth())).json()
        got = rules_of(await issues(client, job_id))
    assert job["status"] == "done" and job["chunks_total"] == 3
    # Chunk 1 collides and is redone family by family; chunk 2, planned again after it, still sees row 5's NIK.
    assert job["summary"]["families"] == {"created": 1, "updated": 0, "unchanged": 0, "rejected": 2}
    assert (4, "kk_number", "unique") in got and (8, "nik", "nik.duplicate") in got
    assert {n for n, _, _ in got} == {4, 5, 6, 7, 8, 9}
    async with create_sessionmaker(registry_engine)() as s:
        assert await _holders(s, vault, [later[0][0]["nik"], later[0][1]["nik"]]) == 2
        assert await _holders(s, vault, [later[1][1]["nik"]]) == 0
