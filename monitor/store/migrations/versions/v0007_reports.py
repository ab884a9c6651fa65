"""Weekly report claims: one row per reported week, so no week is sent twice.

Revision ID: 0007
Revises: 0006
Create Date: 2025-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "report_claims",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("week", sa.String(), nullable=False),
        sa.Column("claimed_at", sa.Float(), nullable=False),
        sa.Column("claimed_by", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("sent_at", sa.Float(), nullable=True),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("deliveries", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_claims")),
        sa.UniqueConstraint("week", name=op.f("uq_report_claims_week")),
    )
    op.create_index(op.f("ix_report_claims_state"), "report_claims", ["state"])


def downgrade() -> None:
    op.drop_index(op.f("ix_report_claims_state"), table_name="report_claims")
    op.drop_table("report_claims")
