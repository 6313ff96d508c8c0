"""Alembic environment of the dashat database."""

from dashat.config import Settings
from dashat.models import Base, load_all_models

from shared.migrations import run_env

load_all_models()
run_env(Base.metadata, default_url=Settings().database_url)
