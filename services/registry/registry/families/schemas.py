"""API models of Kampung KB, families, persons and the access log."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from registry.families import domain
from registry.families.domain import Revealed
from shared.clock import business_today
from shared.events.vocab import MaritalStatus, Relation, Sex
from shared.web.schemas import ApiDate, ApiInput, ApiOutput

if TYPE_CHECKING:
    from registry.families.models import Family, KampungKb, Person

WaterSource = Literal[
    "kemasan",
    "isi_ulang",
    "ledeng",
    "sumur_bor",
    "sumur_terlindung",
    "sumur_tidak_terlindung",
    "mata_air_terlindung",
    "mata_air_tidak_terlindung",
    "air_permukaan",
    "air_hujan",
    "lainnya",
]
LatrineType = Literal["jamban_sendiri_septik", "jamban_bersama_septik", "jamban_tanpa_septik", "tidak_ada"]
LegalBasis = Literal["public_service_mandate", "consent"]
VillageCode = Field(pattern=r"^\d{2}\.\d{2}\.\d{2}\.\d{4}$", examples=["15.71.01.1001"])
RwRt = Field(default=None, pattern=r"^\d{1,3}$", examples=["003"])

PERSON_EXAMPLE: dict[str, Any] = {
    "nik": "1571014505200001",
    "name": "Siti Aminah",
    "sex": "P",
    "birth_date": "2000-05-05",
    "relation": "istri",
    "marital_status": "kawin",
    "education": "SMA",
    "occupation": "pedagang",
    "legal_basis": "public_service_mandate",
}


RW_LIST_DEPRECATED = (
    "Deprecated (kept for one version): the old name of `rws`, the name every API uses for RW lists."
)


class RwsInput(ApiInput):
    """A body with an RW list: reads the deprecated `rw_list` as `rws` (one name for RW lists in every API)."""

    @model_validator(mode="after")
    def _old_rw_name(self) -> Self:
        # After validation, so a bad value is named where it was written (body.rw_list), like any field.
        if "rw_list" in self.model_fields_set:
            if "rws" in self.model_fields_set:
                raise PydanticCustomError("rws_twice", "give rws only (rw_list is its deprecated old name)")
            self.rws = self.__dict__["rw_list"]  # read without the deprecation warning the attribute gives
        return self


class KampungKbCreate(RwsInput):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "code": "KKB-1571-001",
                    "name": "Kampung KB Mekar Sari",
                    "village_code": "15.71.01.1001",
                    "rws": ["001", "003"],
                    "designated_on": "2023-02-01",
                }
            ]
        }
    )

    code: str = Field(min_length=1, max_length=40)
    name: str = Field(min_length=1, max_length=200)
    village_code: str = VillageCode
    rws: list[str] = Field(default_factory=list, description="RWs designated; empty = the whole village")
    rw_list: list[str] | None = Field(default=None, deprecated=True, description=RW_LIST_DEPRECATED)
    designated_on: ApiDate | None = None
    active: bool = True


class KampungKbUpdate(RwsInput):
    model_config = ConfigDict(json_schema_extra={"examples": [{"active": False}]})

    name: str | None = Field(default=None, min_length=1, max_length=200)
    rws: list[str] | None = None
    rw_list: list[str] | None = Field(default=None, deprecated=True, description=RW_LIST_DEPRECATED)
    designated_on: ApiDate | None = None
    active: bool | None = None


class KampungKbRead(ApiOutput):
    id: uuid.UUID
    code: str
    name: str
    village_code: str
    rws: list[str] = Field(description="RWs designated; empty = the whole village")
    rw_list: list[str] = Field(deprecated=True, description=RW_LIST_DEPRECATED)
    designated_on: date | None
    active: bool
    version: int
    updated_at: datetime
    deleted: bool = False

    @classmethod
    def from_domain(cls, row: KampungKb) -> Self:
        return cls.from_row(row, deleted=row.deleted_at is not None)


class PersonInput(ApiInput):
    """A person as entered: NIK optional (newborns, some remote residents) but validated when given."""

    model_config = ConfigDict(json_schema_extra={"examples": [PERSON_EXAMPLE]})

    nik: str | None = Field(default=None, description="16 digits; never put it in a URL")
    name: str = Field(min_length=1, max_length=200)
    sex: Sex
    birth_date: ApiDate
    relation: Relation
    marital_status: MaritalStatus = "belum_kawin"
    education: str | None = Field(default=None, max_length=80)
    occupation: str | None = Field(default=None, max_length=80)
    legal_basis: LegalBasis = Field(
        default="public_service_mandate",
        description="UU 27/2022 basis of processing; consent for a child needs the guardian",
    )
    guardian_person_id: uuid.UUID | None = None


class FamilyCreate(ApiInput):
    """A family is created together with its head (and optionally the other members)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "kk_number": "1571011203150001",
                    "village_code": "15.71.01.1001",
                    "rw": "003",
                    "rt": "001",
                    "street": "Jl. Melati 4",
                    "welfare_decile": 2,
                    "drinking_water_source": "sumur_terlindung",
                    "latrine_type": "jamban_tanpa_septik",
                    "members": [
                        {
                            **PERSON_EXAMPLE,
                            "nik": "1571010101950001",
                            "name": "Budi",
                            "sex": "L",
                            "birth_date": "1995-01-01",
                            "relation": "kepala_keluarga",
                        },
                        PERSON_EXAMPLE,
                    ],
                }
            ]
        }
    )

    kk_number: str | None = Field(default=None, description="16-digit KK number (validated)")
    village_code: str = VillageCode
    rw: str | None = RwRt
    rt: str | None = RwRt
    street: str | None = Field(default=None, max_length=300)
    kampung_kb_id: uuid.UUID | None = None
    welfare_decile: int | None = Field(default=None, ge=1, le=10, description="DTSEN desil 1-10")
    drinking_water_source: WaterSource | None = None
    latrine_type: LatrineType | None = None
    members: list[PersonInput] = Field(min_length=1, max_length=40)


