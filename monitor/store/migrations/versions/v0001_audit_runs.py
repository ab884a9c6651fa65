"""Audit runs, check results and findings.

Revision ID: 0001
Revises:
Create Date: 2025-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _run_id(table: str) -> sa.Column[int]:
    fk_name = op.f(f"fk_{table}_run_id_audit_runs")
    fk = sa.ForeignKey("audit_runs.id", name=fk_name, ondelete="CASCADE")
    return sa.Column("run_id", sa.Integer(), fk, nullable=False)


def upgrade() -> None:
    op.create_table(
        "audit_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("generated_at", sa.Float(), nullable=False),
        sa.Column("now", sa.Float(), nullable=False),
        sa.Column("since", sa.Float(), nullable=True),
        sa.Column("until", sa.Float(), nullable=True),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("datasets", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_runs")),
    )
    op.create_index(op.f("ix_audit_runs_generated_at"), "audit_runs", ["generated_at"])
    op.create_table(
        "check_results",
        sa.Column("id", sa.Integer(), nullable=False),
        _run_id("check_results"),
        sa.Column("dataset_id", sa.String(), nullable=False),
        sa.Column("check_id", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("summary", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_check_results")),
        sa.UniqueConstraint(
            "run_id",
            "dataset_id",
            "check_id",
            name=op.f("uq_check_results_run_id_dataset_id_check_id"),
        ),
    )
    op.create_table(
        "findings",
        sa.Column("id", sa.Integer(), nullable=False),
        _run_id("findings"),
        sa.Column("dataset_id", sa.String(), nullable=False),
        sa.Column("check_id", sa.String(), nullable=False),
        sa.Column("code", sa.String(), nullable=False),
        sa.Column("severity", sa.String(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("event_names", sa.JSON(), nullable=False),
        sa.Column("field", sa.String(), nullable=True),
        sa.Column("examples", sa.JSON(), nullable=False),
        sa.Column("message", sa.String(), nullable=False),
        sa.Column("remediation", sa.String(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_findings")),
    )
    op.create_index(op.f("ix_findings_run_id"), "findings", ["run_id"])
    op.create_index(op.f("ix_findings_dataset_id_code"), "findings", ["dataset_id", "code"])


def downgrade() -> None:
    op.drop_table("findings")
    op.drop_table("check_results")
    op.drop_index(op.f("ix_audit_runs_generated_at"), table_name="audit_runs")
    op.drop_table("audit_runs")
