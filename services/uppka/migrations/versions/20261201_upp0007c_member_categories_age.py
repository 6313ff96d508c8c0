"""member categories age: member.category_since, person_replica birth-date index, the category sweep's watermark

Revision ID: upp0007c
Revises: upp0006
Create Date: 2026-12-01 18:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "upp0007c"
down_revision: str | None = "upp0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("member", sa.Column("category_since", sa.Date(), nullable=True))
    # Existing memberships: the category was derived at the join.
    op.execute("UPDATE member SET category_since = joined_on")
    op.create_index(op.f("ix_person_replica_birth_date"), "person_replica", ["birth_date"])
    op.create_table(
        "category_sweep",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("last_swept_on", sa.Date(), nullable=False),
        sa.Column("swept_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_category_sweep")),
    )


def downgrade() -> None:
    op.drop_table("category_sweep")
    op.drop_index("ix_person_replica_birth_date", table_name="person_replica")
    op.drop_column("member", "category_since")
