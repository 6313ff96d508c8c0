"""webhook signing secrets sealed at rest (AES-GCM under the webhook secret key); rows written before are sealed
here with the key the migration runs under

Revision ID: rep0007
Revises: rep0006
Create Date: 2026-12-02 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "rep0007"
down_revision: str | None = "rep0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _reseal(source: str, target: str, *, seal: bool) -> None:
    from reporting.config import Settings
    from reporting.streams import domain

    key = domain.secret_sealing_key(Settings().webhook_secret_key)
    op.add_column("webhook_secret", sa.Column(target, sa.Text(), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(sa.text(f"SELECT id, subscription_id, {source} FROM webhook_secret")).all()
    for row_id, sub_id, value in rows:
        new = domain.seal_secret(key, sub_id, value) if seal else domain.open_secret(key, sub_id, value)
        bind.execute(
            sa.text(f"UPDATE webhook_secret SET {target} = :value WHERE id = :id"), {"value": new, "id": row_id}
        )
    op.alter_column("webhook_secret", target, nullable=False)
    op.drop_column("webhook_secret", source)


def upgrade() -> None:
    _reseal("secret", "sealed_secret", seal=True)


def downgrade() -> None:
    _reseal("sealed_secret", "secret", seal=False)
