"""`/v1/regions`: the Kemendagri reference (public reference data, still behind `registry:read`)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import ConfigDict

from registry.common import READ
from registry.regions import service
from registry.regions.models import Region
from shared.auth import Principal, require_scopes
from shared.regions import CODE_SCHEMA
from shared.regions.scope import parse_region
from shared.web.deps import SessionDep
from shared.web.problems import PROBLEM_RESPONSES
from shared.web.schemas import ApiDate, ApiOutput

router = APIRouter(prefix="/v1/regions", tags=["regions"], responses=PROBLEM_RESPONSES)


class RegionRead(ApiOutput):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "code": "15.71.01.1001",
                    "name": "Example village",
                    "level": "village",
                    "parent_code": "15.71.01",
                    "postal_code": "36111",
                    "valid_from": "2025-04-25",
                    "valid_to": None,
                }
            ]
        },
    )

    code: str
    name: str
    level: str
    parent_code: str | None
    postal_code: str | None
    valid_from: date
    valid_to: date | None


OnDate = Annotated[ApiDate | None, Query(description="Codes in force on this date (default: today)")]


def _code(code: str) -> str:
    dotted = parse_region(code, "path.code")
    return dotted


@router.get("", summary="Provinces", response_model=list[RegionRead])
async def list_provinces(
    session: SessionDep, on: OnDate = None, _: Principal = require_scopes(READ)
) -> list[Region]:
    return await service.list_provinces(session, on)


@router.get("/{code}", summary="One region", response_model=RegionRead)
async def get_region(
    code: Annotated[str, Path(json_schema_extra=CODE_SCHEMA)],
    session: SessionDep,
    on: OnDate = None,
    _: Principal = require_scopes(READ),
) -> Region:
    return await service.get_region(session, _code(code), on)


@router.get("/{code}/children", summary="Direct children of a region", response_model=list[RegionRead])
async def list_children(
    code: Annotated[str, Path(json_schema_extra=CODE_SCHEMA)],
    session: SessionDep,
    on: OnDate = None,
    _: Principal = require_scopes(READ),
) -> list[Region]:
    return await service.list_children(session, _code(code), on)
