"""A fake Graph API for tests, demos and benchmarks (a real HTTP server on 127.0.0.1).

    with FakeGraph({"1234567890": "server_missing"}, latency=0.2, token="t") as fg:
        ...  # point [meta] graph_url at fg.url

``python -m monitor.testing.fakegraph --help`` runs it in the foreground. Scenario names and what
they simulate are listed in ``scenarios.ScenarioKind``.
"""

from monitor.testing.fakegraph.scenarios import Scenario, ScenarioKind
from monitor.testing.fakegraph.server import FakeGraph, RecordedRequest

__all__ = ["FakeGraph", "RecordedRequest", "Scenario", "ScenarioKind"]
