"""Use cases of businesses and products."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Principal
from shared.errors import NotFound, ValidationFailed
from shared.events import uppka as ev
from shared.outbox import publish
from shared.web.etag import IfMatchCondition, check_version
from shared.web.pagination import PageParams
from uppka.businesses import repository as repo
from uppka.businesses.models import Business, CapitalSource, Product
from uppka.businesses.schemas import BusinessCreate, BusinessUpdate, CapitalIn, ProductIn
from uppka.common import check_not_future
from uppka.groups.service import load_group, lock_open_group
from uppka.models import outbox


def _product_row(business_id: uuid.UUID, p: ProductIn) -> Product:
    return Product(
        id=uuid.uuid4(),
        business_id=business_id,
        name=p.name,
        unit=p.unit,
        price=p.price,
        keunggulan=p.keunggulan,
        nib_number=p.licences.nib,
        pirt_number=p.licences.pirt,
        halal_number=p.licences.halal,
        bpom_number=p.licences.bpom,
    )


@dataclass(frozen=True)
class BusinessRecord:
    """A business with its products and capital sources, as one read loads them (the API model is made at the
    edge: `BusinessRead.from_domain`)."""

    business: Business
    products: list[Product]
    capital: list[CapitalSource]


async def _records(session: AsyncSession, businesses: list[Business]) -> list[BusinessRecord]:
    ids = [b.id for b in businesses]
    products: dict[uuid.UUID, list[Product]] = defaultdict(list)
    capital: dict[uuid.UUID, list[CapitalSource]] = defaultdict(list)
    for p in await repo.products_of(session, ids):
        products[p.business_id].append(p)
    for c in await repo.capital_of(session, ids):
        capital[c.business_id].append(c)
    return [BusinessRecord(b, products[b.id], capital[b.id]) for b in businesses]


def _check_dates(started_on: date | None, capital: list[CapitalIn], today: date) -> None:
    check_not_future(started_on, today, field="body.started_on", rule="business.in_future")
    for i, c in enumerate(capital):
        check_not_future(
            c.received_on, today, field=f"body.capital.{i}.received_on", rule="capital.in_future"
        )


async def create(
    session: AsyncSession, group_id: uuid.UUID, body: BusinessCreate, principal: Principal, today: date
) -> BusinessRecord:
    _check_dates(body.started_on, body.capital, today)
    async with session.begin():
        group = await lock_open_group(session, group_id, principal)
        business = Business(
            id=uuid.uuid4(),
            group_id=group.id,
            name=body.name,
            sector=body.sector,
            started_on=body.started_on,
            description=body.description,
            supplies_dashat=body.supplies_dashat,
            version=1,
        )
        session.add(business)
        await session.flush()
        session.add_all([_product_row(business.id, p) for p in body.products])
        session.add_all(
            [CapitalSource(id=uuid.uuid4(), business_id=business.id, **c.model_dump()) for c in body.capital]
        )
        await session.flush()
        await publish(
            session,
            outbox,
            ev.BusinessRegistered(
                group_id=group.id,
                business_id=business.id,
                village_code=group.village_code,
                sector=body.sector,
                supplies_dashat=body.supplies_dashat,
                started_on=body.started_on,
            ),
            key=group.id,
        )
        (out,) = await _records(session, [business])
    return out


async def load(
    session: AsyncSession,
    group_id: uuid.UUID,
    business_id: uuid.UUID,
    principal: Principal,
    *,
    lock: bool = False,
) -> Business:
    group = await load_group(session, group_id, principal)
    business = await repo.get(session, group.id, business_id, lock=lock)
    if business is None:
        raise NotFound("business not found")
    return business


async def read(
    session: AsyncSession, group_id: uuid.UUID, business_id: uuid.UUID, principal: Principal
) -> BusinessRecord:
    async with session.begin():
        (out,) = await _records(session, [await load(session, group_id, business_id, principal)])
    return out


async def list_for_group(
    session: AsyncSession,
    group_id: uuid.UUID,
    params: PageParams,
    principal: Principal,
    supplies_dashat: bool | None,
) -> tuple[list[BusinessRecord], str | None]:
    async with session.begin():
        group = await load_group(session, group_id, principal)
        rows, cursor = await repo.list_for_group(session, group.id, params, supplies_dashat=supplies_dashat)
        out = await _records(session, rows)
    return out, cursor


async def update(
    session: AsyncSession,
    group_id: uuid.UUID,
    business_id: uuid.UUID,
    body: BusinessUpdate,
    principal: Principal,
    expected_version: IfMatchCondition,
) -> BusinessRecord:
    changes = body.model_dump(exclude_unset=True)
    for k in ("name", "sector", "supplies_dashat"):
        if k in changes and changes[k] is None:
            raise ValidationFailed(f"{k} cannot be null", field=f"body.{k}", rule="business.required")
    async with session.begin():
        business = await load(session, group_id, business_id, principal, lock=True)
        check_version(expected_version, business.version)
        if any(getattr(business, k) != v for k, v in changes.items()):
            for k, v in changes.items():
                setattr(business, k, v)
            business.version += 1
            await session.flush()
        (out,) = await _records(session, [business])
    return out


async def add_product(
    session: AsyncSession, group_id: uuid.UUID, business_id: uuid.UUID, body: ProductIn, principal: Principal
) -> Product:
    async with session.begin():
        business = await load(session, group_id, business_id, principal, lock=True)
        row = _product_row(business.id, body)
        session.add(row)
        business.version += 1
        await session.flush()
    return row


async def add_capital(
    session: AsyncSession,
    group_id: uuid.UUID,
    business_id: uuid.UUID,
    body: CapitalIn,
    principal: Principal,
    today: date,
) -> CapitalSource:
    check_not_future(body.received_on, today, field="body.received_on", rule="capital.in_future")
    async with session.begin():
        business = await load(session, group_id, business_id, principal, lock=True)
        row = CapitalSource(id=uuid.uuid4(), business_id=business.id, **body.model_dump())
        session.add(row)
        business.version += 1
        await session.flush()
    return row
