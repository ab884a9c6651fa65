"""Write the bundled sample delivery logs under ``samples/logs/`` and the shop's order
export ``samples/orders/shop-orders.csv`` (deterministic).

    python -m samples.generate          # or: python samples/generate.py

Two datasets, 48 hours of traffic ending 2026-11-20T12:00Z, each with a few real-world
defects planted in known places (the list, with the finding codes an audit should report,
is in ``samples/README.md``; this script prints what it planted). The traffic itself comes
from ``monitor.tools.genlogs`` and is clean, so every finding traces back to a plant. The
order export is what the payment provider says was paid: one order per Purchase of the
shop's logs, and the reconciliation's plants.

Running it again rewrites byte-identical files (fixed seeds, gzip without mtime).
"""

from __future__ import annotations

import copy
import sys
import uuid
from collections import Counter
from pathlib import Path
from random import Random
from typing import Any

import orjson

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.tools.genlogs import LEADGEN, SHOP, TrafficFactory, open_output, parse_iso
from monitor.tools.pools import iso_z

ROOT = Path(__file__).resolve().parent / "logs"
ORDERS = Path(__file__).resolve().parent / "orders" / "shop-orders.csv"
END = parse_iso("2026-11-20T12:00:00Z")
START = END - 48 * 3600
MAX_TOTAL_BYTES = 3_000_000  # the samples are committed: keep the repository small

SHOP_ID = "1234567890"
SHOP_ROTATED = parse_iso("2026-11-19T00:00:00Z")  # daily rotation; yesterday's file is gzipped
PLAINTEXT_DEPLOY = (parse_iso("2026-11-19T14:05:00Z"), parse_iso("2026-11-19T16:40:00Z"))
TEST_CODE_WINDOW = (parse_iso("2026-11-18T15:00:00Z"), parse_iso("2026-11-18T21:30:00Z"))
TOKEN_EXPIRED = (parse_iso("2026-11-20T09:12:00Z"), parse_iso("2026-11-20T09:27:00Z"))
STALE_RETRY_AT = parse_iso("2026-11-18T23:20:00Z")
DROPPED_AT = parse_iso("2026-11-19T20:00:00Z")
ORDER_SYNC_LAG = 30 * 3600
# Reconciliation (the orders export): a thank-you page reloaded 95 s after the first
# Purchase, a Purchase from the thank-you page of a card payment that then failed, and two
# paid orders whose buyers closed the tab before the thank-you page (no Purchase at all).
RELOAD_AT = parse_iso("2026-11-20T07:40:00Z")
RELOAD_AFTER = 95
FAILED_PAYMENT_AT = parse_iso("2026-11-19T21:10:00Z")
UNSENT_ORDERS = (
    ("SO-9900000001", parse_iso("2026-11-19T10:05:12Z"), "129.90", "EUR"),
    ("SO-9900000002", parse_iso("2026-11-20T08:31:40Z"), "54.00", "EUR"),
)
GRACE = 2 * 3600  # the [[orders]] default: orders younger than this are not judged

LEADGEN_ID = "9876543210"  # not in the lines: the config's logs glob names the dataset
MS_RELEASE = (parse_iso("2026-11-19T18:00:00Z"), parse_iso("2026-11-20T06:00:00Z"))
CRASH_AT = parse_iso("2026-11-20T03:12:00Z")


def _line(rec: dict[str, Any]) -> bytes:
    return orjson.dumps(rec, option=orjson.OPT_APPEND_NEWLINE)


def _within(t: float, window: tuple[float, float]) -> bool:
    return window[0] <= t < window[1]


def _write(path: Path, lines: list[bytes], *, gzip: bool = False) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open_output(path, gzip) as out:
        out.write(b"".join(lines))
    return path.stat().st_size


