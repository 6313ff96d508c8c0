"""API models of bulk imports."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Literal, Self

from pydantic import ConfigDict, Field

from shared.web.schemas import ApiOutput

if TYPE_CHECKING:
    from registry.imports.models import ImportIssue
    from registry.imports.service import ImportProgress

JobStatus = Literal["queued", "running", "done", "failed"]


class Counts(ApiOutput):
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0


class IssueCounts(ApiOutput):
    errors: int = 0
    flagged: int = 0


class ImportSummary(ApiOutput):
    rows: Counts
    families: Counts
    persons: Counts
    measurements: Counts
    # Absent from the summaries of imports made before these columns existed.
    kb_statuses: Counts = Field(default_factory=Counts)
    pregnancies: Counts = Field(default_factory=Counts)
    issues: IssueCounts


class ImportRead(ApiOutput):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "4c1f7a52-0000-4000-8000-000000000001",
                    "status": "running",
                    "mode": "commit",
                    "format": "csv",
                    "on_mismatch": "reject",
                    "size_bytes": 10485760,
                    "total_rows": 100000,
                    "processed_rows": 40000,
                    "chunks_total": 20,
                    "chunks_done": 8,
                    "progress": 0.4,
                    "summary": None,
                    "error": None,
                    "created_at": "2026-11-29T05:00:00Z",
                    "started_at": "2026-11-29T05:00:01Z",
                    "finished_at": None,
                    "errors_url": "/v1/imports/4c1f7a52-0000-4000-8000-000000000001/errors",
                }
            ]
        }
    )

    id: uuid.UUID
    status: JobStatus = Field(description="queued, running, done or failed")
    mode: str = Field(description="validate (dry run: nothing written but the report) or commit")
    format: str
    on_mismatch: str = Field(description="reject (422 per row) or flag (imported, flagged for review)")
    size_bytes: int
    total_rows: int
    processed_rows: int
    chunks_total: int
    chunks_done: int
    progress: float = Field(description="processed_rows / total_rows (1.0 when done)")
    summary: ImportSummary | None = Field(description="Counts so far while running, final when done")
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    errors_url: str

    @classmethod
    def from_domain(cls, p: ImportProgress) -> Self:
        job = p.job
        if job.status == "done":
            progress = 1.0
        else:
            progress = round(p.processed_rows / job.total_rows, 4) if job.total_rows else 0.0
        return cls.from_row(
            job,
            processed_rows=p.processed_rows,
            chunks_done=p.chunks_done,
            progress=progress,
            summary=p.summary,
            errors_url=f"/v1/imports/{job.id}/errors",
        )


class ImportIssueRead(ApiOutput):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "row": 12,
                    "field": "nik",
                    "rule": "nik.serial_zero",
                    "message": "NIK serial (last 4 digits) must not be 0000",
                    "level": "error",
                    "person_id": None,
                }
            ]
        },
    )

    row: int = Field(description="Data record number, from 1 (the CSV header is not counted)")
    field: str | None = Field(description="Column name; null for a row that could not be read at all")
    rule: str
    message: str
    level: str = Field(description="error (row rejected) or flagged (imported, marked for review)")
    person_id: uuid.UUID | None = None

    @classmethod
    def from_domain(cls, issue: ImportIssue) -> Self:
        return cls.from_row(issue, row=issue.row_no)
