"""Graph API snapshots: hourly source counts, quality readings and diagnostics per poll.

Revision ID: 0006
Revises: 0005
Create Date: 2025-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "graph_source_counts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.String(), nullable=False),
        sa.Column("event_name", sa.String(), nullable=False),
        sa.Column("hour", sa.BigInteger(), nullable=False),
        sa.Column("browser", sa.BigInteger(), nullable=False),
        sa.Column("server", sa.BigInteger(), nullable=False),
        sa.Column("other", sa.JSON(), nullable=False),
        sa.Column("polled_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_graph_source_counts")),
        sa.UniqueConstraint(
            "dataset_id",
            "event_name",
            "hour",
            name=op.f("uq_graph_source_counts_dataset_id_event_name_hour"),
        ),
    )
    op.create_index(
        op.f("ix_graph_source_counts_dataset_id_hour"),
        "graph_source_counts",
        ["dataset_id", "hour"],
    )
    op.create_table(
        "graph_quality",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.String(), nullable=False),
        sa.Column("event_name", sa.String(), nullable=False),
        sa.Column("polled_at", sa.Float(), nullable=False),
        sa.Column("composite_score", sa.Float(), nullable=True),
        sa.Column("match_key_coverage", sa.JSON(), nullable=False),
        sa.Column("coverage_pct", sa.Float(), nullable=True),
        sa.Column("coverage_goal_pct", sa.Float(), nullable=True),
        sa.Column("dedupe", sa.JSON(), nullable=True),
        sa.Column("upload_frequency", sa.String(), nullable=True),
        sa.Column("acr_pct", sa.Float(), nullable=True),
        sa.Column("diagnostics", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_graph_quality")),
        sa.UniqueConstraint(
            "dataset_id",
            "event_name",
            "polled_at",
            name=op.f("uq_graph_quality_dataset_id_event_name_polled_at"),
        ),
    )
    op.create_index(
        op.f("ix_graph_quality_dataset_id_polled_at"),
        "graph_quality",
        ["dataset_id", "polled_at"],
    )
    op.create_table(
        "graph_polls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.String(), nullable=False),
        sa.Column("polled_at", sa.Float(), nullable=False),
        sa.Column("window_start", sa.Float(), nullable=False),
        sa.Column("window_end", sa.Float(), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("da_checks", sa.JSON(), nullable=True),
        sa.Column("token", sa.JSON(), nullable=True),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("usage", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_graph_polls")),
        sa.UniqueConstraint(
            "dataset_id", "polled_at", name=op.f("uq_graph_polls_dataset_id_polled_at")
        ),
    )
    op.create_index(op.f("ix_graph_polls_polled_at"), "graph_polls", ["polled_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_graph_polls_polled_at"), table_name="graph_polls")
    op.drop_table("graph_polls")
    op.drop_index(op.f("ix_graph_quality_dataset_id_polled_at"), table_name="graph_quality")
    op.drop_table("graph_quality")
    op.drop_index(op.f("ix_graph_source_counts_dataset_id_hour"), table_name="graph_source_counts")
    op.drop_table("graph_source_counts")
