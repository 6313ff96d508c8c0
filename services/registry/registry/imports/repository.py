"""Every query of bulk imports: batched look-ups of natural keys, job claims, chunks and issues."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import Any

import asyncpg
from sqlalchemy import delete, func, insert, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from registry.families.models import Family, KampungKb, Person
from registry.growth.models import Measurement
from registry.health.models import KbStatus, Pregnancy
from registry.imports.models import ImportChunk, ImportFile, ImportIssue, ImportJob, ImportStageRow
from registry.regions.models import Region
from shared.auth import Principal
from shared.db import utcnow
from shared.regions.scope import in_scope
from shared.web.pagination import PageParams, keyset_page

# ------------------------------------------------------------------------------------------------ staging
# A chunk's natural keys go in with one COPY; the registry is then searched with joins against them, whatever
# the chunk's size (no IN list of thousands of parameters), and the rows are removed in the same transaction.

_STAGE_COLUMNS = ("stage_id", "row_no", "kk_index", "nik_index", "village_code", "kampung_kb_code")


async def stage(
    session: AsyncSession,
    stage_id: uuid.UUID,
    rows: Iterable[tuple[int, bytes | None, bytes | None, str | None, str | None]],
) -> None:
    """Stage (row, KK index, NIK index, village, Kampung KB code) of the rows being planned."""
    await copy_records(session, ImportStageRow.__tablename__, _STAGE_COLUMNS, [(stage_id, *r) for r in rows])


async def unstage(session: AsyncSession, stage_id: uuid.UUID) -> None:
    await session.execute(delete(ImportStageRow).where(ImportStageRow.stage_id == stage_id))


def _staged(column: Any, stage_id: uuid.UUID) -> Any:
    return select(column).where(ImportStageRow.stage_id == stage_id, column.is_not(None)).distinct()


# Villages and Kampung KB codes are few per chunk (a short list); a join against the staged rows chose a plan
# that ran for minutes on the region table in the benchmark, so these stay plain look-ups.


async def live_villages(session: AsyncSession, codes: Iterable[str]) -> set[str]:
    wanted = sorted(set(codes))
    if not wanted:
        return set()
    rows = await session.scalars(
        select(Region.code).where(
            Region.code.in_(wanted), Region.level == "village", Region.valid_to.is_(None)
        )
    )
    return set(rows)


async def kampung_kbs_by_code(
    session: AsyncSession, codes: Iterable[str], principal: Principal
) -> dict[str, uuid.UUID]:
    """Ids of the live Kampung KBs with these codes that lie in the caller's region (others are not found)."""
    wanted = sorted(set(codes))
    if not wanted:
        return {}
    rows = await session.execute(
        select(KampungKb.code, KampungKb.id).where(
            KampungKb.code.in_(wanted),
            KampungKb.deleted_at.is_(None),
            in_scope(KampungKb.village_code, principal),
        )
    )
    return {code: kkb_id for code, kkb_id in rows}


async def staged_families(session: AsyncSession, stage_id: uuid.UUID) -> dict[bytes, Family]:
    """Live families holding a staged KK number (by blind index): what a re-import finds."""
    rows = await session.scalars(
        select(Family).where(
            Family.kk_index.in_(_staged(ImportStageRow.kk_index, stage_id)), Family.deleted_at.is_(None)
        )
    )
    return {f.kk_index: f for f in rows if f.kk_index is not None}


async def staged_nik_holders(
    session: AsyncSession, stage_id: uuid.UUID
) -> dict[bytes, tuple[Person, Family]]:
    """Live persons holding a staged NIK (by blind index), with their family: duplicates or re-imports."""
    rows = await session.execute(
        select(Person, Family)
        .join(Family, Family.id == Person.family_id)
        .where(Person.nik_index.in_(_staged(ImportStageRow.nik_index, stage_id)), Person.deleted_at.is_(None))
    )
    return {p.nik_index: (p, f) for p, f in rows if p.nik_index is not None}


async def members_of(session: AsyncSession, family_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, list[Person]]:
    wanted = list(set(family_ids))
    out: dict[uuid.UUID, list[Person]] = {fid: [] for fid in wanted}
    if not wanted:
        return out
    rows = await session.scalars(
        select(Person).where(
            Person.family_id.in_(wanted), Person.deleted_at.is_(None), Person.moved_out_on.is_(None)
        )
    )
    for p in rows:
        if p.family_id is not None:
            out[p.family_id].append(p)
    return out


async def current_kb_statuses(
    session: AsyncSession, person_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, KbStatus]:
    if not person_ids:
        return {}
    rows = await session.scalars(
        select(KbStatus).where(KbStatus.person_id.in_(set(person_ids)), KbStatus.current.is_(True))
    )
    return {r.person_id: r for r in rows}


async def ongoing_pregnancies(
    session: AsyncSession, person_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Pregnancy]:
    if not person_ids:
        return {}
    rows = await session.scalars(
        select(Pregnancy).where(
            Pregnancy.person_id.in_(set(person_ids)),
            Pregnancy.status == "ongoing",
            Pregnancy.deleted_at.is_(None),
        )
    )
    return {r.person_id: r for r in rows}


