"""Typed dependencies of the uppka endpoints."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import Depends, Request

from shared.auth import Principal, require_scopes
from uppka.common import local_today
from uppka.config import Settings

Reader = Annotated[Principal, require_scopes("uppka:read")]
Writer = Annotated[Principal, require_scopes("uppka:write")]


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_today(request: Request) -> date:
    """Today in the programme's timezone."""
    return local_today(get_settings(request).timezone)


SettingsDep = Annotated[Settings, Depends(get_settings)]
TodayDep = Annotated[date, Depends(get_today)]
