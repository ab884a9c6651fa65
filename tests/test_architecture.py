"""The layout rules of docs/architecture.md, checked on the source tree itself.

Each rule is one function over the files, so a move that breaks the arrows fails here
with the offending file and line rather than in a reviewer's head.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MAX_LINES = 600
MAX_ROOT_MODULES = 10


def _modules(*tops: str) -> Iterator[Path]:
    for top in tops:
        for path in sorted((REPO / top).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """Every module an ``import`` or ``from ... import`` statement of ``path`` names."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.lineno, node.module


def _where(path: Path, line: int) -> str:
    return f"{path.relative_to(REPO)}:{line}"


def test_no_module_of_monitor_or_checks_is_over_the_line_limit() -> None:
    long = [
        f"{p.relative_to(REPO)} ({n} lines)"
        for p in _modules("monitor", "checks")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    ]
    assert long == []


def test_few_modules_sit_at_the_root_of_monitor() -> None:
    root = sorted(p.name for p in (REPO / "monitor").glob("*.py"))
    assert len(root) <= MAX_ROOT_MODULES, root


@pytest.mark.parametrize(
    ("tops", "forbidden"),
    [
        # runtime code never imports the benchmarks or the tests
        (("monitor", "checks"), ("benchmarks", "tests")),
        # checks are pure: no engine, store, daemon, notifier or source I/O
        (
            ("checks",),
            ("monitor.engine", "monitor.store", "monitor.daemon", "monitor.notify",
             "monitor.sources", "monitor.alerts", "monitor.report", "monitor.testing"),
        ),
        # value types import nothing but value types and the small root helpers
        (
            ("monitor/model",),
            ("monitor.engine", "monitor.store", "monitor.daemon", "monitor.sources", "checks"),
        ),
        # sources do I/O of their own: the store is the engine's business
        (("monitor/sources",), ("monitor.store", "monitor.engine", "monitor.daemon", "checks")),
        # notifiers render through report.format only, never the report builders
        (("monitor/notify",), ("monitor.report.html", "monitor.report.weekly", "monitor.daemon")),
    ],
)  # fmt: skip
def test_imports_follow_the_arrows(tops: tuple[str, ...], forbidden: tuple[str, ...]) -> None:
    wrong = [
        f"{_where(p, line)} imports {name}"
        for p in _modules(*tops)
        for line, name in _imports(p)
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    ]
    assert wrong == []


def test_test_fakes_are_used_only_by_tests_tools_and_benchmarks() -> None:
    wrong = [
        f"{_where(p, line)} imports {name}"
        for p in _modules("monitor", "checks")
        if "testing" not in p.relative_to(REPO).parts
        for line, name in _imports(p)
        if name.startswith("monitor.testing")
    ]
    assert wrong == []


def test_table_lookups_by_name_stay_in_the_store() -> None:
    wrong = [
        _where(p, i)
        for p in _modules("monitor", "checks")
        if "store" not in p.relative_to(REPO).parts
        for i, text in enumerate(p.read_text().splitlines(), start=1)
        if "metadata.tables[" in text
    ]
    assert wrong == []


def test_docstrings_cite_only_documents_of_the_repository() -> None:
    missing = []
    for p in _modules("monitor", "checks", "tests", "benchmarks"):
        for i, text in enumerate(p.read_text().splitlines(), start=1):
            for word in text.replace("(", " ").replace(")", " ").replace(",", " ").split():
                if word.startswith("docs/") and word.rstrip(".:;`'\"").endswith(".md"):
                    if not (REPO / word.rstrip(".:;`'\"")).is_file():
                        missing.append(f"{_where(p, i)} cites {word}")
                elif word.rstrip(".:;`'\"") in ("CONTRACTS.md", "STYLE.md"):
                    missing.append(f"{_where(p, i)} cites {word}")
    assert missing == []
