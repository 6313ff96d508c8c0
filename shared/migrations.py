"""Alembic per service: the shared env.py body, programmatic upgrade, and the models-vs-migrations check."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from alembic import command, context
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from shared.config import REPO_ROOT

SERVICES = ("registry", "uppka", "dashat", "reporting")


def service_dir(service: str) -> Path:
    return REPO_ROOT / "services" / service


def has_migrations(service: str) -> bool:
    return (service_dir(service) / "alembic.ini").is_file()


def alembic_config(service: str, url: str) -> Config:
    cfg = Config(str(service_dir(service) / "alembic.ini"))
    cfg.set_main_option("script_location", str(service_dir(service) / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def run_env(target_metadata: MetaData, default_url: str) -> None:
    """Body of every service's migrations/env.py."""
    config = context.config
    if not config.get_main_option("sqlalchemy.url"):
        config.set_main_option("sqlalchemy.url", default_url.replace("%", "%%"))

    def do_run(connection: Connection) -> None:
        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()

    connection = config.attributes.get("connection")
    if connection is not None:
        do_run(connection)
        return
    if context.is_offline_mode():
        context.configure(
            url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata, literal_binds=True
        )
        with context.begin_transaction():
            context.run_migrations()
        return

    async def online() -> None:
        engine = create_async_engine(str(config.get_main_option("sqlalchemy.url")), poolclass=pool.NullPool)
        async with engine.begin() as conn:
            await conn.run_sync(do_run)
        await engine.dispose()

    asyncio.run(online())


async def upgrade(service: str, url: str, revision: str = "head") -> None:
    """Apply a service's migrations to the database at `url` (usable inside a running event loop)."""
    cfg = alembic_config(service, url)
    engine = create_async_engine(url, poolclass=pool.NullPool)

    def run(connection: Connection) -> None:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)

    try:
        async with engine.begin() as conn:
            await conn.run_sync(run)
    finally:
        await engine.dispose()


async def model_drift(url: str, metadata: MetaData) -> list[Any]:
    """Differences between a migrated database and the models (empty when they agree)."""
    engine = create_async_engine(url, poolclass=pool.NullPool)

    def compare(connection: Connection) -> list[Any]:
        ctx = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(ctx, metadata))

    try:
        async with engine.connect() as conn:
            return await conn.run_sync(compare)
    finally:
        await engine.dispose()