class FamilyUpdate(ApiInput):
    """Partial update; only the fields sent change. A new KK number keeps the old one in the history."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"welfare_decile": 3, "latrine_type": "jamban_sendiri_septik"}]}
    )

    kk_number: str | None = None
    kk_change_reason: str | None = Field(default=None, max_length=200, examples=["pecah_kk"])
    rw: str | None = RwRt
    rt: str | None = RwRt
    street: str | None = Field(default=None, max_length=300)
    kampung_kb_id: uuid.UUID | None = None
    welfare_decile: int | None = Field(default=None, ge=1, le=10)
    drinking_water_source: WaterSource | None = None
    latrine_type: LatrineType | None = None


class FamilyMove(ApiInput):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"village_code": "15.71.02.1003", "rw": "001", "rt": "002", "moved_on": "2026-10-01"}
            ]
        }
    )

    village_code: str = VillageCode
    rw: str | None = RwRt
    rt: str | None = RwRt
    street: str | None = Field(default=None, max_length=300)
    kampung_kb_id: uuid.UUID | None = None
    moved_on: ApiDate


class KrsRead(ApiOutput):
    target: bool = Field(description="PUS, pregnant, or with a baduta/balita")
    at_risk: bool
    reasons: list[str]
    rule_version: str | None


class FamilyRead(ApiOutput):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0b6f3c1e-3f7a-4c55-9a55-2f7d0c1c9a10",
                    "kk_number": None,
                    "has_kk_number": True,
                    "village_code": "15.71.01.1001",
                    "rw": "003",
                    "rt": "001",
                    "street": "Jl. Melati 4",
                    "kampung_kb_id": None,
                    "welfare_decile": 2,
                    "drinking_water_source": "sumur_terlindung",
                    "latrine_type": "jamban_tanpa_septik",
                    "head_person_id": "5a3f0d2e-8f0b-4a8b-9d55-0c1f7c4e2b11",
                    "krs": {
                        "target": True,
                        "at_risk": True,
                        "reasons": ["latrine_improper"],
                        "rule_version": "registry-rules-2026.2",
                    },
                    "version": 1,
                    "created_at": "2026-11-29T05:00:00Z",
                    "updated_at": "2026-11-29T05:00:00Z",
                    "deleted": False,
                }
            ]
        }
    )

    id: uuid.UUID
    kk_number: str | None = Field(
        description="The KK number, only for a token with registry:pii:read (the read is logged); null otherwise. "
        "No masked form: the rest of the response narrows a KK number too far (docs/security.md)"
    )
    has_kk_number: bool = Field(description="Whether a KK number is on file")
    village_code: str
    rw: str | None
    rt: str | None
    street: str | None
    kampung_kb_id: uuid.UUID | None
    welfare_decile: int | None
    drinking_water_source: str | None
    latrine_type: str | None
    head_person_id: uuid.UUID | None
    krs: KrsRead
    version: int
    created_at: datetime
    updated_at: datetime
    deleted: bool = False

    @classmethod
    def from_domain(cls, family: Family, revealed: Revealed | None = None, **derived: Any) -> Self:
        """The family as the API shows it; its KK number only when `revealed` holds it (the read was logged)."""
        krs = KrsRead(
            target=family.krs_target,
            at_risk=family.krs,
            reasons=list(family.krs_reasons or []),
            rule_version=family.rule_version,
        )
        return cls.from_row(
            family,
            kk_number=revealed.kks.get(family.id) if revealed else None,  # no masked form (docs/security.md)
            has_kk_number=family.kk_index is not None,
            krs=krs,
            deleted=family.deleted_at is not None,
            **derived,
        )


class PersonRead(ApiOutput):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **PERSON_EXAMPLE,
                    "id": "5a3f0d2e-8f0b-4a8b-9d55-0c1f7c4e2b11",
                    "family_id": "0b6f3c1e-3f7a-4c55-9a55-2f7d0c1c9a10",
                    "nik": None,
                    "has_nik": True,
                    "died_on": None,
                    "moved_out_on": None,
                    "guardian_person_id": None,
                    "pus": True,
                    "version": 1,
                    "updated_at": "2026-11-29T05:00:00Z",
                    "deleted": False,
                }
            ]
        }
    )

    id: uuid.UUID
    family_id: uuid.UUID | None
    nik: str | None = Field(
        description="The NIK, only for a token with registry:pii:read (the read is logged); null otherwise. No "
        "masked form: village, birth date and sex give digits 1-12, so any digits shown would leave at most "
        "10^4 candidates (docs/security.md)"
    )
    has_nik: bool
    name: str
    sex: str
    birth_date: date
    relation: str
    marital_status: MaritalStatus
    education: str | None
    occupation: str | None
    died_on: date | None
    moved_out_on: date | None
    legal_basis: str
    guardian_person_id: uuid.UUID | None
    pus: bool
    nik_conflicts: list[str] = Field(
        default_factory=list,
        description="NIK rule-5 conflicts accepted by a bulk import with on_mismatch=flag (for review)",
    )
    merged_into_person_id: uuid.UUID | None = Field(
        default=None, description="Set on the tombstone of a duplicate merged into another person"
    )
    version: int
    updated_at: datetime
    deleted: bool = False

    @classmethod
    def from_domain(cls, person: Person, revealed: Revealed | None = None) -> Self:
        """The person as the API shows it; the NIK only when `revealed` holds it (the read was logged)."""
        return cls.from_row(
            person,
            # No masked form: the response shows village, birth date and sex, which give digits 1-12 of a NIK, so
            # any digits shown of the 4-digit serial leave at most 10^4 candidates (issue 12; docs/security.md).
            nik=revealed.niks.get(person.id) if revealed else None,
            has_nik=person.nik_index is not None,
            pus=domain.person_pus(person, business_today()),
            nik_conflicts=list(person.nik_conflicts or []),
            deleted=person.deleted_at is not None,
        )


class FamilyWithMembers(FamilyRead):
    members: list[PersonRead]

    @classmethod
    def with_members(cls, family: Family, members: list[Person], revealed: Revealed | None = None) -> Self:
        """The family and its current members, numbers shown only as far as `revealed` holds them."""
        return cls.from_domain(
            family, revealed, members=[PersonRead.from_domain(p, revealed) for p in members]
        )


class PersonUpdate(ApiInput):
    """Partial update of a person; NIK, birth date and sex are re-checked together."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"marital_status": "kawin", "occupation": "petani"}]}
    )

    nik: str | None = None
    name: str | None = Field(default=None, min_length=1, max_length=200)
    sex: Sex | None = None
    birth_date: ApiDate | None = None
    relation: Relation | None = None
    marital_status: MaritalStatus | None = None
    education: str | None = Field(default=None, max_length=80)
    occupation: str | None = Field(default=None, max_length=80)
    legal_basis: LegalBasis | None = None
    guardian_person_id: uuid.UUID | None = None


