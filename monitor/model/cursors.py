"""Log cursors as values: how far one incarnation of one log file has been read.

``monitor.sources.logs.tail`` works on these; ``monitor.store.cursors`` loads and saves
them (table ``log_cursors``, see ``monitor.store.tables.daemon.LogCursor`` for what each
field means). No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Identity = tuple[int, int]  # (st_dev, st_ino)


@dataclass(slots=True)
class Cursor:
    """Working copy of one ``log_cursors`` row; ``dirty`` marks it for saving."""

    path: str
    dataset_id: str | None
    device: int
    inode: int
    compressed: bool
    offset: int
    line: int
    size: int
    head_bytes: int
    fingerprint: str
    created_at: float
    updated_at: float
    retired_at: float | None = None
    id: int | None = None
    dirty: bool = field(default=False, compare=False)

    @property
    def identity(self) -> Identity:
        return (self.device, self.inode)

    @property
    def active(self) -> bool:
        return self.retired_at is None
