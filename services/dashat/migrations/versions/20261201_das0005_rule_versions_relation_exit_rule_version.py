"""rule versions as configuration, the replica's family relation, the rule version of an exit

Revision ID: das0005
Revises: das0004r
Create Date: 2026-12-01 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "das0005"
down_revision: str | None = "das0004r"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rule_version",
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("region_prefix", sa.Text(), nullable=True),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("config", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_rule_version")),
    )
    op.create_index(op.f("ix_rule_version_region_prefix"), "rule_version", ["region_prefix"], unique=False)
    op.create_index(
        "uq_rule_version_region_effective",
        "rule_version",
        ["region_prefix", "effective_from"],
        unique=True,
        postgresql_nulls_not_distinct=True,
    )
    op.add_column("person_replica", sa.Column("relation", sa.Text(), nullable=True))
    op.add_column("enrolment", sa.Column("exit_rule_version", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("enrolment", "exit_rule_version")
    op.drop_column("person_replica", "relation")
    op.drop_index("uq_rule_version_region_effective", table_name="rule_version")
    op.drop_index(op.f("ix_rule_version_region_prefix"), table_name="rule_version")
    op.drop_table("rule_version")