class PersonDeath(ApiInput):
    model_config = ConfigDict(json_schema_extra={"examples": [{"died_on": "2026-10-12"}]})

    died_on: ApiDate


class PersonMove(ApiInput):
    """Move a person to another family, or out of the registry's area (`to_family_id` null)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "to_family_id": "0b6f3c1e-3f7a-4c55-9a55-2f7d0c1c9a10",
                    "relation": "istri",
                    "moved_on": "2026-10-01",
                }
            ]
        }
    )

    to_family_id: uuid.UUID | None
    relation: Relation | None = None
    moved_on: ApiDate


class PersonSearch(ApiInput):
    """Lookup by NIK: the number travels in the body, never in a URL."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"nik": "1571014505200001"}]})

    nik: str = Field(min_length=1, max_length=40)


class MembershipRead(ApiOutput):
    id: uuid.UUID
    person_id: uuid.UUID
    family_id: uuid.UUID
    relation: str
    started_on: date
    ended_on: date | None
    end_reason: str | None


class KkHistoryRead(ApiOutput):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "7a2b3c4d-0000-4000-8000-000000000003",
                    "kk_number": None,
                    "valid_from": "2026-11-29T05:00:00Z",
                    "valid_to": None,
                    "reason": "pecah_kk",
                }
            ]
        }
    )

    id: uuid.UUID
    kk_number: str | None = Field(
        description="Only for a token with registry:pii:read (then the read is logged); null otherwise"
    )
    valid_from: datetime
    valid_to: datetime | None = Field(description="Null for the current number")
    reason: str | None


class AccessLogRead(ApiOutput):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "f1b2c3d4-0000-4000-8000-000000000001",
                    "accessed_at": "2026-11-29T05:00:00Z",
                    "actor": "officer-17",
                    "person_id": "5a3f0d2e-8f0b-4a8b-9d55-0c1f7c4e2b11",
                    "family_id": None,
                    "purpose": "verifikasi bansos",
                    "action": "read",
                    "fields": ["nik"],
                }
            ]
        },
    )

    id: uuid.UUID
    accessed_at: datetime
    actor: str
    person_id: uuid.UUID | None
    family_id: uuid.UUID | None
    purpose: str
    action: str = Field(
        description="read (an unmasked read), kk_history, or nik_search (every search by NIK, hit or miss; "
        "person_id is null for a miss)"
    )
    fields: list[str]
