"""Tables of the reporting database: the service's own, plus the shared outbox, inbox and idempotency tables."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from shared.consumer import inbox_table
from shared.db import make_metadata
from shared.outbox import outbox_table
from shared.subject import subject_access_log_table
from shared.web.idempotency import idempotency_table


class Base(DeclarativeBase):
    metadata = make_metadata()


outbox = outbox_table(Base.metadata)
inbox = inbox_table(Base.metadata)
idempotency = idempotency_table(Base.metadata)
subject_access_log = subject_access_log_table(Base.metadata)


def load_all_models() -> None:
    """Import every module that defines tables, so the metadata is complete (migrations, drift check)."""
    import reporting.projection.models
    import reporting.streams.models  # noqa: F401
