"""Store tables of the daemon area, on the shared ``metadata`` of ``monitor.store.tables.core``
(same conventions: Unix-seconds floats, string enums, JSON columns, no customer data).

- ``log_cursors``: how far each watched log file has been read (``monitor.sources.logs.tail``).
  One row per file *incarnation*: a file that is truncated, replaced or deleted gets its
  row retired (``retired_at``) and, if it goes on, a new row. Retired rows are kept for a
  while so that a copy or a compressed archive of a file already read is recognised by
  its head fingerprint.
- ``job_runs``: one row per scheduled job run (``monitor.daemon.jobs``), for ``status``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Index
from sqlmodel import Field

from monitor.store.tables.core import StoreModel


class LogCursor(StoreModel, table=True):
    """The read position of one incarnation of one log file.

    Identity is ``(device, inode)`` while the row is active (``retired_at`` is null);
    ``path`` is where the file was last seen (it follows renames). ``offset`` is the
    number of bytes consumed (decompressed bytes for a gzip file), always at a line
    boundary, and ``line`` the physical lines consumed. ``fingerprint`` is the sha256 (hex)
    of the first ``head_bytes`` bytes of the (decompressed) content, ``head_bytes`` being
    at most 1 KiB: it tells a file that was truncated or replaced under the same inode,
    and recognises copies and archives. ``size`` is the on-disk size at the last read.
    """

    __tablename__ = "log_cursors"
    __table_args__ = (
        Index(None, "device", "inode"),
        Index(None, "retired_at"),
        Index(None, "instance"),
    )

    id: int | None = Field(default=None, primary_key=True)
    path: str
    dataset_id: str | None = None  # the dataset whose ``logs`` glob first matched the file
    device: int = Field(sa_type=BigInteger)
    inode: int = Field(sa_type=BigInteger)
    compressed: bool = False
    offset: int = Field(default=0, sa_type=BigInteger)
    line: int = Field(default=0, sa_type=BigInteger)
    size: int = Field(default=0, sa_type=BigInteger)
    head_bytes: int = 0
    fingerprint: str
    created_at: float
    updated_at: float
    retired_at: float | None = None
    instance: str | None = None  # the instance that reads the file (None: not yet claimed)


class JobRun(StoreModel, table=True):
    """One run of one daemon job: when, whether it worked, what it did.

    ``error`` is one scrubbed line (no token, webhook URL or customer data); ``counters``
    maps counter names to numbers (lines read, alerts fired, notifications sent...).
    """

    __tablename__ = "job_runs"
    __table_args__ = (Index(None, "job", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    job: str
    started_at: float
    finished_at: float
    ok: bool
    error: str | None = None
    counters: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    instance: str | None = None  # the instance that ran it (None: before fleet mode)
