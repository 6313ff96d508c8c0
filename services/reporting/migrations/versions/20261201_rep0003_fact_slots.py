"""fact rows, places and freshness per topic partition (slot), so two projector instances never share a row

Revision ID: rep0003
Revises: rep0002
Create Date: 2026-12-01 14:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "rep0003"
down_revision: str | None = "rep0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing rows keep counting: they all land in slot 0 (a figure is the sum over slots).
    op.add_column("rep_fact", sa.Column("slot", sa.SmallInteger(), server_default="0", nullable=False))
    op.alter_column("rep_fact", "slot", server_default=None)
    op.drop_constraint("pk_rep_fact", "rep_fact", type_="primary")
    op.create_primary_key("pk_rep_fact", "rep_fact", ["region", "grain", "period_start", "measure", "slot"])
    op.add_column(
        "projection_status", sa.Column("partition", sa.SmallInteger(), server_default="0", nullable=False)
    )
    op.alter_column("projection_status", "partition", server_default=None)
    op.drop_constraint("pk_projection_status", "projection_status", type_="primary")
    op.create_primary_key("pk_projection_status", "projection_status", ["topic", "partition"])
    op.add_column("rep_place", sa.Column("slot", sa.SmallInteger(), server_default="0", nullable=False))
    op.alter_column("rep_place", "slot", server_default=None)
    op.add_column(
        "rep_place",
        sa.Column("seen_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    )
    op.alter_column("rep_place", "seen_at", server_default=None)
    op.drop_constraint("pk_rep_place", "rep_place", type_="primary")
    op.create_primary_key("pk_rep_place", "rep_place", ["region", "slot"])


def downgrade() -> None:
    op.drop_constraint("pk_rep_place", "rep_place", type_="primary")
    op.execute(
        "DELETE FROM rep_place p USING rep_place q WHERE p.region = q.region"
        " AND (p.seen_at, p.slot) < (q.seen_at, q.slot)"
    )
    op.create_primary_key("pk_rep_place", "rep_place", ["region"])
    op.drop_column("rep_place", "seen_at")
    op.drop_column("rep_place", "slot")
    op.drop_constraint("pk_projection_status", "projection_status", type_="primary")
    op.execute(
        "DELETE FROM projection_status p USING projection_status q WHERE p.topic = q.topic"
        " AND p.partition > q.partition"
    )
    op.create_primary_key("pk_projection_status", "projection_status", ["topic"])
    op.drop_column("projection_status", "partition")
    op.drop_constraint("pk_rep_fact", "rep_fact", type_="primary")
    op.execute(
        "CREATE TEMP TABLE rep_fact_sum AS SELECT region, grain, period_start, measure, min(level) AS level,"
        " sum(value)::bigint AS value FROM rep_fact GROUP BY 1, 2, 3, 4"
    )
    op.execute("TRUNCATE rep_fact")
    op.drop_column("rep_fact", "slot")
    op.execute("INSERT INTO rep_fact SELECT region, grain, period_start, measure, level, value FROM rep_fact_sum")
    op.execute("DROP TABLE rep_fact_sum")
    op.create_primary_key("pk_rep_fact", "rep_fact", ["region", "grain", "period_start", "measure"])
