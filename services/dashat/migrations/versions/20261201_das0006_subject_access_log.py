"""subject access log: every data-subject export audited (issue 12, item 8)

Revision ID: das0006
Revises: das0005
Create Date: 2026-12-01 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "das0006"
down_revision: str | None = "das0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "subject_access_log",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("accessed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("sections", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("request_id", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subject_access_log")),
    )
    op.create_index(op.f("ix_subject_access_log_person_id"), "subject_access_log", ["person_id"])
    # Append-only like the registry's access log: an audit row is never changed or removed by the service.
    op.execute(
        "CREATE FUNCTION subject_access_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN RAISE EXCEPTION 'subject_access_log is append-only'; END $$"
    )
    op.execute(
        "CREATE TRIGGER subject_access_log_append_only BEFORE UPDATE OR DELETE ON subject_access_log "
        "FOR EACH ROW EXECUTE FUNCTION subject_access_log_append_only()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER subject_access_log_append_only ON subject_access_log")
    op.execute("DROP FUNCTION subject_access_log_append_only()")
    op.drop_table("subject_access_log")
