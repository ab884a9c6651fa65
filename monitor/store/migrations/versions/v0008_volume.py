"""Hourly rollups keep the value sums of Purchase-like events (VALUE_DRIFT).

Revision ID: 0008
Revises: 0007
Create Date: 2025-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # Batch mode: SQLite cannot add NOT NULL columns in place. Rows written before this
    # revision had no value sums: 0 events with a value, which VALUE_DRIFT reads as
    # "no value history" (its days need events with a value), never as a zero value.
    with op.batch_alter_table("hour_rollups") as batch:
        batch.add_column(
            sa.Column("value_sum", sa.Float(), nullable=False, server_default=sa.text("0"))
        )
        batch.add_column(
            sa.Column("value_count", sa.BigInteger(), nullable=False, server_default=sa.text("0"))
        )


def downgrade() -> None:
    with op.batch_alter_table("hour_rollups") as batch:
        batch.drop_column("value_count")
        batch.drop_column("value_sum")
