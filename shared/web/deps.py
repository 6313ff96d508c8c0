"""Typed dependencies shared by every service's endpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from shared.web.idempotency import held_connection
from shared.web.pagination import PageParams, page_params


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request; only the service layer commits, this only closes it.

    Under a keyed POST the session joins the idempotency middleware's transaction through a savepoint: the
    service's commit releases the savepoint, and the effect becomes visible with its stored response.
    """
    connection = held_connection(request.scope)
    if connection is None:
        async with request.app.state.sessionmaker() as session:
            yield session
        return
    async with request.app.state.sessionmaker(
        bind=connection, join_transaction_mode="create_savepoint"
    ) as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
PageDep = Annotated[PageParams, Depends(page_params)]
