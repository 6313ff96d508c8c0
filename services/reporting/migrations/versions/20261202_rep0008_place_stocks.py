"""stocks of Kampung KB areas and kitchens as at each month (rep_place_stock, filled from rep_fact here and kept
by the rollup), and facts of areas and kitchens indexed by measure: the DASHAT coverage and cost figures read
one row per area and kitchen instead of every month of their history

Revision ID: rep0008
Revises: rep0007
Create Date: 2026-12-02 22:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "rep0008"
down_revision: str | None = "rep0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    from reporting.projection.repository import place_stocks_from_facts

    op.execute(
        "CREATE INDEX ix_rep_fact_place_measure ON rep_fact (level, measure, grain, period_start, region)"
        " INCLUDE (value) WHERE level >= 5"
    )
    op.create_table(
        "rep_place_stock",
        sa.Column("measure", sa.Text(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("region", sa.Text(collation="C"), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("measure", "month", "region", name=op.f("pk_rep_place_stock")),
    )
    op.create_index(
        "ix_rep_place_stock_month",
        "rep_place_stock",
        ["month", "measure", "region"],
        postgresql_include=["level", "value"],
    )
    op.execute(place_stocks_from_facts())


def downgrade() -> None:
    op.drop_table("rep_place_stock")
    op.execute("DROP INDEX ix_rep_fact_place_measure")