async def active_measurements(
    session: AsyncSession, keys: Iterable[tuple[uuid.UUID, date]]
) -> dict[tuple[uuid.UUID, date], Measurement]:
    wanted = list(set(keys))
    if not wanted:
        return {}
    rows = await session.scalars(
        select(Measurement).where(
            tuple_(Measurement.person_id, Measurement.measured_on).in_(wanted), Measurement.status == "active"
        )
    )
    return {(m.person_id, m.measured_on): m for m in rows}


async def insert_rows(
    session: AsyncSession, table: Any, rows: list[dict[str, Any]], size: int = 5000
) -> None:
    """executemany in slices: one statement shape, rows streamed by the driver without per-row round trips."""
    for start in range(0, len(rows), size):
        await session.execute(insert(table), rows[start : start + size])


async def copy_records(
    session: AsyncSession, table: str, columns: Sequence[str], records: Sequence[Sequence[Any]]
) -> None:
    """COPY records into a table inside the session's transaction: the bulk path, no statement per row.

    A uniqueness or other integrity violation surfaces as SQLAlchemy's IntegrityError, like an INSERT's, so the
    callers' fallbacks (one savepoint per family) stay the same.
    """
    if not records:
        return
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    if driver is None or not driver.is_in_transaction():
        # COPY on a connection whose transaction SQLAlchemy has not begun yet would commit on its own.
        raise RuntimeError("COPY needs the session's transaction to be open")
    try:
        await driver.copy_records_to_table(table, columns=list(columns), records=records)
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise IntegrityError(f"COPY {table}", None, exc) from exc


# ------------------------------------------------------------------------------------------------ jobs


async def claim_job(session: AsyncSession, lease: timedelta, token: uuid.UUID) -> ImportJob | None:
    """Claim the oldest queued job, or a running one whose worker stopped heart-beating (a crash).

    SKIP LOCKED lets several workers (one per API process) poll the same table without waiting on each other
    and without two of them claiming the same job: a row being claimed by one is invisible to the others.
    The claim itself is short (a token and a heartbeat are written and committed); the job table stays the
    source of truth, and a worker that dies leaves a `running` job with a stale heartbeat that the next poll
    resumes, skipping the chunks already committed.
    """
    stale = utcnow() - lease
    job = await session.scalar(
        select(ImportJob)
        .where(
            or_(
                ImportJob.status == "queued",
                (ImportJob.status == "running") & (ImportJob.heartbeat_at < stale),
            )
        )
        .order_by(ImportJob.created_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if job is None:
        return None
    now = utcnow()
    job.status, job.claim_token, job.heartbeat_at = "running", token, now
    job.started_at = job.started_at or now
    job.attempts += 1
    await session.flush()
    return job


async def lock_job(session: AsyncSession, job_id: uuid.UUID) -> ImportJob | None:
    return await session.scalar(select(ImportJob).where(ImportJob.id == job_id).with_for_update())


async def payload_of(session: AsyncSession, job_id: uuid.UUID) -> bytes:
    data = await session.scalar(select(ImportFile.payload).where(ImportFile.job_id == job_id))
    return data or b""


async def done_chunks(session: AsyncSession, job_id: uuid.UUID) -> list[ImportChunk]:
    rows = await session.scalars(
        select(ImportChunk).where(ImportChunk.job_id == job_id).order_by(ImportChunk.chunk_no)
    )
    return list(rows)


async def progress(session: AsyncSession, job_id: uuid.UUID) -> tuple[int, int]:
    """(rows processed, chunks done) of a job."""
    row = (
        await session.execute(
            select(func.coalesce(func.sum(ImportChunk.rows), 0), func.count()).where(
                ImportChunk.job_id == job_id
            )
        )
    ).one()
    return int(row[0]), int(row[1])


async def heartbeat(session: AsyncSession, job_id: uuid.UUID) -> None:
    await session.execute(update(ImportJob).where(ImportJob.id == job_id).values(heartbeat_at=utcnow()))


async def issues_page(
    session: AsyncSession, job_id: uuid.UUID, params: PageParams, level: str | None
) -> tuple[list[ImportIssue], str | None]:
    stmt = select(ImportIssue).where(ImportIssue.job_id == job_id)
    if level is not None:
        stmt = stmt.where(ImportIssue.level == level)
    return await keyset_page(session, stmt, params, ImportIssue.row_no, ImportIssue.id)


async def add_job(session: AsyncSession, job: ImportJob, payload: bytes) -> None:
    session.add(job)
    await session.flush()
    await session.execute(insert(ImportFile).values(job_id=job.id, payload=payload))


async def get_job(session: AsyncSession, job_id: uuid.UUID) -> ImportJob | None:
    return await session.scalar(select(ImportJob).where(ImportJob.id == job_id))


async def job_by_id(session: AsyncSession, job_id: uuid.UUID) -> ImportJob:
    return await session.get_one(ImportJob, job_id)


async def add_chunk(
    session: AsyncSession, job_id: uuid.UUID, chunk_no: int, rows: int, summary: dict[str, Any]
) -> None:
    await session.execute(
        insert(ImportChunk).values(job_id=job_id, chunk_no=chunk_no, rows=rows, summary=summary)
    )


async def chunk_exists(session: AsyncSession, job_id: uuid.UUID, chunk_no: int) -> bool:
    found = await session.scalar(
        select(ImportChunk.chunk_no).where(ImportChunk.job_id == job_id, ImportChunk.chunk_no == chunk_no)
    )
    return found is not None


async def person_by_id(session: AsyncSession, person_id: uuid.UUID) -> Person:
    return await session.get_one(Person, person_id)
