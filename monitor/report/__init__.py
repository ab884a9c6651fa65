"""Reports: render results for people (HTML pages, terminal summary, the weekly audit).

``format`` holds the Jinja environment over the package's templates and the formatting
filters (shared with ``notify``); ``html`` turns an ``AuditReport`` into one
self-contained page; ``console`` prints the short summary after an audit; ``weekly``
reads a week from the store and renders the weekly audit pages. Reports read results and
the store; they never touch sources or checks.
"""

from monitor.report.console import print_summary
from monitor.report.format import environment, template_dir
from monitor.report.html import render_audit_html

__all__ = ["environment", "print_summary", "render_audit_html", "template_dir"]
