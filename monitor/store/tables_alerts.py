"""Store tables of the alerts area, on the shared ``metadata`` of ``monitor.store.tables``
(same conventions: Unix-seconds floats, string enums, JSON columns, no customer data)."""

from __future__ import annotations
