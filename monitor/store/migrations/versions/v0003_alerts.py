"""Alerts area: alert states, silences and the notification outbox.

Revision ID: 0003
Revises: 0002
Create Date: 2025-11-29
"""

from __future__ import annotations

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
