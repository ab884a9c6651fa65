"""Fleet mode: instances, their standing verdicts, leases; rollups, cursors and job runs
belong to an instance; fleet alerts have no dataset.

Revision ID: 0010
Revises: 0009
Create Date: 2026-05-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None

_OLD_ROLLUP_KEY = "uq_hour_rollups_dataset_id_event_name_source_hour"
_NEW_ROLLUP_KEY = "uq_hour_rollups_dataset_id_event_name_source_hour_instance"


def upgrade() -> None:
    op.create_table(
        "instances",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("host", sa.String(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("heartbeat_at", sa.Float(), nullable=False),
        sa.Column("last_report_at", sa.Float(), nullable=True),
        sa.Column("stopped_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instances")),
        sa.UniqueConstraint("name", name=op.f("uq_instances_name")),
    )
    op.create_table(
        "instance_checks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instance", sa.String(), nullable=False),
        sa.Column("dataset_id", sa.String(), nullable=False),
        sa.Column("check_id", sa.String(), nullable=False),
        sa.Column("evaluated_at", sa.Float(), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instance_checks")),
        sa.UniqueConstraint(
            "instance",
            "dataset_id",
            "check_id",
            name=op.f("uq_instance_checks_instance_dataset_id_check_id"),
        ),
    )
    op.create_index(
        op.f("ix_instance_checks_dataset_id_evaluated_at"),
        "instance_checks",
        ["dataset_id", "evaluated_at"],
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("holder", sa.String(), nullable=False),
        sa.Column("acquired_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    # Rows written before fleet mode are the single instance's: "" (rollups), or not yet
    # claimed (cursors: the first instance to run takes them over).
    with op.batch_alter_table("hour_rollups") as batch:
        batch.add_column(
            sa.Column("instance", sa.String(), nullable=False, server_default=sa.text("''"))
        )
        batch.drop_constraint(_OLD_ROLLUP_KEY, type_="unique")
        batch.create_unique_constraint(
            _NEW_ROLLUP_KEY, ["dataset_id", "event_name", "source", "hour", "instance"]
        )
    with op.batch_alter_table("log_cursors") as batch:
        batch.add_column(sa.Column("instance", sa.String(), nullable=True))
        batch.create_index(op.f("ix_log_cursors_instance"), ["instance"])
    with op.batch_alter_table("job_runs") as batch:
        batch.add_column(sa.Column("instance", sa.String(), nullable=True))
    with op.batch_alter_table("alerts") as batch:
        batch.alter_column("dataset_id", existing_type=sa.String(), nullable=True)
        batch.add_column(sa.Column("instance", sa.String(), nullable=True))
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column("dataset_id", existing_type=sa.String(), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM outbox WHERE dataset_id IS NULL")
    op.execute("DELETE FROM alerts WHERE dataset_id IS NULL")
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column("dataset_id", existing_type=sa.String(), nullable=False)
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("instance")
        batch.alter_column("dataset_id", existing_type=sa.String(), nullable=False)
    with op.batch_alter_table("job_runs") as batch:
        batch.drop_column("instance")
    with op.batch_alter_table("log_cursors") as batch:
        batch.drop_index(op.f("ix_log_cursors_instance"))
        batch.drop_column("instance")
    with op.batch_alter_table("hour_rollups") as batch:
        batch.drop_constraint(_NEW_ROLLUP_KEY, type_="unique")
        batch.create_unique_constraint(
            _OLD_ROLLUP_KEY, ["dataset_id", "event_name", "source", "hour"]
        )
        batch.drop_column("instance")
    op.drop_table("leases")
    op.drop_index(op.f("ix_instance_checks_dataset_id_evaluated_at"), table_name="instance_checks")
    op.drop_table("instance_checks")
    op.drop_table("instances")
