"""age sweep: its watermark table and the birth-date index its daily range scans use

Revision ID: reg0005
Revises: reg0004r
Create Date: 2026-12-01 17:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "reg0005"
down_revision: str | None = "reg0004r"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "age_sweep",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("last_swept_on", sa.Date(), nullable=False),
        sa.Column("swept_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_age_sweep")),
    )
    # On a populated national registry build this one with CREATE INDEX CONCURRENTLY ahead of the deploy.
    op.create_index("ix_person_birth_date", "person", ["birth_date"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_person_birth_date", table_name="person")
    op.drop_table("age_sweep")
