"""Reconciliation with payments: orders and Purchases of the matching window, the range
each orders source covers, and the hourly funnel (docs/contracts.md §8).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "order_facts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("order_id", sa.String(), nullable=False),
        sa.Column("keys", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("amount", sa.String(), nullable=True),
        sa.Column("currency", sa.String(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("paid", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_facts")),
    )
    op.create_index(
        op.f("ix_order_facts_source_created_at"), "order_facts", ["source", "created_at"]
    )
    op.create_table(
        "order_cursors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("covered_from", sa.Float(), nullable=False),
        sa.Column("covered_until", sa.Float(), nullable=False),
        sa.Column("read_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_cursors")),
        sa.UniqueConstraint("source", name=op.f("uq_order_cursors_source")),
    )
    op.create_table(
        "purchase_facts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.String(), nullable=False),
        sa.Column("order_key", sa.String(), nullable=True),
        sa.Column("event_id", sa.String(), nullable=True),
        sa.Column("event_time", sa.Float(), nullable=False),
        sa.Column("value", sa.String(), nullable=True),
        sa.Column("currency", sa.String(), nullable=True),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("file", sa.String(), nullable=False),
        sa.Column("line", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purchase_facts")),
    )
    op.create_index(
        op.f("ix_purchase_facts_dataset_id_event_time"),
        "purchase_facts",
        ["dataset_id", "event_time"],
    )
    op.create_table(
        "funnel_hours",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.String(), nullable=False),
        sa.Column("hour", sa.BigInteger(), nullable=False),
        sa.Column("orders_paid", sa.BigInteger(), nullable=True),
        sa.Column("purchases_sent", sa.BigInteger(), nullable=False),
        sa.Column("purchases_accepted", sa.BigInteger(), nullable=False),
        sa.Column("purchases_unconfirmed", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_funnel_hours")),
        sa.UniqueConstraint("dataset_id", "hour", name=op.f("uq_funnel_hours_dataset_id_hour")),
    )
    op.create_index(op.f("ix_funnel_hours_hour"), "funnel_hours", ["hour"])


def downgrade() -> None:
    op.drop_index(op.f("ix_funnel_hours_hour"), table_name="funnel_hours")
    op.drop_table("funnel_hours")
    op.drop_index(op.f("ix_purchase_facts_dataset_id_event_time"), table_name="purchase_facts")
    op.drop_table("purchase_facts")
    op.drop_table("order_cursors")
    op.drop_index(op.f("ix_order_facts_source_created_at"), table_name="order_facts")
    op.drop_table("order_facts")
