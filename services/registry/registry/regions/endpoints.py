"""`/v1/regions`: the Kemendagri reference (public reference data, still behind `registry:read`)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import ConfigDict
from sqlalchemy import and_, or_, select

from registry.common import READ
from registry.regions.models import Region
from shared.auth import Principal, require_scopes
from shared.errors import NotFound, ValidationFailed
from shared.regions import normalize_code
from shared.web.deps import SessionDep
from shared.web.problems import PROBLEM_RESPONSES
from shared.web.schemas import ApiOutput

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


OnDate = Annotated[date | None, Query(description="Codes in force on this date (default: today)")]


def _in_force(on: date | None) -> object:
    d = on or date.today()
    return and_(Region.valid_from <= d, or_(Region.valid_to.is_(None), Region.valid_to > d))


def _code(code: str) -> str:
    try:
        return normalize_code(code)
    except ValueError as exc:
        raise ValidationFailed("not a region code", field="path.code", rule="region.code_format") from exc


@router.get("", summary="Provinces", response_model=list[RegionRead])
async def list_provinces(
    session: SessionDep, on: OnDate = None, _: Principal = require_scopes(READ)
) -> list[Region]:
    async with session.begin():
        rows = await session.scalars(
            select(Region).where(Region.level == "province", _in_force(on)).order_by(Region.code)  # type: ignore[arg-type]
        )
        return list(rows)


@router.get("/{code}", summary="One region", response_model=RegionRead)
async def get_region(
    code: str, session: SessionDep, on: OnDate = None, _: Principal = require_scopes(READ)
) -> Region:
    async with session.begin():
        row = await session.scalar(select(Region).where(Region.code == _code(code), _in_force(on)))  # type: ignore[arg-type]
    if row is None:
        raise NotFound("region not found")
    region: Region = row
    return region


@router.get("/{code}/children", summary="Direct children of a region", response_model=list[RegionRead])
async def list_children(
    code: str, session: SessionDep, on: OnDate = None, _: Principal = require_scopes(READ)
) -> list[Region]:
    normalized = _code(code)
    async with session.begin():
        exists = await session.scalar(select(Region.code).where(Region.code == normalized, _in_force(on)))  # type: ignore[arg-type]
        if exists is None:
            raise NotFound("region not found")
        rows = await session.scalars(
            select(Region).where(Region.parent_code == normalized, _in_force(on)).order_by(Region.code)  # type: ignore[arg-type]
        )
        return list(rows)
