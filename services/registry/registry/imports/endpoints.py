"""`/v1/imports`: bulk import of families and members (CSV or NDJSON), as a job with a status URL."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response

from registry.common import IMPORT
from registry.deps import VaultDep
from registry.imports import domain, jobs, service
from registry.imports.schemas import ImportIssueRead, ImportRead
from shared.auth import Principal, require_scopes
from shared.errors import ValidationFailed
from shared.web.deps import PageDep, SessionDep
from shared.web.pagination import Page
from shared.web.problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES, tags=["imports"])
Importer = Annotated[Principal, require_scopes(IMPORT)]

CSV_EXAMPLE = (
    "kk_number,village_code,rw,rt,latrine_type,nik,name,sex,birth_date,relation,marital_status,"
    "measured_on,weight_kg,lenhei_cm,position\n"
    "1571011203150001,15.71.01.1001,003,001,tidak_ada,1571010101900001,Budi,L,1990-01-01,kepala_keluarga,kawin,,,,\n"
    "1571011203150001,15.71.01.1001,003,001,tidak_ada,1571014505950002,Siti,P,1995-05-05,istri,kawin,,,,\n"
    "1571011203150001,15.71.01.1001,003,001,tidak_ada,,Ani,P,2025-06-01,anak,belum_kawin,2026-11-20,7.9,68.5,l\n"
)
FORMATS = {"text/csv": "csv", "application/x-ndjson": "ndjson", "application/ndjson": "ndjson"}


@router.post(
    "/imports",
    response_model=ImportRead,
    status_code=202,
    summary="Import families and members (CSV or NDJSON; validate or commit)",
    description=(
        "The body is the file itself (`Content-Type: text/csv` or `application/x-ndjson`), one row per person "
        "with the family's columns repeated; rows with the same `kk_number` form one family. Columns: "
        + ", ".join(domain.COLUMNS)
        + f" (required: {', '.join(domain.REQUIRED_COLUMNS)}). KK number and NIK are the natural keys: "
        "importing the same file again changes nothing. A family with any bad row is rejected whole; rows "
        "outside the caller's region are rejected. Optional columns carry a child's measurement, a person's KB "
        "status (`kb_method` empty = not using KB, `kb_since`, `kb_reason_non_use`, `kb_service_source`) and a "
        "woman's current pregnancy (`pregnancy_lmp`, HPHT), with the rules and events of the measurement, "
        "KB-status and pregnancy APIs. Small files are processed at once (200 validate / "
        "201 commit, with the final summary); larger ones answer 202 with `Location: /v1/imports/{id}`."
    ),
    responses={
        200: {"description": "Validated at once (small file)", "model": ImportRead},
        201: {"description": "Imported at once (small file)", "model": ImportRead},
        202: {"description": "Accepted as a job; poll Location"},
    },
    openapi_extra={
        # The file is the body, as bytes. Clients whose generator knows only JSON, forms and
        # application/octet-stream (openapi-python-client among them) can send it as octet-stream with
        # `?format=`; the same generator keeps the CSV/NDJSON bodies with its `content_type_overrides`
        # (docs/openapi-client.yaml).
        "requestBody": {
            "required": True,
            "description": "The file: CSV (UTF-8, header row) or NDJSON (one JSON object per line). Sent as "
            "application/octet-stream, `?format=csv` or `?format=ndjson` says which.",
            "content": {
                "text/csv": {"schema": {"type": "string", "format": "binary"}, "example": CSV_EXAMPLE},
                "application/x-ndjson": {"schema": {"type": "string", "format": "binary"}},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
async def create_import(
    request: Request,
    session: SessionDep,
    vault: VaultDep,
    response: Response,
    principal: Importer,
    mode: Annotated[domain.Mode, Query(description="validate = dry run, commit = write")] = "validate",
    on_mismatch: Annotated[
        domain.OnMismatch,
        Query(
            description="NIK vs birth date/sex disagreement: reject the row (422 rule) or import it flagged"
        ),
    ] = "reject",
    format: Annotated[
        domain.Format | None, Query(description="csv or ndjson; default from Content-Type")
    ] = None,
    content_type: Annotated[str | None, Header()] = None,
) -> ImportRead:
    fmt = format or FORMATS.get((content_type or "").split(";")[0].strip().lower())
    if fmt is None:
        raise ValidationFailed(
            "send text/csv or application/x-ndjson (or ?format=)",
            field="header.Content-Type",
            rule="import.format_unknown",
        )
    payload = await request.body()
    settings = request.app.state.settings
    job = await jobs.submit(
        session,
        vault,
        principal,
        payload,
        fmt=fmt,  # type: ignore[arg-type]
        mode=mode,
        on_mismatch=on_mismatch,
        sync_max_rows=settings.import_sync_max_rows,
        chunk_rows=settings.import_chunk_rows,
    )
    response.headers["Location"] = f"/v1/imports/{job.id}"
    if job.status == "done":
        response.status_code = 201 if mode == "commit" else 200
    else:
        worker = getattr(request.app.state, "import_worker", None)
        if worker is not None:
            worker.wake.set()
    return ImportRead.from_domain(await service.import_progress(session, job))


@router.get("/imports/{import_id}", response_model=ImportRead, summary="Status, progress and summary")
async def get_import(import_id: uuid.UUID, session: SessionDep, principal: Importer) -> ImportRead:
    return ImportRead.from_domain(await service.get_import(session, principal, import_id))


@router.get(
    "/imports/{import_id}/errors",
    response_model=Page[ImportIssueRead],
    summary="Rejected rows (row, field, rule) and flagged conflicts, in row order",
)
async def list_import_errors(
    import_id: uuid.UUID,
    session: SessionDep,
    page: PageDep,
    principal: Importer,
    level: Annotated[str | None, Query(pattern="^(error|flagged)$")] = None,
) -> Page[ImportIssueRead]:
    rows, cursor = await service.import_issues(session, principal, import_id, page, level)
    return Page(items=[ImportIssueRead.from_domain(r) for r in rows], next_cursor=cursor)
