"""`POST /v1/anthropometry:score`: stateless batch scoring (nothing is stored)."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from fastapi import APIRouter
from pydantic import ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from registry import rules
from registry.anthropometry.domain import MAX_AGE_DAYS, RULE_VERSION, age_in_days, score
from registry.deps import Reader
from shared.errors import ValidationFailed
from shared.web.idempotency import READ_ONLY_POST
from shared.web.problems import PROBLEM_RESPONSES
from shared.web.schemas import ApiDate, ApiInput, ApiOutput

router = APIRouter(prefix="/v1", tags=["anthropometry"], responses=PROBLEM_RESPONSES)


class ScoreItem(ApiInput):
    """One child: age in days, or birth and measurement dates."""

    # L/P as the KK writes it, or 1/2 as WHO's anthro software codes it (both documented since the first
    # release). Declared as two enums, one per JSON type: a single enum mixing strings and integers made
    # generated clients drop the whole operation.
    sex: Literal["L", "P"] | Literal[1, 2] = Field(
        description="L or P (KK), or 1 (male) / 2 (female) as WHO anthro"
    )
    age_days: int | None = Field(default=None, ge=0)
    birth_date: ApiDate | None = None
    measured_on: ApiDate | None = None
    weight_kg: float | None = Field(default=None, gt=0, lt=100)
    lenhei_cm: float | None = Field(default=None, gt=0, lt=200)
    position: Literal["l", "h"] | None = None
    oedema: bool = False

    @field_validator("sex", mode="before")
    @classmethod
    def _no_boolean_sex(cls, value: object) -> object:
        # JSON true equals 1 in Python, so Literal[1, 2] alone would read `true` as male.
        if isinstance(value, bool):
            raise PydanticCustomError("sex_type", "sex is L, P, 1 or 2, not true/false")
        return value

    @model_validator(mode="after")
    def _age_given(self) -> ScoreItem:
        if self.age_days is None and (self.birth_date is None or self.measured_on is None):
            raise ValueError("give age_days, or birth_date and measured_on")
        return self


class ScoreRequest(ApiInput):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {"sex": "L", "age_days": 730, "lenhei_cm": 81.7, "position": "l", "weight_kg": 10.2},
                        {
                            "sex": "P",
                            "birth_date": "2025-11-01",
                            "measured_on": "2026-11-20",
                            "lenhei_cm": 74.0,
                            "position": "l",
                            "weight_kg": 8.9,
                        },
                    ]
                }
            ]
        }
    )

    items: list[ScoreItem] = Field(min_length=1, max_length=rules.SCORE_BATCH_MAX)


class ScoreOut(ApiOutput):
    age_days: int | None
    haz: float | None
    waz: float | None
    whz: float | None
    haz_flag: bool
    waz_flag: bool
    whz_flag: bool
    standing_under_9_months: bool
    haz_class: str | None
    waz_class: str | None
    whz_class: str | None


class ScoreResponse(ApiOutput):
    rule_version: str
    items: list[ScoreOut]


def _opt(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


@router.post(
    "/anthropometry:score",
    response_model=ScoreResponse,
    summary="Score a batch (WHO 2006), store nothing",
    # A computation: sent again it gives the same answer, so it takes no Idempotency-Key (nothing is stored).
    dependencies=[READ_ONLY_POST],
)
async def score_batch(body: ScoreRequest, _: Reader) -> dict[str, Any]:
    ages: list[int] = []
    errors = []
    for i, item in enumerate(body.items):
        days = item.age_days if item.age_days is not None else age_in_days(item.birth_date, item.measured_on)  # type: ignore[arg-type]
        if days < 0:
            errors.append(
                {
                    "field": f"body.items.{i}.measured_on",
                    "rule": "measurement.before_birth",
                    "message": "measured before birth",
                }
            )
        elif days > MAX_AGE_DAYS:
            errors.append(
                {
                    "field": f"body.items.{i}.age_days",
                    "rule": "measurement.over_60_months",
                    "message": "60 months or older",
                }
            )
        if item.lenhei_cm is not None and item.position is None:
            errors.append(
                {
                    "field": f"body.items.{i}.position",
                    "rule": "measurement.position_required",
                    "message": "give the position (l/h)",
                }
            )
        ages.append(days)
    if errors:
        raise ValidationFailed(
            f"{len(errors)} item(s) break rules",
            field=errors[0]["field"],
            rule=errors[0]["rule"],
            errors=errors[:100],
        )
    items = body.items
    r = score(
        np.array([1 if it.sex in ("L", 1) else 2 for it in items]),
        np.array(ages, dtype=np.float64),
        np.array([np.nan if it.weight_kg is None else it.weight_kg for it in items], dtype=np.float64),
        np.array([np.nan if it.lenhei_cm is None else it.lenhei_cm for it in items], dtype=np.float64),
        np.array([it.position or "" for it in items]),
        np.array([it.oedema for it in items]),
    )
    out = [
        {
            "age_days": ages[i],
            "haz": _opt(r.zlen[i]),
            "waz": _opt(r.zwei[i]),
            "whz": _opt(r.zwfl[i]),
            "haz_flag": bool(r.flen[i]),
            "waz_flag": bool(r.fwei[i]),
            "whz_flag": bool(r.fwfl[i]),
            "standing_under_9_months": bool(r.c9mo_flag[i]),
            "haz_class": r.haz_class[i],
            "waz_class": r.waz_class[i],
            "whz_class": r.whz_class[i],
        }
        for i in range(len(items))
    ]
    return {"rule_version": RULE_VERSION, "items": out}
