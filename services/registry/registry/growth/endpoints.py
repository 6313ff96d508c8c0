"""`/v1/measurements` and `/v1/stunting-cases`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from registry.common import RegionQuery
from registry.deps import IfMatch, Reader, Writer
from registry.growth import repository as repo
from registry.growth import service
from registry.growth.schemas import (
    CaseStatus,
    MeasurementCorrection,
    MeasurementCreate,
    MeasurementHistory,
    MeasurementRead,
    MeasurementRetraction,
    StuntingCaseRead,
)
from shared.db import read_only
from shared.web.deps import PageDep, SessionDep
from shared.web.etag import set_etag
from shared.web.pagination import Page, UpdatedSince
from shared.web.problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES)


@router.post(
    "/measurements",
    status_code=201,
    response_model=MeasurementRead,
    tags=["measurements"],
    summary="Record a child's measurement (WHO z-scores computed; may open or resolve a stunting case)",
)
async def create_measurement(
    body: MeasurementCreate, session: SessionDep, response: Response, principal: Writer
) -> MeasurementRead:
    m = await service.record_measurement(session, principal, body)
    set_etag(response, m.version)
    response.headers["Location"] = f"/v1/measurements/{m.id}"
    return MeasurementRead.from_domain(m)


@router.get(
    "/measurements",
    response_model=Page[MeasurementRead],
    tags=["measurements"],
    summary="Measurements / change feed (corrected and retracted ones as tombstones)",
)
async def list_measurements(
    session: SessionDep,
    page: PageDep,
    principal: Reader,
    region: RegionQuery = None,
    person_id: uuid.UUID | None = None,
    kampung_kb_id: uuid.UUID | None = None,
    haz_class: Annotated[str | None, Query(examples=["stunted"])] = None,
    updated_since: UpdatedSince = None,
) -> Page[MeasurementRead]:
    rows, cursor = await read_only(
        session,
        repo.measurements_page,
        principal,
        page,
        region=region,
        person_id=person_id,
        kampung_kb_id=kampung_kb_id,
        haz_class=haz_class,
        updated_since=updated_since,
    )
    return Page(items=[MeasurementRead.from_domain(m) for m in rows], next_cursor=cursor)


@router.get("/measurements/{measurement_id}", response_model=MeasurementRead, tags=["measurements"])
async def get_measurement(
    measurement_id: uuid.UUID, session: SessionDep, response: Response, principal: Reader
) -> MeasurementRead:
    m = await service.get_measurement(session, principal, measurement_id)
    set_etag(response, m.version)
    return MeasurementRead.from_domain(m)


@router.get(
    "/measurements/{measurement_id}/history",
    response_model=MeasurementHistory,
    tags=["measurements"],
    summary="A measurement's versions: the first recording and every correction, oldest first",
)
async def measurement_history(
    measurement_id: uuid.UUID, session: SessionDep, principal: Reader
) -> MeasurementHistory:
    versions = await service.measurement_history(session, principal, measurement_id)
    current = next((m.id for m in versions if m.status == "active"), None)
    return MeasurementHistory(
        measurement_id=measurement_id,
        current_measurement_id=current,
        versions=[MeasurementRead.from_domain(m) for m in versions],
    )


@router.post(
    "/measurements/{measurement_id}/corrections",
    status_code=201,
    response_model=MeasurementRead,
    tags=["measurements"],
    summary="Correct a measurement (If-Match of the original; audited)",
)
async def correct_measurement(
    measurement_id: uuid.UUID,
    body: MeasurementCorrection,
    expected: IfMatch,
    session: SessionDep,
    response: Response,
    principal: Writer,
) -> MeasurementRead:
    m = await service.correct_measurement(session, principal, measurement_id, body, expected)
    set_etag(response, m.version)
    response.headers["Location"] = f"/v1/measurements/{m.id}"
    return MeasurementRead.from_domain(m)


@router.post(
    "/measurements/{measurement_id}/retraction",
    response_model=MeasurementRead,
    tags=["measurements"],
    summary="Retract a measurement entered in error (If-Match; undoes the stunting case it caused)",
)
async def retract_measurement(
    measurement_id: uuid.UUID,
    body: MeasurementRetraction,
    expected: IfMatch,
    session: SessionDep,
    response: Response,
    principal: Writer,
) -> MeasurementRead:
    m = await service.retract_measurement(session, principal, measurement_id, body, expected)
    set_etag(response, m.version)
    return MeasurementRead.from_domain(m)


@router.get(
    "/stunting-cases",
    response_model=Page[StuntingCaseRead],
    tags=["stunting"],
    summary="Baduta stunting cases / change feed",
)
async def list_cases(
    session: SessionDep,
    page: PageDep,
    principal: Reader,
    region: RegionQuery = None,
    kampung_kb_id: uuid.UUID | None = None,
    status: CaseStatus | None = None,
    updated_since: UpdatedSince = None,
) -> Page[StuntingCaseRead]:
    rows, cursor = await read_only(
        session,
        repo.cases_page,
        principal,
        page,
        region=region,
        kampung_kb_id=kampung_kb_id,
        status=status,
        updated_since=updated_since,
    )
    return Page(items=[StuntingCaseRead.from_domain(c) for c in rows], next_cursor=cursor)


@router.get("/stunting-cases/{case_id}", response_model=StuntingCaseRead, tags=["stunting"])
async def get_case(case_id: uuid.UUID, session: SessionDep, principal: Reader) -> StuntingCaseRead:
    return StuntingCaseRead.from_domain(await service.get_case(session, principal, case_id))
