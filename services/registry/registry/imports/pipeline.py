"""A job's chunks two at a time: chunk N+1 is planned and built in Python while chunk N's writes run in PostgreSQL.

Profiled on the 100,000-person bench, a chunk spent about as long in Python (parse checks, blind indexes, sealing,
rows and events) as in PostgreSQL (COPY into tables with their indexes and foreign keys), one after the other. Here
each chunk has its own session and transaction: it plans (look-ups included) and builds its rows as soon as the
chunk before it is planned, then waits for that chunk to commit before it takes the job's lock and writes. The rules
of the serial run hold:

- Duplicates across chunks: a chunk's look-ups cannot see the rows of the chunk still writing, and need not. Every
  KK number of the file is one family group (`domain.group_families`), so a later chunk never looks for a family an
  earlier chunk creates; every NIK of an earlier row is in `seen_niks`, filled in file order because a chunk starts
  planning only once the one before it is planned. A NIK registered meanwhile through the API is what the unique
  index catches, as before (the chunk is then redone family by family).
- Resumability: a chunk's rows, events, issues and marker commit in one transaction, in chunk order (a chunk writes
  only after the one before it committed), so a crash leaves a prefix of chunks done and the job resumes after it.
- Fencing: the job row is locked and the claim checked right before the writes, as before; a lost claim writes
  nothing, and the chunk being planned is dropped with its transaction.
- Ordering of events: chunks commit one after the other, so the outbox's order is the file's, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from registry.imports import domain
from registry.imports import repository as repo
from registry.imports.models import ImportJob
from registry.imports.service import (
    ChunkResult,
    chunk_done,
    job_principal,
    nik_indexes,
    prepare_chunk,
    process_chunk,
    record_chunk,
    write_chunk,
)
from registry.pii import PiiVault
from shared.db import utcnow
from shared.logging import get_logger

log = get_logger(__name__)


class _Collided(Exception):
    """The bulk write of chunk `no` hit a uniqueness violation (a number registered meanwhile)."""

    def __init__(self, no: int) -> None:
        super().__init__(no)
        self.no = no


async def run_chunk(
    sessionmaker: async_sessionmaker[AsyncSession],
    vault: PiiVault,
    job: ImportJob,
    token: uuid.UUID,
    no: int,
    groups: list[domain.FamilyGroup],
    seen: dict[bytes, int],
    chunks_total: int,
    *,
    isolate: bool,
) -> bool:
    """One chunk alone in one transaction; False when this worker no longer holds the job (fenced off)."""
    async with sessionmaker() as session, session.begin():
        locked = await _claimed(session, job.id, token)
        if locked is None:
            return False
        if await chunk_done(session, job.id, no):
            return True
        result = await process_chunk(
            session,
            vault,
            job_principal(job),
            groups,
            mode=job.mode,
            on_mismatch=job.on_mismatch,
            seen_niks=seen,
            correlation_id=str(job.id),
            isolate=isolate,
        )
        await _record(session, locked, no, groups, result, chunks_total)
    return True


async def _claimed(session: AsyncSession, job_id: uuid.UUID, token: uuid.UUID) -> ImportJob | None:
    """The job row, locked, if this worker still holds the job."""
    locked = await repo.lock_job(session, job_id)
    if locked is None or locked.claim_token != token or locked.status != "running":
        return None
    return locked


async def _record(
    session: AsyncSession,
    locked: ImportJob,
    no: int,
    groups: list[domain.FamilyGroup],
    result: ChunkResult,
    chunks_total: int,
) -> None:
    await record_chunk(session, locked.id, no, sum(len(g.rows) for g in groups), result)
    locked.heartbeat_at, locked.chunks_total = utcnow(), chunks_total


async def _succeeded(task: asyncio.Task[bool] | None) -> bool:
    """Whether the chunk before committed (its failure is reported by the pipeline, not by the next chunk)."""
    if task is None:
        return True
    try:
        return await asyncio.shield(task)
    except Exception:
        return False


async def _overlapped_chunk(
    sessionmaker: async_sessionmaker[AsyncSession],
    vault: PiiVault,
    job: ImportJob,
    token: uuid.UUID,
    no: int,
    groups: list[domain.FamilyGroup],
    seen: dict[bytes, int],
    chunks_total: int,
    previous: asyncio.Task[bool] | None,
    planned: asyncio.Event,
) -> bool:
    """Plan and build chunk `no` at once; write it once the chunk before it committed."""
    try:
        async with sessionmaker() as session, session.begin():
            # A first statement also opens the driver's transaction, which the planner's COPY needs.
            if await chunk_done(session, job.id, no):
                for index, row_no in nik_indexes(vault, groups).items():
                    seen.setdefault(index, row_no)
                return True
            try:
                prepared = await prepare_chunk(
                    session,
                    vault,
                    job_principal(job),
                    groups,
                    mode=job.mode,
                    on_mismatch=job.on_mismatch,
                    seen_niks=seen,
                    correlation_id=str(job.id),
                )
            finally:
                planned.set()
            # Until here the transaction wrote only staging rows it removed again: leaving now commits nothing.
            if not await _succeeded(previous):
                return False
            locked = await _claimed(session, job.id, token)
            if locked is None:
                return False
            if await chunk_done(session, job.id, no):
                return True
            try:
                result = await write_chunk(
                    session, vault, job_principal(job), prepared, mode=job.mode, correlation_id=str(job.id)
                )
            except IntegrityError as exc:
                raise _Collided(no) from exc
            await _record(session, locked, no, groups, result, chunks_total)
        return True
    finally:
        planned.set()


async def _pipeline(
    sessionmaker: async_sessionmaker[AsyncSession],
    vault: PiiVault,
    job: ImportJob,
    token: uuid.UUID,
    chunks: list[list[domain.FamilyGroup]],
    done: set[int],
    seen: dict[bytes, int],
    start: int,
) -> bool:
    """Chunks from `start` on, at most two in flight (one writing, the next planning)."""
    previous: asyncio.Task[bool] | None = None
    current: asyncio.Task[bool] | None = None
    try:
        for no in range(start, len(chunks)):
            if no in done:
                # Its NIKs still count as earlier rows of the file (first row of each kept).
                for index, row_no in nik_indexes(vault, chunks[no]).items():
                    seen.setdefault(index, row_no)
                continue
            planned = asyncio.Event()
            current = asyncio.create_task(
                _overlapped_chunk(
                    sessionmaker, vault, job, token, no, chunks[no], seen, len(chunks), previous, planned
                )
            )
            await planned.wait()
            # The chunk before must have committed before the next one starts planning: two chunks in flight.
            if previous is not None and not await previous:
                return False
            previous, current = current, None
        return await previous if previous is not None else True
    finally:
        for task in (previous, current):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task


async def run_chunks(
    sessionmaker: async_sessionmaker[AsyncSession],
    vault: PiiVault,
    job: ImportJob,
    token: uuid.UUID,
    chunks: list[list[domain.FamilyGroup]],
    done: set[int],
) -> bool:
    """Every chunk not yet done, in order and overlapped; False when the claim was lost on the way."""
    seen: dict[bytes, int] = {}
    start = 0
    while True:
        try:
            ok = await _pipeline(sessionmaker, vault, job, token, chunks, done, seen, start)
        except _Collided as exc:
            # Someone registered one of these NIK/KK numbers meanwhile: redo that chunk family by family, then go
            # on overlapped. `seen` may already hold the next chunk's NIKs: planning a chunk again with them gives
            # the same answer (each NIK maps to its first row in file order, never to a later one).
            ok = await run_chunk(
                sessionmaker, vault, job, token, exc.no, chunks[exc.no], seen, len(chunks), isolate=True
            )
            start = exc.no + 1
            if ok:
                continue
        if not ok:
            log.warning("import job claim lost", job_id=str(job.id))
        return ok
