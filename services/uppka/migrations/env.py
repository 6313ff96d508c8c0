"""Alembic environment of the uppka database."""

from uppka.config import Settings
from uppka.models import Base, load_all_models

from shared.migrations import run_env

load_all_models()
run_env(Base.metadata, default_url=Settings().database_url)
