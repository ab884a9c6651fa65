"""Reports: render audit results for people (HTML page, terminal summary).

``html`` turns an ``AuditReport`` into one self-contained page from the Jinja templates in
the top-level ``templates/`` folder; ``console`` prints the short summary after an audit.
Both only read results; they never touch sources, checks or the store.
"""

from monitor.report.console import print_summary
from monitor.report.html import environment, render_audit_html, template_dir

__all__ = ["environment", "print_summary", "render_audit_html", "template_dir"]
