"""The compact terminal summary printed after ``capi-monitor audit``.

The full picture lives in ``--html``/``--json``; this is what fits on one screen: inputs,
then per dataset its health, its check statuses and the worst few findings, then the
first malformed lines. Log-derived text (names, messages, file names) is passed through
``rich.markup.escape`` so that a ``[bold]`` in an event name prints literally instead of
restyling the terminal, and emoji codes (``:x:``) are not expanded either.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from monitor.model.findings import Finding
from monitor.model.observations import ReadStats
from monitor.model.results import AuditReport, DatasetReport
from monitor.report.format import grade
from monitor.report.html import sort_findings

MAX_PROBLEMS = 5
MAX_EVENT_NAMES = 3

# Styles by status/severity value; colours only show on a terminal (rich drops them
# when the output is a file or a pipe).
STYLES = {
    "crit": "bold red",
    "warn": "yellow",
    "info": "blue",
    "ok": "green",
    "skipped": "dim",
    "error": "magenta",
}


def _out(console: Console, text: str, *, one_line: bool = False) -> None:
    # emoji=False: ":fire:" in an event name must stay text; highlight=False: no guessed
    # colours on numbers inside log-derived strings.
    console.print(
        text,
        emoji=False,
        highlight=False,
        no_wrap=one_line,
        overflow="ellipsis" if one_line else None,
    )


def _styled(value: str, key: str | None = None) -> str:
    """``value`` escaped and wrapped in the style of ``key`` (defaults to the value)."""
    style = STYLES.get(key or value)
    text = escape(value)
    return f"[{style}]{text}[/]" if style else text


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def inputs_line(stats: ReadStats) -> str:
    """``Inputs: 3 files · 120 lines · 400 events · 2 malformed lines · 0 malformed events``."""
    parts = [
        _plural(stats.files, "file"),
        _plural(stats.lines, "line"),
        _plural(stats.events, "event"),
    ]
    for n, word in (
        (stats.malformed_lines, "malformed line"),
        (stats.malformed_events, "malformed event"),
    ):
        parts.append(_styled(_plural(n, word), "warn") if n else _plural(n, word))
    senders = {k: v for k, v in stats.formats.items() if k != "v1" and v}
    if senders:  # sender formats: what was read, and what was not a delivery
        parts.append(", ".join(f"{escape(k)} {n:,}" for k, n in sorted(senders.items())))
        skipped = stats.skipped_lines
        parts.append(f"{skipped:,} skipped {'entry' if skipped == 1 else 'entries'}")
        if stats.unpaired_responses:
            parts.append(_plural(stats.unpaired_responses, "unpaired response"))
    return "[bold]Inputs:[/] " + " · ".join(parts)


def dataset_header(ds: DatasetReport) -> str:
    """Name (id), owner/client, health score with grade, overall status, event count."""
    label = escape(ds.name) + f" ({escape(ds.dataset_id)})" if ds.name else escape(ds.dataset_id)
    extra = [escape(f"{k}: {v}") for k, v in (("owner", ds.owner), ("client", ds.client)) if v]
    if ds.health_score is None:
        health = "health n/a"
    else:
        health = f"health [bold]{ds.health_score}[/]/100 ({grade(ds.health_score)})"
    parts = [
        f"[bold]{label}[/]",
        *extra,
        health,
        _styled(str(ds.status)),
        _plural(ds.events, "event"),
    ]
    return " · ".join(parts)


def checks_line(ds: DatasetReport) -> str:
    """``checks: hash_validity ok · payload warn · latency skipped`` (status coloured)."""
    if not ds.checks:
        return "  [dim]checks: none ran[/]"
    items = [f"{escape(c.id)} {_styled(str(c.status))}" for c in ds.checks]
    return "  checks: " + " · ".join(items)


def finding_lines(f: Finding) -> tuple[str, str]:
    """Two lines: severity, code, count, field, event names; then the message."""
    sev = str(f.severity)
    head = f"  {_styled(f'{sev.upper():<4}', sev)} [bold]{escape(f.code)}[/] ×{f.count:,}"
    if f.field:
        head += f" · {escape(f.field)}"
    if f.event_names:
        names = ", ".join(f.event_names[:MAX_EVENT_NAMES])
        more = len(f.event_names) - MAX_EVENT_NAMES
        head += " · " + escape(names) + (f" +{more:,} more" if more > 0 else "")
    # Messages may span lines; the console shows the first one, whole text is in --html.
    message = " ".join(f.message.split())
    return head, f"       [dim]{escape(message)}[/]"


def print_dataset(ds: DatasetReport, console: Console, *, max_findings: int) -> None:
    _out(console, dataset_header(ds))
    _out(console, checks_line(ds))
    findings = sort_findings(ds.findings)
    if not findings:
        _out(console, "  [green]no findings[/]")
    for f in findings[:max_findings]:
        head, message = finding_lines(f)
        _out(console, head)
        _out(console, message, one_line=True)
    hidden = len(findings) - max_findings
    if hidden > 0:
        noun = "finding" if hidden == 1 else "findings"
        _out(console, f"  [dim]{hidden:,} more {noun} — see --html/--json[/]")


def print_problems(stats: ReadStats, console: Console) -> None:
    total = stats.malformed_lines + stats.malformed_events
    if not total:
        return
    counts = f"{_plural(stats.malformed_lines, 'line')}, {_plural(stats.malformed_events, 'event')}"
    _out(console, f"{_styled('Malformed input:', 'warn')} {counts}")
    for p in stats.problems[:MAX_PROBLEMS]:
        _out(console, f"  {escape(p.file)}:{p.line} — {escape(p.reason)}", one_line=True)
    hidden = total - min(len(stats.problems), MAX_PROBLEMS)
    if hidden > 0:
        _out(console, f"  [dim]… and {hidden:,} more — see --html/--json[/]")


def print_summary(report: AuditReport, console: Console, *, max_findings: int = 5) -> None:
    """Print the audit in a few lines per dataset; at most ``max_findings`` per dataset."""
    _out(console, inputs_line(report.inputs))
    if not report.datasets:
        _out(console, "[dim]No dataset audited.[/]")
    for ds in report.datasets:
        console.print()
        print_dataset(ds, console, max_findings=max_findings)
    if report.inputs.malformed_lines or report.inputs.malformed_events:
        console.print()
        print_problems(report.inputs, console)
