"""Order exports as an orders source: CSV or JSON lines from any backend (docs/contracts.md §8).

- **Format** is detected from the content, never the name: a first non-blank character
  ``{`` means JSON lines (one object per line), anything else CSV with a header row
  (delimiter ``,`` ``;`` tab or ``|``, sniffed from the header). A UTF-8 byte order mark
  and gzip compression are handled.
- **Columns** ``order_id``, ``created_at``, ``amount``, ``currency``, ``status``; other
  names may be mapped (``[orders.columns] order_id = "Order Number"``). Every other
  column — emails, names, addresses — is ignored and never kept.
- **Values**: amounts in major units (``19.99``, ``500`` for JPY), exact; times ISO 8601
  (no offset means UTC) or Unix seconds; status compared in any case, paid when it is
  one of ``paid_statuses`` (default ``paid``, ``succeeded``, ``completed``,
  ``refunded``). A row without an order id is a payment that is not an order of the
  shop (counted, not kept).
- **Strictness**: a file that cannot be opened, a header without a needed column, or a
  row whose time, amount or currency cannot be read fails the whole read, naming file,
  line and column (never the value): the reconciliation never works from part of an
  export. Identical rows repeated across files (overlapping exports) count once.
- **Coverage**: an export knows nothing after it was made, so the snapshot ends at the
  newest of the files' modification times and orders (or the asked ``until`` if
  earlier): Purchases after that are not judged against it.
"""

from __future__ import annotations

import csv
import glob
import gzip
import io
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from monitor.model.orders import Order, OrderSnapshot, SourceKind, order_key
from monitor.sources.orders.common import OrdersError, parse_major
from monitor.timeutil import parse_iso

FIELDS = ("order_id", "created_at", "amount", "currency", "status")
DEFAULT_PAID = ("paid", "succeeded", "completed", "refunded")
MAX_FILE_BYTES = 512 * 1024 * 1024


def expand_paths(patterns: Sequence[str], root: Path | None = None) -> list[Path]:
    """Files matching ``patterns`` (globs; relative to ``root``, default the working
    directory), sorted, each once. Raises ``OrdersError`` when a pattern matches nothing."""
    base = root or Path.cwd()
    found: dict[Path, None] = {}
    for pattern in patterns:
        full = pattern if os.path.isabs(pattern) else str(base / pattern)
        matches = sorted(glob.glob(full, recursive=True)) if glob.has_magic(full) else [full]
        files = [Path(m) for m in matches if Path(m).is_file()]
        if not files:
            raise OrdersError(f"no orders file matches {pattern!r}")
        found.update(dict.fromkeys(files))
    return list(found)


