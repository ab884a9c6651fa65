"""Render an ``AuditReport`` as one self-contained HTML page (Jinja2).

The page must open offline, print to PDF and be mailable as an attachment, so the
templates carry their CSS inline and reference nothing outside the document. Every string
that comes from logs (event names, messages, examples, file and dataset names) reaches the
page only through Jinja's autoescape; nothing here marks such data as safe.

The environment and its filters live in ``monitor.report.format`` (shared with notify).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from monitor.model.findings import CheckResult, Finding, Severity, Status
from monitor.model.results import AuditReport, DatasetReport
from monitor.report.format import environment

TOP_PROBLEMS = 3
# Problems listed outside the <details> fold: a printed page shows these (a closed
# <details> prints closed in most browsers), the rest stay one click away on screen.
PROBLEMS_SHOWN = 10


# --- view model ------------------------------------------------------------------------

RECONCILE = "reconcile"
# The funnel's stages as the JSON names them (docs/contracts.md §8), and as people read them.
FUNNEL_COLUMNS = (
    ("orders_paid", "Paid orders"),
    ("purchases_sent", "Purchases sent"),
    ("purchases_accepted", "Accepted by Meta"),
    ("meta_server", "Meta server"),
    ("meta_browser", "Meta browser"),
)


@dataclass(frozen=True, slots=True)
class ReconcileView:
    """The reconciliation section of a dataset: the check's result, its per-day funnel
    and, when orders were read, the funnel as a chart (a ``data:`` PNG)."""

    result: CheckResult
    funnel: list[dict[str, Any]]
    chart_uri: str | None

    @property
    def metrics(self) -> Mapping[str, Any]:
        return self.result.metrics or {}


def reconcile_view(ds: DatasetReport, *, chart: bool = True) -> ReconcileView | None:
    """What the page shows of ``reconcile``: nothing when it was skipped (no orders
    source); the funnel chart only when paid orders were read."""
    result = next((c for c in ds.checks if c.id == RECONCILE), None)
    if result is None or result.status is Status.SKIPPED:
        return None
    funnel = list(ds.funnel or [])
    uri = None
    if chart and any(row.get("orders_paid") is not None for row in funnel):
        uri = funnel_chart_uri(funnel)
    return ReconcileView(result, funnel, uri)


def funnel_chart_uri(funnel: Sequence[Mapping[str, Any]]) -> str:
    """The per-day funnel as a PNG ``data:`` URI (matplotlib loads only when needed)."""
    from monitor.report import charts

    labels = [str(row["day"])[5:] for row in funnel]  # "11-19"
    stages = {name: [row.get(key) for row in funnel] for key, name in FUNNEL_COLUMNS}
    chart = charts.Chart("funnel", "", "", charts.funnel_chart(labels, stages))
    return chart.data_uri


@dataclass(frozen=True, slots=True)
class DatasetView:
    """A dataset plus what the template would otherwise compute in Jinja."""

    ds: DatasetReport
    anchor: str  # "ds-3": never derived from the (log-controlled) dataset id
    findings: list[Finding]
    severity_counts: dict[str, int]  # number of findings per severity value
    top: list[Finding]
    reconcile: ReconcileView | None = None

    @property
    def title(self) -> str:
        return self.ds.name or self.ds.dataset_id


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Most severe first, then most affected, then by code for a stable order."""
    return sorted(findings, key=lambda f: (-f.severity.rank, -f.count, f.code))


def dataset_view(ds: DatasetReport, index: int) -> DatasetView:
    findings = sort_findings(ds.findings)
    counts = Counter(str(f.severity) for f in findings)
    return DatasetView(
        ds=ds,
        anchor=f"ds-{index}",
        findings=findings,
        severity_counts={str(s): counts.get(str(s), 0) for s in Severity},
        top=findings[:TOP_PROBLEMS],
        reconcile=reconcile_view(ds),
    )


def render_audit_html(report: AuditReport, *, title: str = "CAPI audit") -> str:
    """The audit as a complete, self-contained HTML document."""
    template = environment().get_template("audit.html.j2")
    views = [dataset_view(ds, i) for i, ds in enumerate(report.datasets, start=1)]
    return template.render(
        report=report,
        title=title,
        datasets=views,
        problems_shown=PROBLEMS_SHOWN,
        funnel_columns=FUNNEL_COLUMNS,
    )
