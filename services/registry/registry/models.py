"""Tables of the registry database: the service's own, plus the shared outbox and idempotency tables.

No inbox: the registry publishes events and consumes none.
"""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from shared.db import make_metadata
from shared.outbox import outbox_table
from shared.web.idempotency import idempotency_table


class Base(DeclarativeBase):
    metadata = make_metadata()


outbox = outbox_table(Base.metadata)
idempotency = idempotency_table(Base.metadata)


def load_all_models() -> None:
    """Import every module that defines tables, so the metadata is complete (migrations, drift check)."""
    import registry.ageing.models
    import registry.families.models
    import registry.growth.models
    import registry.health.models
    import registry.imports.models
    import registry.regions.models  # noqa: F401