class FileOrders:
    """Reads order exports (one ``[[orders]] kind = "file"``, or ``audit --orders FILE``)."""

    kind = SourceKind.FILE

    def __init__(
        self,
        *,
        name: str,
        paths: Sequence[str],
        columns: Mapping[str, str] | None = None,
        paid_statuses: Sequence[str] = DEFAULT_PAID,
        root: Path | None = None,
    ) -> None:
        unknown = set(columns or {}) - set(FIELDS)
        if unknown:
            raise ValueError(f"unknown order columns: {', '.join(sorted(unknown))}")
        self.name = name
        self._patterns = list(paths)
        self._columns = {f: (columns or {}).get(f, f) for f in FIELDS}
        self._paid = frozenset(s.strip().lower() for s in paid_statuses)
        self._root = root

    async def read(self, since: float, until: float) -> OrderSnapshot:
        import asyncio  # deferred: every audit imports this module, few read orders

        return await asyncio.to_thread(self.read_sync, since, until)

    def read_sync(self, since: float, until: float) -> OrderSnapshot:
        """Orders created in ``[since, until)`` from every matching file."""
        snap = OrderSnapshot(self.name, self.kind, since, until)
        seen: set[tuple[Any, ...]] = set()
        newest = None
        for path in expand_paths(self._patterns, self._root):
            snap.requests += 1
            exported = _mtime(path)
            newest = exported if newest is None else max(newest, exported)
            for line, row in self._rows(path):
                order, unkeyed = self._order(row, path, line)
                if unkeyed:
                    snap.without_order_id += 1
                if order is None or not since <= order.created_at < until:
                    continue
                identity = (order.order_id, order.created_at, order.amount, order.currency)
                if (identity, order.status) in seen:
                    continue
                seen.add((identity, order.status))
                snap.orders.append(order)
                newest = max(newest or 0.0, order.created_at + 1.0)
        if newest is not None:
            snap.until = min(until, newest)
        return snap

    def _rows(self, path: Path) -> Iterator[tuple[int, Mapping[str, Any]]]:
        text = _read_text(path)
        stripped = text.lstrip()
        if stripped.startswith("{"):
            yield from _json_rows(text, path)
        else:
            yield from self._csv_rows(text, path)

    def _csv_rows(self, text: str, path: Path) -> Iterator[tuple[int, Mapping[str, Any]]]:
        header = text.split("\n", 1)[0]
        try:
            delimiter = csv.Sniffer().sniff(header, delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
        names = [n.strip() for n in reader.fieldnames or []]
        reader.fieldnames = names
        needed = [self._columns[f] for f in ("order_id", "created_at", "status")]
        missing = [c for c in needed if c not in names]
        if missing:
            raise OrdersError(
                f"{path.name}: no column {', '.join(repr(c) for c in missing)} "
                "(map other names in [orders.columns])"
            )
        for row in reader:
            if any((v or "").strip() for v in row.values() if isinstance(v, str)):
                yield reader.line_num, row

    def _order(self, row: Mapping[str, Any], path: Path, line: int) -> tuple[Order | None, bool]:
        cols = self._columns

        def bad(field: str, why: str) -> OrdersError:
            return OrdersError(f"{path.name}:{line}: column {cols[field]!r}: {why}")

        raw_status = row.get(cols["status"])
        if not isinstance(raw_status, str) or not raw_status.strip():
            raise bad("status", "missing")
        status = raw_status.strip().lower()
        paid = status in self._paid
        key = order_key(row.get(cols["order_id"]))
        if key is None:
            return None, paid
        created = row.get(cols["created_at"])
        try:
            created_at = parse_iso(str(created)) if created not in (None, "") else None
        except ValueError:
            created_at = None
        if created_at is None:
            raise bad("created_at", "not an ISO 8601 time or Unix seconds")
        amount = _amount(row.get(cols["amount"]))
        if amount is False:
            raise bad("amount", "not an amount in major units (e.g. 19.99)")
        if amount is None and paid:
            raise bad("amount", "missing on a paid order")
        currency = _currency(row.get(cols["currency"]))
        if currency is False:
            raise bad("currency", "not a three-letter ISO 4217 code")
        return Order(key, (key,), created_at, amount, currency, status, paid), False


def _amount(value: Any) -> Any:
    """Decimal, None (empty) or False (unreadable)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return parse_major(value)
    except ValueError:
        return False


def _currency(value: Any) -> Any:
    """Upper-case code, None (empty) or False (not three letters)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str) and len(value.strip()) == 3 and value.strip().isalpha():
        return value.strip().upper()
    return False


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _read_text(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise OrdersError(f"cannot read {path.name}: {err.strerror}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise OrdersError(f"{path.name}: larger than {MAX_FILE_BYTES // 2**20} MiB")
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError):
            raise OrdersError(f"{path.name}: damaged gzip file") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise OrdersError(f"{path.name}: not UTF-8 text") from None


def _json_rows(text: str, path: Path) -> Iterator[tuple[int, Mapping[str, Any]]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            obj = None
        if not isinstance(obj, dict):
            raise OrdersError(f"{path.name}:{number}: not a JSON object")
        yield number, obj
