"""The audit HTML page: content, escaping of log-derived text, self-containment, structure."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import jinja2
import pytest

from monitor.model.findings import CheckResult, Example, Finding, Severity, Status
from monitor.model.observations import Problem, ReadStats
from monitor.model.results import AuditReport, DatasetReport
from monitor.report import format as report_format
from monitor.report.format import (
    environment,
    fmt_duration,
    fmt_number,
    fmt_percent,
    grade,
    template_dir,
)
from monitor.report.html import render_audit_html

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
T0 = 1795176000.0  # 2026-11-20T12:00:00Z


def finding(code: str, severity: Severity, count: int, **kw: object) -> Finding:
    base: dict[str, object] = {
        "check": "payload",
        "message": f"{code} message",
        "remediation": f"Fix {code} in the sender.",
    }
    base.update(kw)
    return Finding(code=code, severity=severity, count=count, **base)  # type: ignore[arg-type]


def sample_report(*, problems: int = 2) -> AuditReport:
    plaintext = finding(
        "HASH_PLAINTEXT",
        Severity.CRIT,
        12,
        check="hash_validity",
        field="user_data.em",
        event_names=["Purchase", "Lead"],
        examples=[Example("logs/capi.jsonl", 3, "j***@e***.com")],
        message="12 events carry a clear-text email in user_data.em.",
        remediation="Normalise and SHA-256 hash em before sending.",
    )
    checks = [
        CheckResult("hash_validity", Status.CRIT, "12 of 40 events hash badly", 40, [plaintext]),
        CheckResult(
            "payload",
            Status.WARN,
            "2 issues",
            85,
            [
                finding("MISSING_EVENT_SOURCE_URL", Severity.WARN, 3, event_names=["ViewContent"]),
                finding("TEST_EVENT_CODE_PRESENT", Severity.WARN, 30),
                finding("NONSTANDARD_EVENT_NAME", Severity.INFO, 1),
            ],
        ),
        CheckResult("dedup", Status.OK, "every event has an event_id", 100),
        CheckResult("latency", Status.SKIPPED, "no send times in the logs"),
        CheckResult("parity", Status.ERROR, "Graph API unreachable"),
        CheckResult(
            "match_quality",
            Status.WARN,
            "estimated coverage 4.1/10",
            41,
            [finding("MATCH_KEY_COVERAGE_LOW", Severity.WARN, 40, check="match_quality")],
        ),
    ]
    shop = DatasetReport(
        "1234567890", "Example shop", 73, checks, events=40, owner="Ops team", client="ACME"
    )
    empty = DatasetReport("999", None, None, [CheckResult("payload", Status.SKIPPED, "no events")])
    stats = ReadStats(files=2, lines=41, events=40)
    for i in range(problems):
        stats.problem("logs/bad.jsonl", 10 + i, "invalid JSON")
    return AuditReport(generated_at=T0 + 5, now=T0, inputs=stats, datasets=[shop, empty])


def hostile_report() -> AuditReport:
    """Log-controlled text everywhere a report shows it."""
    evil = finding(
        "HASH_PLAINTEXT",
        Severity.CRIT,
        2,
        check="hash_validity",
        field=IMG,
        event_names=[SCRIPT, IMG],
        examples=[Example(f"logs/{SCRIPT}.jsonl", 7, IMG)],
        message=f"bad value {SCRIPT}",
        remediation=f"fix {IMG}",
    )
    check = CheckResult("hash_validity", Status.CRIT, f"summary {SCRIPT}", 10, [evil])
    ds = DatasetReport(IMG, SCRIPT, 10, [check], owner=SCRIPT, client=IMG)
    stats = ReadStats(files=1, lines=3, events=2)
    stats.problem(f"{IMG}.jsonl", 2, f"reason {SCRIPT}")
    return AuditReport(generated_at=T0, now=T0, inputs=stats, datasets=[ds])


@pytest.fixture(scope="module")
def page() -> str:
    return render_audit_html(sample_report(), title="Weekly shop audit")


def test_page_shows_scores_checks_and_statuses(page: str) -> None:
    assert "<title>Weekly shop audit</title>" in page
    assert ">73<" in page  # health score inside the gauge
    assert 'class="grade grade-c"' in page
    for check_id, status in [
        ("hash_validity", "crit"),
        ("payload", "warn"),
        ("dedup", "ok"),
        ("latency", "skipped"),
        ("parity", "error"),
    ]:
        assert f'data-check="{check_id}" data-status="{status}"' in page
    assert 'class="badge badge-skipped"' in page
    assert 'class="badge badge-error"' in page


def test_page_shows_findings_with_counts_fixes_and_examples(page: str) -> None:
    for code in ("HASH_PLAINTEXT", "MISSING_EVENT_SOURCE_URL", "MATCH_KEY_COVERAGE_LOW"):
        assert code in page
    assert "<strong>12</strong> affected" in page
    assert "How to fix" in page
    assert "Normalise and SHA-256 hash em before sending." in page
    assert "logs/capi.jsonl:3" in page
    assert "j***@e***.com" in page
    assert "user_data.em" in page
    assert "Owner: Ops team" in page and "Client: ACME" in page


def test_findings_are_ordered_by_severity_then_count(page: str) -> None:
    section = page[page.index('id="ds-1"') :]
    codes = re.findall(r'<code class="finding-code">(\w+)</code>', section)
    assert codes == [
        "HASH_PLAINTEXT",  # crit
        "MATCH_KEY_COVERAGE_LOW",  # warn, 40
        "TEST_EVENT_CODE_PRESENT",  # warn, 30
        "MISSING_EVENT_SOURCE_URL",  # warn, 3
        "NONSTANDARD_EVENT_NAME",  # info
    ]


def test_summary_lists_top_three_problems_per_dataset(page: str) -> None:
    summary = page[page.index('id="summary"') : page.index('id="inputs"')]
    assert "Example shop" in summary and 'href="#ds-1"' in summary
    top = re.findall(r"<li><span class=\"dot dot-\w+\"></span><code>(\w+)</code>", summary)
    assert top == ["HASH_PLAINTEXT", "MATCH_KEY_COVERAGE_LOW", "TEST_EVENT_CODE_PRESENT"]


def test_missing_score_and_name_show_na_and_id(page: str) -> None:
    section = page[page.index('id="ds-2"') :]
    assert "<h2>999</h2>" in section
    assert "n/a" in section
    assert "No findings" in section


def test_inputs_and_malformed_problems(page: str) -> None:
    inputs = page[page.index('id="inputs"') : page.index('id="ds-1"')]
    assert "Malformed lines" in inputs
    assert "logs/bad.jsonl:10</span> — invalid JSON" in inputs
    assert "<details" not in inputs  # two problems need no fold


def test_many_problems_fold_into_details() -> None:
    page = render_audit_html(sample_report(problems=25))
    inputs = page[page.index('id="inputs"') : page.index('id="ds-1"')]
    assert "<details" in inputs and "Show 15 more" in inputs
    assert "logs/bad.jsonl:34" in inputs


def test_match_quality_is_labelled_a_local_estimate(page: str) -> None:
    assert "local estimate" in page
    row = re.search(r'<tr [^>]*data-check="match_quality".*?</tr>', page, re.S)
    assert row is not None and "local estimate" in row.group(0)
    dedup = re.search(r'<tr [^>]*data-check="dedup".*?</tr>', page, re.S)
    assert dedup is not None and "local estimate" not in dedup.group(0)


def test_log_derived_text_is_escaped() -> None:
    page = render_audit_html(hostile_report(), title=SCRIPT)
    assert SCRIPT not in page
    assert IMG not in page
    assert "<img" not in page and "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    # Every place that shows the data: title, nav, summary, section, card, problems.
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 8


def test_page_is_self_contained(page: str) -> None:
    for text in (page, render_audit_html(hostile_report())):
        assert not re.search(r"https?://", text, re.I)
        assert "<script" not in text and "<link" not in text and "@import" not in text
        assert not re.search(r"url\(\s*['\"]?(?!data:)", text)
        # Only real attributes count: escaped text such as "&lt;img src=x" is harmless.
        links = LinkCollector()
        links.feed(text)
        assert links.targets, "expected in-page anchors"
        for attr, value in links.targets:
            assert value.startswith(("#", "data:")), (attr, value)


class LinkCollector(HTMLParser):
    """Collects the values of attributes that make a browser fetch or navigate."""

    ATTRS = frozenset({"src", "href", "xlink:href", "srcset", "action", "poster", "data"})

    def __init__(self) -> None:
        super().__init__()
        self.targets: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.targets += [(k, v or "") for k, v in attrs if k in self.ATTRS]


def test_templates_contain_no_urls_or_safe_filter() -> None:
    for path in template_dir().glob("*.j2"):
        source = path.read_text(encoding="utf-8")
        assert not re.search(r"https?://", source), path
        assert "|safe" not in source.replace(" ", ""), path


STRUCTURAL = {
    "html", "head", "body", "header", "nav", "main", "footer", "section", "article",
    "div", "table", "thead", "tbody", "tr", "td", "th", "ul", "li", "dl", "details",
    "summary", "svg", "style", "title", "h1", "h2", "h3", "p", "span", "code",
}  # fmt: skip


class TagBalance(HTMLParser):
    """Records structural tags that close out of order or never close."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in STRUCTURAL:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag not in STRUCTURAL:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else ''}>")
            return
        self.stack.pop()


