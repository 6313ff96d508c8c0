"""What happens to enrolments when people's lives change: loss, moves, merged records, new KRS/decile facts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from dashat.models import outbox
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.events import registry as reg
from tests.dashat.conftest import deliver, envelope, fresh_village
from tests.dashat.helpers import enrolments, open_kitchen

pytestmark = pytest.mark.integration


async def _events(session: AsyncSession, event_type: str, person_id: uuid.UUID) -> list[dict[str, Any]]:
    async with session.begin():
        rows = await session.execute(select(outbox.c.envelope).where(outbox.c.event_type == event_type))
        return [r[0]["data"] for r in rows if r[0]["data"]["person_id"] == str(person_id)]


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


async def test_pregnancy_loss_exits_as_pregnancy_lost(session: AsyncSession) -> None:
    village = fresh_village()
    await open_kitchen(session, village)
    pid, fid = uuid.uuid4(), uuid.uuid4()
    p = pregnancy(pid, fid, village)
    await deliver(session, envelope(p))
    loss = envelope(ended(p, "loss"))
    await deliver(session, loss)
    [e] = await enrolments(session, pid)  # no ibu_menyusui after a loss
    assert (e.category, e.status, e.exit_reason, e.exit_causing_event_id) == (
        "ibu_hamil",
        "exited",
        "pregnancy_lost",
        loss.id,
    )
    [exited] = await _events(session, "dashat.beneficiary.exited.v1", pid)
    assert exited["reason"] == "pregnancy_lost"
