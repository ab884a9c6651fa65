"""Hourly rollups count events and match keys per action_source (match_quality).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # Rows written before this revision have no per-source counts: an empty mapping,
    # which the match_quality window reads as "no events of any source" for that hour.
    with op.batch_alter_table("hour_rollups") as batch:
        batch.add_column(
            sa.Column("source_keys", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )


def downgrade() -> None:
    with op.batch_alter_table("hour_rollups") as batch:
        batch.drop_column("source_keys")
