"""The store's tables, one module per area, all on the one ``metadata`` of ``core``.

Every area's module is imported here by name, so whoever reads ``metadata`` (the
``Store``, the migrations, the tests) sees every table; a new area adds its module here.
"""

from monitor.store.tables import alerts, core, daemon, fleet, graph, notify, orders, reports
from monitor.store.tables.core import metadata

__all__ = ["alerts", "core", "daemon", "fleet", "graph", "metadata", "notify", "orders", "reports"]