@pytest.mark.parametrize("report", [sample_report(), sample_report(problems=30), hostile_report()])
def test_structural_tags_balance(report: AuditReport) -> None:
    parser = TagBalance()
    parser.feed(render_audit_html(report))
    parser.close()
    assert parser.errors == []
    assert parser.stack == []


def test_empty_report_renders() -> None:
    report = AuditReport(generated_at=T0, now=T0, inputs=ReadStats(), datasets=[])
    page = render_audit_html(report)
    assert "No dataset was audited" in page
    assert "Malformed input" not in page


def test_problem_list_notes_when_truncated() -> None:
    stats = ReadStats(max_problems=1)
    stats.problem("a.jsonl", 1, "not an object")
    stats.problem("a.jsonl", 2, "not an object", event=True)
    report = AuditReport(generated_at=T0, now=T0, inputs=stats, datasets=[])
    assert "1 of 2 problems are listed" in render_audit_html(report)
    assert [Problem("a.jsonl", 1, "not an object")] == stats.problems


def test_environment_is_strict_and_autoescapes() -> None:
    env = environment()
    assert isinstance(env.undefined, type) and issubclass(env.undefined, jinja2.StrictUndefined)
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ missing }}").render()
    assert env.from_string("{{ x }}").render(x="<b>") == "&lt;b&gt;"
    assert env.from_string("{{ 1234567|number }} {{ 3900|duration }}").render() == "1,234,567 1h 5m"