def shop(planted: Counter[str]) -> dict[str, list[bytes]]:
    """The web shop: SDK-style sender on four web workers plus a nightly-ish order sync."""
    fac = TrafficFactory(2611, SHOP, persons=600)
    rng = Random(2612)  # plant decisions, independent of the traffic stream
    archive: list[bytes] = []
    current: list[bytes] = []
    stale_done = dropped_done = reload_done = False
    for sent_at, events in fac.batches(10**6, START, 32):
        if sent_at >= END:
            break
        for ev in events:
            # The theme's AJAX cart handler never passes the pixel's event id along.
            if ev["event_name"] == "AddToCart" and rng.random() < 0.4:
                del ev["event_id"]
                planted["shop MISSING_EVENT_ID (AddToCart)"] += 1
            if _within(sent_at, PLAINTEXT_DEPLOY):  # a release skipped the hashing step
                fac.apply_event_defect(ev, "plaintext_email")
                planted["shop HASH_PLAINTEXT (user_data.em)"] += 1
        rec = fac.record(sent_at, events, SHOP_ID)
        rec["_worker"] = worker = f"web-{rng.randrange(1, 5)}"
        if worker == "web-4" and _within(sent_at, TEST_CODE_WINDOW):
            rec["request"]["test_event_code"] = "TEST61427"  # staging env var left on web-4
            planted["shop TEST_EVENT_CODE_PRESENT (requests)"] += 1
        if _within(sent_at, TOKEN_EXPIRED):
            fac.apply_record_defect(rec, "error_190")
            planted["shop TOKEN_INVALID 190/463 (requests)"] += 1
        elif not stale_done and sent_at >= STALE_RETRY_AT:
            stale_done = True  # a retry queue replays an 8-day-old event: batch rejected
            fac.apply_record_defect(rec, "error_2804003")
            planted["shop DELIVERY_ERRORS 100/2804003 (requests)"] += 1
        elif not dropped_done and sent_at >= DROPPED_AT and len(events) >= 5:
            dropped_done = True
            rec["response"]["body"]["events_received"] = len(events) - 1
            planted["shop EVENTS_DROPPED (requests)"] += 1
        (archive if sent_at < SHOP_ROTATED else current).append(_line(rec))
        if not reload_done and sent_at >= RELOAD_AT and rec["response"]["status"] == 200:
            reload = _reload(rec, sent_at)
            if reload is not None:
                reload_done = True  # the buyer reloads the thank-you page
                current.append(_line(reload))
                planted["shop PURCHASE_DUPLICATE_ORDER (thank-you page reloads)"] += 1
    return {
        "shop/deliveries-2026-11-18.jsonl.gz": archive,
        "shop/deliveries.jsonl": current,
        "shop/order-sync.jsonl": _order_sync(fac, rng, planted),
    }


