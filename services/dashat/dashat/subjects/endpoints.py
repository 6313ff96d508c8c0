"""`GET /v1/subjects/{person_id}/export`: what dashat holds about one person (UU 27/2022 PDP)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends

from dashat.subjects import service
from shared.subject import SubjectExport, SubjectExporter, export_purpose
from shared.web.deps import SessionDep
from shared.web.problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/v1/subjects", tags=["subjects"], responses=PROBLEM_RESPONSES)


@router.get("/{person_id}/export", response_model=SubjectExport, summary="Data-subject export (audited)")
async def export_subject(
    person_id: uuid.UUID,
    session: SessionDep,
    principal: SubjectExporter,
    purpose: Annotated[str, Depends(export_purpose)],
) -> SubjectExport:
    return await service.export(session, principal, person_id, purpose)
