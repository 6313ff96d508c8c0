"""API models of rule versions."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal, Self, cast

from pydantic import Field

from dashat.enrolment.rules import DEFAULT_CONFIG
from dashat.ruleversions.domain import StoredVersion
from shared.ages import BADUTA_MONTHS, BALITA_MONTHS
from shared.web.schemas import ApiDate, ApiInput, ApiOutput

if TYPE_CHECKING:
    from dashat.ruleversions.models import RuleVersion

_D = DEFAULT_CONFIG
AnaemiaLevel = Literal["mild", "moderate", "severe"]
# A planned duration beyond two years is not a feeding programme but a typo.
_MAX_DAYS = 730


class PlannedDays(ApiInput):
    """Days of daily meals per category (omitted: the built-in default)."""

    baduta_stunting: int = Field(default=_D.planned_days["baduta_stunting"], ge=1, le=_MAX_DAYS)
    balita_stunting: int = Field(default=_D.planned_days["balita_stunting"], ge=1, le=_MAX_DAYS)
    ibu_hamil: int = Field(default=_D.planned_days["ibu_hamil"], ge=1, le=_MAX_DAYS)
    ibu_menyusui: int = Field(default=_D.planned_days["ibu_menyusui"], ge=1, le=_MAX_DAYS)
    catin: int = Field(default=_D.planned_days["catin"], ge=1, le=_MAX_DAYS)


class RuleConfigBody(ApiInput):
    """The enrolment rules of one version; a field left out takes the built-in default (the seed version)."""

    planned_days: PlannedDays = Field(default_factory=PlannedDays)
    pregnancy_max_decile: int = Field(
        default=_D.pregnancy_max_decile,
        ge=0,
        le=10,
        description="Pregnancies in families at or below this DTSEN decile are targets (0: decile alone never)",
    )
    pregnancy_anaemia_levels: list[AnaemiaLevel] = Field(
        default_factory=lambda: cast(list[AnaemiaLevel], sorted(_D.pregnancy_anaemia_levels)),
        description="Pregnancy anaemia levels (Hb 10-<11 mild, 7-<10 moderate, <7 severe) that make a target",
    )
    enrol_ibu_menyusui_after_birth: bool = Field(
        default=_D.enrol_ibu_menyusui_after_birth,
        description="A DASHAT pregnancy target continues as ibu menyusui after a birth",
    )
    baduta_age_out_months: int = Field(
        default=_D.baduta_age_out_months,
        ge=1,
        le=BADUTA_MONTHS,
        description="Completed months at which a baduta leaves (a baduta is under 24 months: no later)",
    )
    balita_age_out_months: int = Field(
        default=_D.balita_age_out_months,
        ge=1,
        le=BALITA_MONTHS,
        description="Completed months at which a balita leaves (a balita is under 60 months: no later)",
    )
    continue_as_balita: bool = Field(
        default=_D.continue_as_balita, description="Stunted children past the baduta age stay on as balita"
    )
    recovery_confirmations: int = Field(
        default=_D.recovery_confirmations,
        ge=1,
        le=6,
        description="Consecutive usable non-stunted measurements needed to end feeding as recovered",
    )
    recovery_min_interval_days: int = Field(
        default=_D.recovery_min_interval_days,
        ge=0,
        le=365,
        description="Days the confirming measurements must span (first to last)",
    )
    enrol_registry_ibu_menyusui: bool = Field(
        default=_D.enrol_registry_ibu_menyusui,
        description="Women in the registry with a baby under the age limit are ibu menyusui targets",
    )
    ibu_menyusui_baby_months: int = Field(
        default=_D.ibu_menyusui_baby_months,
        ge=1,
        le=BADUTA_MONTHS,
        description="Completed months of the baby at which its mother's ibu menyusui enrolment ends",
    )


class RuleVersionCreate(ApiInput):
    """A new rule version: national (no region) or for a province, regency, district or village."""

    version: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9._-]{2,63}$",
        description="The id stamped on decisions (default: generated from the region and date)",
    )
    region_prefix: str | None = Field(
        default=None, description="Kemendagri code prefix it applies in (e.g. 33 or 33.01); none: national"
    )
    effective_from: ApiDate = Field(description="First decision date it applies to (today or later)")
    note: str | None = Field(default=None, max_length=500)
    config: RuleConfigBody = Field(default_factory=RuleConfigBody)


class RuleVersionRead(ApiOutput):
    version: str
    region_prefix: str | None
    effective_from: date
    config: dict[str, Any]
    note: str | None = None
    created_by: str | None = None
    created_at: datetime | None = None
    builtin: bool = Field(
        default=False, description="The code default (seed version); not stored, not deletable"
    )

    @classmethod
    def from_domain(cls, v: RuleVersion | StoredVersion) -> Self:
        if isinstance(v, StoredVersion):  # the code default, not a stored row
            return cls(
                version=v.version,
                region_prefix=v.region_prefix,
                effective_from=v.effective_from,
                config=v.config,
                builtin=True,
            )
        return cls(
            version=v.version,
            region_prefix=v.region_prefix,
            effective_from=v.effective_from,
            config=dict(v.config),
            note=v.note,
            created_by=v.created_by,
            created_at=v.created_at,
        )
