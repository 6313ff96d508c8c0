"""Typed dependencies of the uppka endpoints."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import Depends, Request

from shared.auth import Principal, require_scopes
from shared.clock import business_today
from uppka.config import Settings

Reader = Annotated[Principal, require_scopes("uppka:read")]
Writer = Annotated[Principal, require_scopes("uppka:write")]


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_today() -> date:
    """Today's business date (shared/clock.py: the programme's day, WIB)."""
    return business_today()


SettingsDep = Annotated[Settings, Depends(get_settings)]
TodayDep = Annotated[date, Depends(get_today)]
