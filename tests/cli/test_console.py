"""The terminal summary after an audit: compact, complete enough, and markup-safe."""

from __future__ import annotations

import io

from rich.console import Console

from monitor.model.findings import CheckResult, Example, Finding, Severity, Status
from monitor.model.observations import ReadStats
from monitor.model.results import AuditReport, DatasetReport
from monitor.report.console import print_summary

T0 = 1795176000.0


def finding(code: str, severity: Severity, count: int, **kw: object) -> Finding:
    base: dict[str, object] = {"check": "payload", "message": f"{code} message", "remediation": ""}
    base.update(kw)
    return Finding(code=code, severity=severity, count=count, **base)  # type: ignore[arg-type]


def report(
    findings: list[Finding], *, malformed: int = 0, name: str | None = "Shop"
) -> AuditReport:
    checks = [
        CheckResult("payload", Status.CRIT, "issues", 40, findings),
        CheckResult("latency", Status.SKIPPED, "no send times"),
        CheckResult("delivery", Status.ERROR, "unreadable"),
        CheckResult("dedup", Status.OK, "fine", 100),
    ]
    ds = DatasetReport("1234567890", name, 64, checks, events=1500)
    stats = ReadStats(files=3, lines=1200, events=1500)
    for i in range(malformed):
        stats.problem("logs/capi.jsonl", 100 + i, "invalid JSON")
    return AuditReport(generated_at=T0, now=T0, inputs=stats, datasets=[ds])


def render(r: AuditReport, **kw: int) -> str:
    buf = io.StringIO()
    print_summary(r, Console(file=buf, width=100, force_terminal=False), **kw)
    return buf.getvalue()


def test_summary_shows_inputs_dataset_score_and_findings() -> None:
    out = render(
        report(
            [
                finding("HASH_PLAINTEXT", Severity.CRIT, 12, field="user_data.em",
                        event_names=["Purchase", "Lead"],
                        examples=[Example("a.jsonl", 1, "j***@e***.com")]),
                finding("MISSING_EVENT_ID", Severity.WARN, 300, event_names=["PageView"]),
            ],
            malformed=2,
        )
    )  # fmt: skip
    assert "Inputs: 3 files · 1,200 lines · 1,500 events · 2 malformed lines" in out
    assert "Shop (1234567890)" in out
    assert "health 64/100 (D)" in out
    assert "payload crit · latency skipped · delivery error · dedup ok" in out
    assert "CRIT HASH_PLAINTEXT ×12 · user_data.em · Purchase, Lead" in out
    assert "WARN MISSING_EVENT_ID ×300 · PageView" in out
    assert "HASH_PLAINTEXT message" in out
    assert "Malformed input: 2 lines, 0 events" in out
    assert "logs/capi.jsonl:100 — invalid JSON" in out
    assert "\x1b[" not in out  # no colour codes when not a terminal


def test_findings_sorted_and_truncated_with_hint() -> None:
    findings = [finding(f"CODE_{i}", Severity.WARN, i) for i in range(1, 8)]
    findings.append(finding("TOP_CRIT", Severity.CRIT, 1))
    out = render(report(findings), max_findings=3)
    shown = [line.split()[1] for line in out.splitlines() if line.startswith(("  CRIT", "  WARN"))]
    assert shown == ["TOP_CRIT", "CODE_7", "CODE_6"]
    assert "5 more findings — see --html/--json" in out
    assert "CODE_1" not in out


def test_no_hint_when_everything_fits() -> None:
    out = render(report([finding("ONLY", Severity.WARN, 1)]))
    assert "more finding" not in out
    assert "Malformed" not in out


def test_log_derived_markup_is_printed_literally() -> None:
    f = finding(
        "HASH_PLAINTEXT",
        Severity.CRIT,
        1,
        event_names=["[bold]Purchase[/bold]", ":fire:"],
        field="user_data.[red]em",
        message="value [link=x]click[/link] end\\",
    )
    r = report([f], malformed=1, name="[bold]Shop[/]")
    r.inputs.problems[0].reason = "bad [italic]json[/italic]"
    out = render(r)
    assert "[bold]Purchase[/bold], :fire:" in out
    assert "user_data.[red]em" in out
    assert "value [link=x]click[/link] end\\" in out
    assert "[bold]Shop[/] (1234567890)" in out
    assert "bad [italic]json[/italic]" in out


def test_many_problems_are_capped() -> None:
    out = render(report([], malformed=9))
    assert out.count("logs/capi.jsonl:") == 5
    assert "… and 4 more" in out
    assert "no findings" in out


def test_dataset_without_name_or_score() -> None:
    r = report([], name=None)
    r.datasets[0].health_score = None
    out = render(r)
    assert "1234567890 · health n/a" in out


def test_no_datasets() -> None:
    r = AuditReport(generated_at=T0, now=T0, inputs=ReadStats(), datasets=[])
    out = render(r)
    assert out.splitlines() == [
        "Inputs: 0 files · 0 lines · 0 events · 0 malformed lines · 0 malformed events",
        "No dataset audited.",
    ]
