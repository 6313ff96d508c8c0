"""Bulk import jobs: the uploaded file, the job (the source of truth of its state), done chunks and issues."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, Integer, LargeBinary, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from registry.models import Base
from shared.db import TimestampedMixin, new_id


class ImportJob(TimestampedMixin, Base):
    """One upload: its options, who sent it (whose region scope applies), status, progress and summary."""

    __tablename__ = "import_job"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    format: Mapped[str] = mapped_column(Text)
    mode: Mapped[str] = mapped_column(Text)
    on_mismatch: Mapped[str] = mapped_column(Text)
    # queued -> running -> done | failed. `running` with an old heartbeat is a job whose worker died.
    status: Mapped[str] = mapped_column(Text, server_default=text("'queued'"))
    created_by: Mapped[str] = mapped_column(Text)
    region: Mapped[str | None] = mapped_column(Text)
    size_bytes: Mapped[int] = mapped_column(Integer)
    total_rows: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    chunks_total: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # Fencing token of the current claim: a worker that lost its claim cannot commit chunks any more.
    claim_token: Mapped[uuid.UUID | None] = mapped_column()
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index(
            "ix_import_job_claimable", "created_at", postgresql_where=text("status IN ('queued', 'running')")
        ),
    )


class ImportFile(Base):
    """The uploaded bytes, apart from the job row so that status reads and claims never load them."""

    __tablename__ = "import_file"

    job_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("import_job.id", ondelete="CASCADE"), primary_key=True
    )
    payload: Mapped[bytes] = mapped_column(LargeBinary)


class ImportChunk(Base):
    """A chunk of whole families that is done: written in the same transaction as the chunk's data."""

    __tablename__ = "import_chunk"

    job_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("import_job.id", ondelete="CASCADE"), primary_key=True
    )
    chunk_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    rows: Mapped[int] = mapped_column(Integer)
    summary: Mapped[dict[str, Any]] = mapped_column(JSONB)
    done_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ImportIssue(Base):
    """A rejected row (level `error`) or an accepted row with a flagged NIK conflict (level `flagged`)."""

    __tablename__ = "import_issue"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("import_job.id", ondelete="CASCADE"))
    row_no: Mapped[int] = mapped_column(Integer)
    field: Mapped[str | None] = mapped_column(Text)
    rule: Mapped[str] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text)
    level: Mapped[str] = mapped_column(Text, server_default=text("'error'"))
    person_id: Mapped[uuid.UUID | None] = mapped_column()

    __table_args__ = (Index("ix_import_issue_job_id_row_no_id", "job_id", "row_no", "id"),)


class ImportStageRow(Base):
    """The natural keys of the chunk being planned, COPYed in so the duplicate and existence checks are joins.

    Rows live only inside the chunk's transaction (removed before it commits); UNLOGGED because they are never
    needed after a crash, so they cost no WAL.
    """

    __tablename__ = "import_stage_row"

    stage_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    row_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    kk_index: Mapped[bytes | None] = mapped_column(LargeBinary)
    nik_index: Mapped[bytes | None] = mapped_column(LargeBinary)
    village_code: Mapped[str | None] = mapped_column(Text)
    kampung_kb_code: Mapped[str | None] = mapped_column(Text)

    __table_args__ = {"prefixes": ["UNLOGGED"]}
