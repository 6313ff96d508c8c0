"""outbox wakes the relay: a statement-level trigger signals the relay's LISTEN connection after a commit

Revision ID: reg0004r
Revises: reg0003
Create Date: 2026-12-01 14:35:00
"""

from collections.abc import Sequence

from alembic import op

from shared.outbox import drop_wake_relay_ddl, wake_relay_ddl

revision: str = "reg0004r"
down_revision: str | None = "reg0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for statement in wake_relay_ddl("outbox"):
        op.execute(statement)


def downgrade() -> None:
    for statement in drop_wake_relay_ddl("outbox"):
        op.execute(statement)
