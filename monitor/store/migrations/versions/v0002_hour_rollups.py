"""Hourly rollups per dataset × event name × source.

Revision ID: 0002
Revises: 0001
Create Date: 2025-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "hour_rollups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.String(), nullable=False),
        sa.Column("event_name", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("hour", sa.BigInteger(), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("failed", sa.BigInteger(), nullable=False),
        sa.Column("with_event_id", sa.BigInteger(), nullable=False),
        sa.Column("key_counts", sa.JSON(), nullable=False),
        sa.Column("latency_hist", sa.JSON(), nullable=False),
        sa.Column("error_codes", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hour_rollups")),
        sa.UniqueConstraint(
            "dataset_id",
            "event_name",
            "source",
            "hour",
            name=op.f("uq_hour_rollups_dataset_id_event_name_source_hour"),
        ),
    )
    op.create_index(op.f("ix_hour_rollups_dataset_id_hour"), "hour_rollups", ["dataset_id", "hour"])
    op.create_index(op.f("ix_hour_rollups_hour"), "hour_rollups", ["hour"])


def downgrade() -> None:
    op.drop_index(op.f("ix_hour_rollups_hour"), table_name="hour_rollups")
    op.drop_index(op.f("ix_hour_rollups_dataset_id_hour"), table_name="hour_rollups")
    op.drop_table("hour_rollups")
