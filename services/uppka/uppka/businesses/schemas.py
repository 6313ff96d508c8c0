"""API models of businesses, products and capital sources."""

from __future__ import annotations

import uuid
from datetime import date
from typing import TYPE_CHECKING, Literal, Self

from pydantic import Field

from shared.web.schemas import ApiDate, ApiInput, ApiOutput
from uppka.common import Rupiah

if TYPE_CHECKING:
    from uppka.businesses.models import Product
    from uppka.businesses.service import BusinessRecord

Sector = Literal["food_processing", "crafts", "agriculture", "livestock", "trade", "services", "other"]
CapitalKind = Literal["swadaya", "group_fund", "kur", "apbn", "apbd", "dana_desa", "csr", "other"]
LicenceNumber = str | None


class Licences(ApiInput):
    nib: LicenceNumber = Field(default=None, max_length=40, description="Nomor Induk Berusaha")
    pirt: LicenceNumber = Field(default=None, max_length=40, description="P-IRT number")
    halal: LicenceNumber = Field(default=None, max_length=60, description="Halal certificate number")
    bpom: LicenceNumber = Field(default=None, max_length=40, description="BPOM registration (MD/ML)")


class ProductIn(ApiInput):
    name: str = Field(min_length=1, max_length=200)
    unit: str = Field(min_length=1, max_length=40, description="e.g. pcs, kg, bungkus")
    price: Rupiah
    keunggulan: str | None = Field(default=None, max_length=1000, description="What makes it stand out")
    licences: Licences = Field(default_factory=Licences)


class ProductRead(ApiOutput):
    id: uuid.UUID
    business_id: uuid.UUID
    name: str
    unit: str
    price: int
    keunggulan: str | None
    licences: Licences

    @classmethod
    def from_domain(cls, p: Product) -> Self:
        licences = Licences(nib=p.nib_number, pirt=p.pirt_number, halal=p.halal_number, bpom=p.bpom_number)
        return cls.from_row(p, licences=licences)


class CapitalIn(ApiInput):
    source: CapitalKind
    amount: Rupiah
    received_on: ApiDate | None = None


class CapitalRead(ApiOutput):
    id: uuid.UUID
    source: str
    amount: int
    received_on: date | None


class BusinessCreate(ApiInput):
    name: str = Field(min_length=1, max_length=200)
    sector: Sector
    started_on: ApiDate | None = None
    description: str | None = Field(default=None, max_length=2000)
    supplies_dashat: bool = False
    products: list[ProductIn] = Field(default_factory=list, max_length=100)
    capital: list[CapitalIn] = Field(default_factory=list, max_length=100)


class BusinessUpdate(ApiInput):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    sector: Sector | None = None
    description: str | None = Field(default=None, max_length=2000)
    supplies_dashat: bool | None = None


class BusinessRead(ApiOutput):
    id: uuid.UUID
    group_id: uuid.UUID
    name: str
    sector: Sector
    started_on: date | None
    description: str | None
    supplies_dashat: bool
    version: int
    products: list[ProductRead] = Field(default_factory=list)
    capital: list[CapitalRead] = Field(default_factory=list)
    capital_total: int = 0

    @classmethod
    def from_domain(cls, record: BusinessRecord) -> Self:
        return cls.from_row(
            record.business,
            products=[ProductRead.from_domain(p) for p in record.products],
            capital=[CapitalRead.model_validate(c) for c in record.capital],
            capital_total=sum(c.amount for c in record.capital),
        )
