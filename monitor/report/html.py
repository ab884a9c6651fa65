"""Render an ``AuditReport`` as one self-contained HTML page (Jinja2).

The page must open offline, print to PDF and be mailable as an attachment, so the
templates carry their CSS inline and reference nothing outside the document. Every string
that comes from logs (event names, messages, examples, file and dataset names) reaches the
page only through Jinja's autoescape; nothing here marks such data as safe.

The environment and its filters live in ``monitor.report.format`` (shared with notify).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from monitor.model.findings import Finding, Severity
from monitor.model.results import AuditReport, DatasetReport
from monitor.report.format import environment

TOP_PROBLEMS = 3
# Problems listed outside the <details> fold: a printed page shows these (a closed
# <details> prints closed in most browsers), the rest stay one click away on screen.
PROBLEMS_SHOWN = 10


# --- view model ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DatasetView:
    """A dataset plus what the template would otherwise compute in Jinja."""

    ds: DatasetReport
    anchor: str  # "ds-3": never derived from the (log-controlled) dataset id
    findings: list[Finding]
    severity_counts: dict[str, int]  # number of findings per severity value
    top: list[Finding]

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
    )
