"""Audit runs record the send-time span of the data their checks judged (weekly report).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # Runs stored before this revision have no span: the report places them by their
    # clock (``now``), as it always did.
    with op.batch_alter_table("audit_runs") as batch:
        batch.add_column(sa.Column("data_from", sa.Float(), nullable=True))
        batch.add_column(sa.Column("data_to", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_runs") as batch:
        batch.drop_column("data_to")
        batch.drop_column("data_from")
