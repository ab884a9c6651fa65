"""Store tables of the notify area, on the shared ``metadata`` of ``monitor.store.tables.core``
(same conventions: Unix-seconds floats, string enums, JSON columns, no customer data).

One ``notify_deliveries`` row per (outbox row, notifier): the outbox row says *what* to
tell (written by the alert lifecycle), the delivery row tracks *whether this notifier has
told it yet*. ``monitor.notify.sender.OutboxSender`` creates and advances these rows.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import Column, ForeignKey, Index, Integer, UniqueConstraint
from sqlmodel import Field

from monitor.store.tables.core import StoreModel


class DeliveryState(StrEnum):
    """Where one delivery stands. ``sent``, ``failed`` and ``skipped`` are final."""

    PENDING = "pending"  # to send at next_attempt_at (new, or after a transient failure)
    # A send was started and its outcome is unknown (the process died during the call, or
    # the answer was lost): the next attempt first asks the service whether it arrived.
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"  # permanent failure, or gave up after [notify] give_up_after
    SKIPPED = "skipped"  # not routed to this notifier (severity, route); last_error says why


class NotifyDelivery(StoreModel, table=True):
    """One notification (an ``outbox`` row) for one notifier.

    ``target`` is the routed destination when a route overrides the notifier's default (a
    Slack channel, or comma-separated email addresses); ``min_severity`` is the threshold
    decided at routing time (alerts below it are left out of the message).
    ``last_error`` is scrubbed (no token, webhook URL or password, no customer data).
    ``external_ref`` is the service's id of the message: a Slack ``ts`` or an email
    ``Message-ID``.
    """

    __tablename__ = "notify_deliveries"
    __table_args__ = (
        UniqueConstraint("outbox_id", "notifier"),
        Index(None, "state", "next_attempt_at"),
        Index(None, "notifier", "state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # Deliveries die with their outbox row (pruning old notifications is one DELETE).
    outbox_id: int = Field(
        sa_column=Column(Integer, ForeignKey("outbox.id", ondelete="CASCADE"), nullable=False)
    )
    notifier: str
    target: str | None = None
    min_severity: str = "warn"  # a monitor.model.findings.Severity value
    state: str = DeliveryState.PENDING.value  # a DeliveryState value
    attempts: int = 0
    created_at: float
    next_attempt_at: float
    last_attempt_at: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    sent_at: float | None = None
    external_ref: str | None = None
