"""Import jobs: accept an upload, run it chunk by chunk (resumable), and the worker loop that runs them.

Why a table-driven worker inside the API process rather than a queue: the job row is the only state, so there
is nothing to lose between two systems; any API replica can run any job; a job whose worker crashed is found
again by its stale heartbeat and resumed after its last committed chunk (each chunk commits its data, its
events, its issues and its chunk marker in one transaction, so no chunk is applied twice or lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import uuid
from collections.abc import Iterator
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from registry.imports import domain
from registry.imports import repository as repo
from registry.imports.models import ImportJob
from registry.imports.pipeline import run_chunks
from registry.imports.service import process_chunk, record_chunk
from registry.pii import PiiVault
from shared.auth import Principal
from shared.db import new_id, utcnow
from shared.errors import ValidationFailed
from shared.logging import get_logger

log = get_logger(__name__)
MAX_ATTEMPTS = 3


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Cyclic GC off around a synchronous block (no await inside: no other task runs meanwhile).

    Parsing a file allocates hundreds of thousands of objects that all survive; every 25% of heap growth
    CPython runs a full collection over all of them, for garbage that is not there.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextlib.contextmanager
def _parsed_file_frozen() -> Iterator[None]:
    """The parsed file's objects left out of the cyclic GC's full collections while the job runs.

    Profiled on the 100,000-person bench file: a third of the import's CPU went to full (generation 2)
    collections, each walking every parsed row of the file (they live until the job ends) to find nothing.
    `gc.freeze` moves the objects alive now into the permanent generation; chunk garbage is still collected
    (mostly by reference counting), and `unfreeze` hands everything back to the collector afterwards.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


async def submit(
    session: AsyncSession,
    vault: PiiVault,
    principal: Principal,
    payload: bytes,
    *,
    fmt: domain.Format,
    mode: domain.Mode,
    on_mismatch: domain.OnMismatch,
    sync_max_rows: int,
    chunk_rows: int,
) -> ImportJob:
    """Store the upload as a job; a small file is processed right away in the same transaction."""
    try:
        total = domain.count_rows(payload, fmt)
    except domain.FileRejected as exc:
        raise ValidationFailed(exc.message, field=exc.field, rule=exc.rule) from exc
    async with session.begin():
        job = ImportJob(
            id=new_id(),
            format=fmt,
            mode=mode,
            on_mismatch=on_mismatch,
            status="queued",
            created_by=principal.sub,
            region=principal.region,
            size_bytes=len(payload),
            total_rows=total,
            chunks_total=0,
            attempts=0,
        )
        await repo.add_job(session, job, payload)
        if total <= sync_max_rows:
            chunks = domain.chunk(domain.group_families(list(domain.parse(payload, fmt))), chunk_rows)
            job.chunks_total = len(chunks)
            seen: dict[bytes, int] = {}
            summary = domain.empty_summary()
            for no, groups in enumerate(chunks):
                result = await process_chunk(
                    session,
                    vault,
                    principal,
                    groups,
                    mode=mode,
                    on_mismatch=on_mismatch,
                    seen_niks=seen,
                    correlation_id=str(job.id),
                )
                await record_chunk(session, job.id, no, sum(len(g.rows) for g in groups), result)
                summary = domain.add_summaries(summary, result.summary)
            now = utcnow()
            job.status, job.summary, job.started_at, job.finished_at = "done", summary, now, now
        await session.flush()
        await session.refresh(job)
        return job


async def run_job(
    sessionmaker: async_sessionmaker[AsyncSession],
    vault: PiiVault,
    job_id: uuid.UUID,
    token: uuid.UUID,
    *,
    chunk_rows: int,
) -> None:
    """Run a claimed job from its first chunk not yet done to the end, then write the summary."""
    async with sessionmaker() as session, session.begin():
        job = await repo.job_by_id(session, job_id)
        payload = await repo.payload_of(session, job_id)
        done = {c.chunk_no for c in await repo.done_chunks(session, job_id)}
    with _no_cycle_collection():
        chunks = domain.chunk(domain.group_families(list(domain.parse(payload, job.format))), chunk_rows)  # type: ignore[arg-type]
    with _parsed_file_frozen():
        if not await run_chunks(sessionmaker, vault, job, token, chunks, done):
            return
    async with sessionmaker() as session, session.begin():
        locked = await repo.lock_job(session, job_id)
        if locked is None or locked.claim_token != token:
            return
        summary = domain.empty_summary()
        for c in await repo.done_chunks(session, job_id):
            summary = domain.add_summaries(summary, c.summary)
        locked.status, locked.summary, locked.finished_at = "done", summary, utcnow()
        locked.chunks_total = len(chunks)


class ImportWorker:
    """Polls the job table for work (woken early by new uploads); at most one job at a time per process."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        vault: PiiVault,
        *,
        poll_interval: float = 1.0,
        lease: timedelta = timedelta(seconds=60),
        chunk_rows: int = 5000,
    ) -> None:
        self.sessionmaker, self.vault = sessionmaker, vault
        self.poll_interval, self.lease, self.chunk_rows = poll_interval, lease, chunk_rows
        self.wake = asyncio.Event()
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()
        self.wake.set()

    async def run_once(self) -> bool:
        """Claim and run one job; False when there was none."""
        token = uuid.uuid4()
        async with self.sessionmaker() as session, session.begin():
            job = await repo.claim_job(session, self.lease, token)
            job_id = job.id if job is not None else None
        if job_id is None:
            return False
        try:
            await run_job(self.sessionmaker, self.vault, job_id, token, chunk_rows=self.chunk_rows)
        except Exception as exc:
            log.exception("import job failed", job_id=str(job_id))
            await self._failed(job_id, token, exc)
        return True

    async def _failed(self, job_id: uuid.UUID, token: uuid.UUID, exc: Exception) -> None:
        async with self.sessionmaker() as session, session.begin():
            job = await repo.lock_job(session, job_id)
            if job is None or job.claim_token != token:
                return
            # Transient faults get retried from the last committed chunk; a job that keeps failing stops.
            if job.attempts >= MAX_ATTEMPTS:
                job.status, job.error, job.finished_at = "failed", type(exc).__name__, utcnow()
            else:
                job.status = "queued"

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                worked = await self.run_once()
            except Exception:
                log.exception("import worker poll failed")
                worked = False
            if worked:
                continue
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self.poll_interval)