def _reload(rec: dict[str, Any], sent_at: float) -> dict[str, Any] | None:
    """The thank-you page of the record's first Purchase, loaded again: the same order
    and value, a new ``event_id``, sent on its own (``None`` without a Purchase)."""
    first = next((ev for ev in rec["request"]["data"] if ev["event_name"] == "Purchase"), None)
    if first is None:
        return None
    ev = copy.deepcopy(first)
    ev["event_id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, "capi-monitor-sample-reload"))
    ev["event_time"] = first["event_time"] + RELOAD_AFTER
    reload = copy.deepcopy(rec)
    reload["sent_at"] = iso_z(sent_at + RELOAD_AFTER)
    reload["request"] = {"data": [ev]}
    reload["response"] = {
        "status": 200,
        "body": {"events_received": 1, "messages": [], "fbtrace_id": "AThankYouPageReload0"},
    }
    return reload


def _order_sync(fac: TrafficFactory, rng: Random, planted: Counter[str]) -> list[bytes]:
    """Every 3 h a batch job confirms paid orders, sending them ~30 h after the purchase."""
    lines = []
    t = START - START % (3 * 3600) + 3 * 3600 + 15 * 60
    while t < END:
        events = [
            fac.event("Purchase", int(t - ORDER_SYNC_LAG + rng.uniform(-2700, 2700)))
            for _ in range(rng.randint(2, 5))
        ]
        planted["shop LATENCY_HIGH (late Purchases)"] += len(events)
        rec = fac.record(t + rng.uniform(0, 20), events, SHOP_ID)
        rec["_job"] = "order-sync"
        lines.append(_line(rec))
        t += 3 * 3600
    return lines


def leadgen(planted: Counter[str]) -> dict[str, list[bytes]]:
    """The lead-gen site: a hand-written integration (plain strings, no dataset_id)."""
    fac = TrafficFactory(2613, LEADGEN, persons=400)
    rng = Random(2614)
    files: dict[str, list[bytes]] = {}
    truncated_done = crash_done = False
    for sent_at, events in fac.batches(10**6, START, 15):
        if sent_at >= END:
            break
        name = "leadgen/forms.ndjson"
        if sent_at < parse_iso("2026-11-20T00:00:00Z"):
            day = "18" if sent_at < parse_iso("2026-11-19T00:00:00Z") else "19"
            name = f"leadgen/forms-2026-11-{day}.ndjson"
        lines = files.setdefault(name, [])
        for ev in events:
            _leadgen_event(fac, rng, ev, sent_at, planted)
        rec = fac.record(sent_at, events, None)
        if not truncated_done and sent_at >= MS_RELEASE[0]:
            truncated_done = True  # the release killed the old worker mid-write ...
            lines.append(_line(rec)[:517] + b"\n")
            # ... and the new version logs its start-up banner into the same file.
            lines.append(b"[2026-11-19 18:00:02] INFO formbridge v2.14.0 starting (pid 31337)\n")
            planted["leadgen malformed lines"] += 2
        if not crash_done and sent_at >= CRASH_AT:
            crash_done = True  # host lost power: the file system left a block of NULs
            junk = b"\x00" * 64 + rng.randbytes(96)
            lines.append(junk.replace(b"\n", b"\x00").replace(b"\r", b"\x00") + b"\n")
            planted["leadgen malformed lines"] += 1
        lines.append(_line(rec))
    return files


def _leadgen_event(
    fac: TrafficFactory, rng: Random, ev: dict[str, Any], sent_at: float, planted: Counter[str]
) -> None:
    ud = ev["user_data"]
    if ev["event_name"] != "Lead" and rng.random() < 0.75:
        # Anonymous visitors: only what the browser gives away.
        ev["user_data"] = {k: ud[k] for k in ("client_ip_address", "client_user_agent", "fbp")}
        planted[f"leadgen MATCH_KEY_COVERAGE_LOW (ip+ua+fbp only, {ev['event_name']})"] += 1
    elif "ph" in ud:  # the phone helper upper-cases its digest
        fac.replace_user_data(ev, ph=ud["ph"].upper())
        planted["leadgen HASH_UPPERCASE (user_data.ph)"] += 1
    if ev["event_name"] == "Lead" and _within(sent_at, MS_RELEASE):
        fac.apply_event_defect(ev, "ms_event_time")  # v2.14.0 sends Date.now()
        planted["leadgen EVENT_TIME_MILLISECONDS (Lead)"] += 1


def shop_orders(files: dict[str, list[bytes]], planted: Counter[str]) -> list[str]:
    """The shop's order export (CSV): one paid order per order id its Purchases carry,
    created a few seconds before the first of them, plus the planted ones. Columns the
    reconciliation reads (``order_id, created_at, amount, currency, status``) and one it
    must ignore (``customer_email``). Counts what an audit of it should report."""
    rng = Random(2615)
    purchases = []  # (sent_at, event_time, order_id, value, currency, delivered, web)
    first_sent = None
    for rel, lines in files.items():
        if not rel.startswith("shop/"):
            continue
        for rec in filter(None, map(_try_json, lines)):
            sent = parse_iso(rec["sent_at"])
            first_sent = sent if first_sent is None else min(first_sent, sent)
            delivered = rec["response"]["status"] == 200
            for ev in rec["request"]["data"]:
                if ev["event_name"] == "Purchase":
                    c = ev["custom_data"]
                    purchases.append(
                        (sent, ev["event_time"], c["order_id"], c["value"], c["currency"],
                         delivered, "order-sync" not in rel)
                    )  # fmt: skip
    purchases.sort()
    failed = next(p[2] for p in purchases if p[0] >= FAILED_PAYMENT_AT and p[5] and p[6])
    orders: dict[str, tuple[float, str, str, str]] = {}
    sent_ids: set[str] = set()
    for _, event_time, oid, value, currency, delivered, _web in purchases:
        if oid not in orders:
            created = event_time - rng.uniform(3, 40)
            orders[oid] = (created, f"{value:.2f}", currency, "failed" if oid == failed else "paid")
        if delivered:
            sent_ids.add(oid)
    for oid, created, amount, currency in UNSENT_ORDERS:
        orders[oid] = (created, amount, currency, "paid")
    assert first_sent is not None
    judged = [
        oid
        for oid, (created, _, _, status) in orders.items()
        if status == "paid" and first_sent <= created <= END - GRACE
    ]
    not_sent = [oid for oid in judged if oid not in sent_ids]
    planted["shop orders ORDER_NOT_SENT (paid, never sent)"] += len(UNSENT_ORDERS)
    planted["shop orders ORDER_NOT_SENT (all, incl. failed deliveries)"] += len(not_sent)
    planted["shop orders judged (paid, created from the first send to now - grace)"] += len(judged)
    planted["shop orders PURCHASE_WITHOUT_ORDER (payment failed after the thank-you page)"] += 1
    rows = ["order_id,created_at,amount,currency,status,customer_email"]
    for n, (oid, (created, amount, currency, status)) in enumerate(
        sorted(orders.items(), key=lambda kv: kv[1][0])
    ):
        rows.append(f"{oid},{iso_z(created)},{amount},{currency},{status},buyer{n}@example.com")
    return rows


def main() -> int:
    """Regenerate every sample file; print sizes and what was planted."""
    planted: Counter[str] = Counter()
    files = {**shop(planted), **leadgen(planted)}
    total = 0
    for rel, lines in sorted(files.items()):
        size = _write(ROOT / rel, lines, gzip=rel.endswith(".gz"))
        events = sum(
            len(rec["request"]["data"])
            for rec in map(_try_json, lines)
            if isinstance(rec, dict) and isinstance(rec.get("request"), dict)
        )
        total += size
        print(f"{rel:40} {len(lines):5} lines {events:6} events {size / 1024:8.1f} KiB")
    orders = shop_orders(files, planted)
    ORDERS.parent.mkdir(parents=True, exist_ok=True)
    ORDERS.write_text("\n".join(orders) + "\n")
    total += ORDERS.stat().st_size
    print(f"{'orders/shop-orders.csv':40} {len(orders) - 1:5} orders")
    print(f"{'total':40} {total / 1024:39.1f} KiB")
    for what, n in sorted(planted.items()):
        print(f"  planted: {what}: {n}")
    if total > MAX_TOTAL_BYTES:
        print(f"samples are {total:,} bytes, over the {MAX_TOTAL_BYTES:,} budget", file=sys.stderr)
        return 1
    return 0


def _try_json(line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return None


if __name__ == "__main__":
    sys.exit(main())
