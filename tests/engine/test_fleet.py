"""The fleet's view of a cycle (``monitor.engine.fleet``), table-driven: standing verdicts
of other instances join this instance's findings."""

from __future__ import annotations

import pytest

from monitor.config import ChecksSettings
from monitor.engine.fleet import fleet_reports, verdicts_of
from monitor.model.findings import CheckResult, Finding, Severity, Status
from monitor.model.fleet import Verdict
from monitor.model.results import DatasetReport

NOW = 1_795_176_000.0
CFG = ChecksSettings()  # delivery: crit at a 5 % share


def failed(count: int, total: int, check: str = "delivery") -> Finding:
    share = count / total
    severity = Severity.CRIT if share >= 0.05 else Severity.WARN
    return Finding(
        "DELIVERY_ERRORS", severity, check, count, "m", "r", ["Purchase"],
        evidence={"share": round(share, 4)},
    )  # fmt: skip


def report(
    findings: list[Finding], status: Status = Status.WARN, events: int = 100
) -> DatasetReport:
    checks = [CheckResult("delivery", status, "s", findings=findings)]
    return DatasetReport("111", "Shop", None, checks, events=events)


def other(findings: list[Finding], events: int = 100, name: str = "host-b") -> Verdict:
    return Verdict(name, "111", "delivery", NOW, events, findings)


@pytest.mark.parametrize(
    ("local", "standing", "expected"),
    [
        # why: nothing from elsewhere -> this instance's findings as they are
        ([failed(10, 100)], [], [(10, Severity.CRIT)]),
        # why: two hosts at 10 % -> 20 events, still 10 % of the fleet: crit
        ([failed(10, 100)], [other([failed(10, 100)])], [(20, Severity.CRIT)]),
        # why: 10 % of 100 here, nothing in 900 elsewhere -> 1 % of the fleet: warn
        ([failed(10, 100)], [other([], events=900)], [(10, Severity.WARN)]),
        # why: 2 % here and 2 % there (warn each) -> 2 % of the fleet: warn
        ([failed(2, 100)], [other([failed(4, 200)])], [(6, Severity.WARN)]),
        # why: clean in 100 events here, 3 of 10 there -> seen, 3 of 110 (2.7 %): warn
        ([], [other([failed(3, 10)])], [(3, Severity.WARN)]),
    ],
)
def test_findings_add_up_and_severity_follows_the_fleets_share(
    local: list[Finding], standing: list[Verdict], expected: list[tuple[int, Severity]]
) -> None:
    status = Status.WARN if local else Status.OK
    (merged,) = fleet_reports([report(local, status)], standing, CFG)
    got = [(f.count, f.severity) for f in merged.checks[0].findings]
    assert got == expected


def test_a_skipped_check_here_still_shows_what_another_instance_sees() -> None:
    (merged,) = fleet_reports([report([], Status.SKIPPED)], [other([failed(1, 50)])], CFG)
    assert merged.checks[0].status is Status.SKIPPED
    assert [f.count for f in merged.checks[0].findings] == [1]


def test_fleet_wide_checks_are_not_added_up() -> None:
    drop = Finding("VOLUME_DROP", Severity.WARN, "volume", 40, "m", "r", ["Purchase"])
    local = DatasetReport(
        "111", None, None, [CheckResult("volume", Status.WARN, "s", findings=[drop])]
    )
    standing = [Verdict("host-b", "111", "volume", NOW, 0, [drop])]
    (merged,) = fleet_reports([local], standing, CFG)
    assert [f.count for f in merged.checks[0].findings] == [40]


def test_verdicts_keep_the_checks_that_ran_with_their_alerting_findings() -> None:
    info = Finding("X", Severity.INFO, "delivery", 1, "m", "r")
    checks = [
        CheckResult("delivery", Status.WARN, "s", findings=[failed(2, 100), info]),
        CheckResult("payload", Status.SKIPPED, "no events"),
    ]
    (v,) = verdicts_of("host-a", [DatasetReport("111", None, None, checks, events=100)], NOW)
    assert (v.instance, v.check_id, v.events) == ("host-a", "delivery", 100)
    assert [f.code for f in v.findings] == ["DELIVERY_ERRORS"]
