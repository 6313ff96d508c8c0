"""UPPKA contributions become ledger income."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from dashat.funds import repository as repo
from dashat.funds import service
from dashat.kitchens import repository as kitchens
from shared.consumer import PoisonEvent
from shared.events import CloudEvent
from shared.events import uppka as up


async def handle_contribution(
    session: AsyncSession, env: CloudEvent, data: up.DashatContributionMade
) -> None:
    kitchen = await kitchens.get(session, data.kitchen_id, lock=True)
    if kitchen is None:
        # Kitchen ids are DASHAT's own: an unknown one cannot become valid by waiting.
        raise PoisonEvent(f"contribution {data.contribution_id} names unknown kitchen {data.kitchen_id}")
    if data.amount <= 0:
        raise PoisonEvent(f"contribution {data.contribution_id} has no value")
    if await repo.by_contribution(session, data.contribution_id) is not None:
        return  # the same contribution re-announced under another event id
    await service.add_income(
        session,
        kitchen,
        source="uppka_contribution",
        amount=data.amount,
        on=data.contributed_on,
        note=f"{data.kind}: {data.goods}" if data.goods else data.kind,
        contribution_id=data.contribution_id,
        group_id=data.group_id,
        causation_id=env.id,
    )
