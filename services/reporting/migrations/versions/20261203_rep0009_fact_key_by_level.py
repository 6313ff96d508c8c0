"""fact rows keyed by level first: the primary key (level, region, grain, period_start, measure, slot) serves the
breakdowns of a level that ix_rep_fact_level_region served, so that index goes; every fact row the rollup
writes updates two indexes instead of three

Revision ID: rep0009
Revises: rep0008
Create Date: 2026-12-03 06:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "rep0009"
down_revision: str | None = "rep0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint("pk_rep_fact", "rep_fact", type_="primary")
    op.create_primary_key(
        "pk_rep_fact", "rep_fact", ["level", "region", "grain", "period_start", "measure", "slot"]
    )
    op.drop_index("ix_rep_fact_level_region", table_name="rep_fact")


def downgrade() -> None:
    op.create_index("ix_rep_fact_level_region", "rep_fact", ["level", "region", "grain", "period_start"])
    op.drop_constraint("pk_rep_fact", "rep_fact", type_="primary")
    op.create_primary_key("pk_rep_fact", "rep_fact", ["region", "grain", "period_start", "measure", "slot"])
