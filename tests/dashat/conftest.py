"""Fixtures of the DASHAT tests: the migrated database, sessions, apps, and event helpers."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from dashat.config import Settings
from dashat.consumer import HANDLERS
from dashat.main import create_app
from dashat.models import inbox
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.clock import business_today
from shared.db import create_sessionmaker
from shared.events import CloudEvent, EventData, build_envelope, parse_data
from shared.events import registry as reg
from shared.regions import load_regions
from shared.testing.plugin import migrated_database, rolled_back_session, running_app

REGION = "33"  # tests work in Jawa Tengah; 15.71 stands for "another region"
_villages = itertools.cycle(
    [r.code for d in load_regions().children("33.01") for r in load_regions().children(d.code)]
)


def fresh_village() -> str:
    """A village no other test in this session uses, so committed data never meets."""
    return next(_villages)


@pytest.fixture(scope="session")
async def db_url() -> str:
    return await migrated_database("dashat")


@pytest.fixture(scope="session")
async def engine(db_url: str, pg_engine_factory: Any) -> AsyncEngine:
    return pg_engine_factory(db_url)  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def sm(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(engine)


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    async with rolled_back_session(engine) as s:
        yield s


@pytest.fixture
async def client(db_url: str, session: AsyncSession) -> AsyncIterator[Any]:
    async with running_app(create_app(Settings(database_url=db_url)), session) as c:
        yield c


def envelope(data: EventData, *, time: datetime | None = None, key: str | None = None) -> CloudEvent:
    return build_envelope(data, key=key or str(getattr(data, "family_id", uuid.uuid4())), time=time)


async def deliver(session: AsyncSession, env: CloudEvent, consumer: str = "dashat.test") -> bool:
    """What the ConsumerRunner does for one record: inbox row + handler in one transaction."""
    async with session.begin():
        inserted = (
            await session.execute(
                insert(inbox)
                .values(consumer=consumer, event_id=uuid.UUID(env.id), event_type=env.type)
                .on_conflict_do_nothing()
                .returning(inbox.c.event_id)
            )
        ).first()
        if inserted is None:
            return False
        await HANDLERS[env.type](session, env, parse_data(env))
    return True


def months_ago(months: float, today: date | None = None) -> date:
    return (today or datetime.now(UTC).date()) - timedelta(days=int(months * 30.5))


def stunting(
    person_id: uuid.UUID,
    family_id: uuid.UUID,
    village: str,
    *,
    rw: str | None = "001",
    case_id: uuid.UUID | None = None,
    birth_date: date | None = None,
    haz: float = -2.6,
    decile: int | None = 2,
    krs: bool = True,
    measured_on: date | None = None,
) -> reg.BadutaStuntingDetected:
    birth = birth_date or months_ago(10)
    return reg.BadutaStuntingDetected(
        case_id=case_id or uuid.uuid4(),
        person_id=person_id,
        family_id=family_id,
        village_code=village,
        rw=rw,
        measurement_id=uuid.uuid4(),
        measured_on=measured_on or datetime.now(UTC).date(),
        haz=haz,
        age_days=(datetime.now(UTC).date() - birth).days,
        rule_version="who2006-test",
        severity="stunted",
        sex="L",
        birth_date=birth,
        welfare_decile=decile,
        krs=krs,
    )


def measured(
    case: reg.BadutaStuntingDetected,
    on: date,
    haz: float,
    *,
    flag: bool = False,
    measurement_id: uuid.UUID | None = None,
    corrects: uuid.UUID | None = None,
) -> reg.ChildMeasured:
    """A later measurement of the case's child (only what DASHAT reads is realistic)."""
    return reg.ChildMeasured(
        measurement_id=measurement_id or uuid.uuid4(),
        person_id=case.person_id,
        family_id=case.family_id,
        village_code=case.village_code,
        rw=case.rw,
        sex=case.sex,
        measured_on=on,
        age_days=(on - case.birth_date).days,
        haz=haz,
        haz_flag=flag,
        haz_class="normal" if haz >= -2 else "stunted",
        corrects_measurement_id=corrects,
        rule_version="who2006-test",
    )


def resolved(case: reg.BadutaStuntingDetected, by: reg.ChildMeasured) -> reg.StuntingResolved:
    """The registry closing the case on a non-stunted measurement."""
    return reg.StuntingResolved(
        **{
            **case.model_dump(include=set(reg.StuntingResolved.model_fields)),
            "measurement_id": by.measurement_id,
            "measured_on": by.measured_on,
            "haz": by.haz,
        }
    )


async def confirm_recovery(session: AsyncSession, case: reg.BadutaStuntingDetected) -> None:
    """What the registry sends for two normal measurements 30 days apart after the case (the resolution on
    the first); the case must have been measured at least 31 days ago."""
    first = measured(case, case.measured_on + timedelta(days=1), -1.5)
    await deliver(session, envelope(first))
    await deliver(session, envelope(resolved(case, first)))
    await deliver(session, envelope(measured(case, case.measured_on + timedelta(days=31), -1.4)))


def retracted(case: reg.BadutaStuntingDetected) -> reg.StuntingCaseRetracted:
    return reg.StuntingCaseRetracted(
        case_id=case.case_id,
        person_id=case.person_id,
        family_id=case.family_id,
        village_code=case.village_code,
        measurement_id=case.measurement_id,
        measured_on=case.measured_on,
        reason="measurement_corrected",
        retracted_on=datetime.now(UTC).date(),
    )


def person(
    person_id: uuid.UUID,
    family_id: uuid.UUID,
    village: str,
    *,
    sex: str = "P",
    birth_date: date | None = None,
    rw: str | None = "001",
    updated: bool = False,
    relation: str = "istri",
) -> reg.PersonFacts:
    cls = reg.PersonUpdated if updated else reg.PersonRegistered
    married = relation in ("istri", "suami", "kepala_keluarga")
    return cls(
        person_id=person_id,
        family_id=family_id,
        village_code=village,
        rw=rw,
        sex=sex,
        birth_date=birth_date or date(1995, 5, 5),
        relation=relation,
        marital_status="kawin" if married else "belum_kawin",
        has_nik=True,
        pus=sex == "P" and married,
        rule_version="test",
    )


def pregnancy(pid: uuid.UUID, fid: uuid.UUID, village: str, **kw: object) -> reg.PregnancyRegistered:
    values: dict[str, object] = {
        "pregnancy_id": uuid.uuid4(),
        "person_id": pid,
        "family_id": fid,
        "village_code": village,
        "rw": "001",
        "expected_delivery": datetime.now(UTC).date() + timedelta(days=150),
        "kek": True,
        "anaemia": "none",
        "mother_age_years": 27,
        "welfare_decile": 7,
        "krs": False,
        "rule_version": "test",
    }
    values.update(kw)
    return reg.PregnancyRegistered(**values)


def ended(p: reg.PregnancyRegistered, outcome: str) -> reg.PregnancyEnded:
    return reg.PregnancyEnded(
        pregnancy_id=p.pregnancy_id,
        person_id=p.person_id,
        family_id=p.family_id,
        village_code=p.village_code,
        outcome=outcome,
        ended_on=datetime.now(UTC).date(),
    )


def moved(
    pid: uuid.UUID, from_fid: uuid.UUID, from_village: str, to_village: str, **kw: Any
) -> reg.PersonMoved:
    return reg.PersonMoved(
        person_id=pid,
        from_family_id=from_fid,
        family_id=kw.pop("family_id", uuid.uuid4()),
        from_village_code=from_village,
        village_code=to_village,
        rw=kw.pop("rw", "001"),
        moved_on=business_today(),
    )
