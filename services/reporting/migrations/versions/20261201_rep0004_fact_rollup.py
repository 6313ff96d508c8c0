"""facts rolled up apart from the projector: it appends leaf deltas to rep_fact_pending, one rollup folds
them into rep_fact (slot 0); the per-partition slot rows of rep0003 are folded into slot 0 here

Revision ID: rep0004
Revises: rep0003
Create Date: 2026-12-01 15:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "rep0004"
down_revision: str | None = "rep0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rep_fact_pending",
        sa.Column("fact_key", sa.Text(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    )
    # One row per figure again, so breakdowns read as many rows as before slots.
    op.execute(
        "CREATE TEMP TABLE rep_fact_sum AS SELECT region, grain, period_start, measure, min(level) AS level,"
        " sum(value)::bigint AS value FROM rep_fact GROUP BY 1, 2, 3, 4"
    )
    op.execute("DELETE FROM rep_fact")
    op.execute(
        "INSERT INTO rep_fact (region, grain, period_start, measure, slot, level, value)"
        " SELECT region, grain, period_start, measure, 0, level, value FROM rep_fact_sum"
    )
    op.execute("DROP TABLE rep_fact_sum")


def downgrade() -> None:
    # rep0003's projector writes facts itself; deltas still pending would be lost.
    op.execute(
        "DO $$ BEGIN IF EXISTS (SELECT 1 FROM rep_fact_pending) THEN"
        " RAISE EXCEPTION 'rep_fact_pending is not empty: let the rollup finish first'; END IF; END $$"
    )
    op.drop_table("rep_fact_pending")