def test_template_dir_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert (template_dir() / "audit.html.j2").is_file()
    monkeypatch.setenv(report_format.TEMPLATES_ENV, str(tmp_path))
    assert template_dir() == tmp_path
    (tmp_path / "audit.html.j2").write_text("custom {{ title }}", encoding="utf-8")
    assert render_audit_html(sample_report(), title="<x>") == "custom &lt;x&gt;"


@pytest.mark.parametrize(
    ("score", "letter"),
    [(100, "A"), (90, "A"), (89, "B"), (80, "B"), (79, "C"), (70, "C"), (69, "D"), (60, "D"),
     (59, "F"), (0, "F"), (None, "n/a")],
)  # fmt: skip
def test_grade(score: int | None, letter: str) -> None:
    assert grade(score) == letter


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (45, "45s"), (60, "1m"), (3900, "1h 5m"), (3600, "1h"), (3661, "1h 1m"),
     (93600, "1d 2h"), (86430, "1d"), (-120, "-2m"), (None, "n/a")],
)  # fmt: skip
def test_duration(seconds: float | None, text: str) -> None:
    assert fmt_duration(seconds) == text


def test_percent_and_number() -> None:
    assert fmt_percent(0.125) == "12.5%"
    assert fmt_percent(1) == "100%"
    assert fmt_percent(0.004) == "0.4%"
    assert fmt_percent(None) == "n/a"
    assert fmt_number(1234567) == "1,234,567"
    assert fmt_number(1234.5) == "1,234.5"
    assert fmt_number(2000.0) == "2,000"
    assert fmt_number(None) == "n/a"
