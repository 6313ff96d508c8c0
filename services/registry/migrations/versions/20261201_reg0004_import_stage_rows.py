"""bulk import staging rows (unlogged): a chunk's natural keys, checked against the registry with joins

Revision ID: reg0004
Revises: reg0003
Create Date: 2026-12-01 14:35:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "reg0004"
down_revision: str | None = "reg0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "import_stage_row",
        sa.Column("stage_id", sa.Uuid(), nullable=False),
        sa.Column("row_no", sa.Integer(), nullable=False),
        sa.Column("kk_index", sa.LargeBinary(), nullable=True),
        sa.Column("nik_index", sa.LargeBinary(), nullable=True),
        sa.Column("village_code", sa.Text(), nullable=True),
        sa.Column("kampung_kb_code", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("stage_id", "row_no", name=op.f("pk_import_stage_row")),
        prefixes=["UNLOGGED"],
    )


def downgrade() -> None:
    op.drop_table("import_stage_row")
