"""Hourly rollups keep the latest send time of their events (a sender gone silent).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # Rows written before this revision do not know it (0): silence in their hours is
    # measured from the hour's end, as it was before.
    with op.batch_alter_table("hour_rollups") as batch:
        batch.add_column(
            sa.Column("last_sent", sa.Float(), nullable=False, server_default=sa.text("0"))
        )


def downgrade() -> None:
    with op.batch_alter_table("hour_rollups") as batch:
        batch.drop_column("last_sent")
