"""Notification deliveries: one row per outbox notification × notifier.

Revision ID: 0004
Revises: 0003
Create Date: 2025-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "notify_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=False),
        sa.Column("notifier", sa.String(), nullable=False),
        sa.Column("target", sa.String(), nullable=True),
        sa.Column("min_severity", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=False),
        sa.Column("last_attempt_at", sa.Float(), nullable=True),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.Column("last_error_at", sa.Float(), nullable=True),
        sa.Column("sent_at", sa.Float(), nullable=True),
        sa.Column("external_ref", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(
            ["outbox_id"],
            ["outbox.id"],
            name=op.f("fk_notify_deliveries_outbox_id_outbox"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_deliveries")),
        sa.UniqueConstraint(
            "outbox_id", "notifier", name=op.f("uq_notify_deliveries_outbox_id_notifier")
        ),
    )
    op.create_index(
        op.f("ix_notify_deliveries_state_next_attempt_at"),
        "notify_deliveries",
        ["state", "next_attempt_at"],
    )
    op.create_index(
        op.f("ix_notify_deliveries_notifier_state"), "notify_deliveries", ["notifier", "state"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_notify_deliveries_notifier_state"), table_name="notify_deliveries")
    op.drop_index(
        op.f("ix_notify_deliveries_state_next_attempt_at"), table_name="notify_deliveries"
    )
    op.drop_table("notify_deliveries")
