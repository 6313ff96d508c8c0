"""Typed dependencies shared by every service's endpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from shared.web.pagination import PageParams, page_params


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request; only the service layer commits, this only closes it."""
    async with request.app.state.sessionmaker() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
PageDep = Annotated[PageParams, Depends(page_params)]
