"""Write the bundled sender-format samples under ``samples/senders/`` (deterministic).

    python -m samples.generate_senders

Four datasets, six hours of traffic ending 2026-11-20T12:00Z, each logged the way a
real sender logs it (docs/log-format.md, "Formats other senders already write"): Stape's
sGTM tag on the console, the same tag's console in Cloud Logging sink files, its BigQuery
log exported as JSON lines, and Facebook for WooCommerce's debug log. The events come
from ``monitor.tools.genlogs`` and are clean; the defects listed in
``samples/senders/README.md`` are planted here. Every URL a writer puts a token in
carries the fake token ``EAAFAKEsampleTOKENnotreal000``.

Running it again rewrites byte-identical files (fixed seeds).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from random import Random
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.tools.genlogs import TrafficFactory, parse_iso
from monitor.tools.pools import Site

ROOT = Path(__file__).resolve().parent / "senders"
END = parse_iso("2026-11-20T12:00:00Z")
START = END - 6 * 3600
TOKEN = "EAAFAKEsampleTOKENnotreal000"
MAX_TOTAL_BYTES = 1_500_000

BIKES, TEA, LAMPS, KETTLE = "3456789012", "4567890123", "5678901234", "6789012345"
STAPE_AGENT = "stape-gtmss-2.1.3"
WC_AGENT = "woocommerce-9.8.1-3.5.4"
WEIGHTS = (
    ("PageView", 45),
    ("ViewContent", 25),
    ("AddToCart", 14),
    ("InitiateCheckout", 9),
    ("Purchase", 7),
)


def site(host: str, agent: str) -> Site:
    return Site(
        host=host, kind="retail", event_weights=WEIGHTS, list_values=False, partner_agent=agent
    )


@dataclass
class Call:
    """One call to /events and how it ended."""

    t: float  # sent
    dataset: str
    body: dict[str, Any]
    status: int | None = 200  # None: no answer
    answer: dict[str, Any] | None = None
    logged_answer: bool = True  # False: the Request is the last thing logged

    @property
    def event_name(self) -> str:
        return str(self.body["data"][0]["event_name"])


def calls(fac: TrafficFactory, dataset: str, per_hour: float, agent: str) -> Iterator[Call]:
    """One event per request, as sGTM tags and the WooCommerce plugin send them."""
    rng, t = fac.rng, START
    names = [n for n, w in WEIGHTS for _ in range(w)]
    while True:
        t += rng.expovariate(per_hour / 3600)
        if t >= END:
            return
        event = fac.event(rng.choice(names), int(t - rng.uniform(0.5, 4)))
        ok = {"events_received": 1, "messages": [], "fbtrace_id": fac.fbtrace_id()}
        yield Call(t, dataset, {"data": [event], "partner_agent": agent}, answer=ok)


def error(fac: TrafficFactory, code: int, sub: int, message: str, title: str | None) -> Any:
    return fac.error_response(400 if code != 190 else 401, code, sub, message, title=title)


def between(t: float, start: str, end: str) -> bool:
    return parse_iso(f"2026-11-20T{start}:00Z") <= t < parse_iso(f"2026-11-20T{end}:00Z")


def js(obj: Any) -> str:  # JavaScript's JSON.stringify
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def php(obj: Any) -> str:  # wp_json_encode: escaped slashes, \\uXXXX
    return json.dumps(obj, separators=(",", ":")).replace("/", "\\/")


# ----------------------------------------------------------------------------- Stape tag


def stape_lines(c: Call, trace: str | None) -> list[tuple[float, dict[str, Any]]]:
    """(time, object) of the tag's Request and Response lines (stape-io/facebook-tag)."""
    url = f"https://graph.facebook.com/v24.0/{c.dataset}/events?access_token={TOKEN}"
    req = {
        "Name": "Facebook",
        "Type": "Request",
        "EventName": c.event_name,
        "RequestMethod": "POST",
        "RequestUrl": url,
        "RequestBody": c.body,
    }
    out: list[tuple[float, dict[str, Any]]] = [(c.t, req)]
    if c.status is None:
        res: dict[str, Any] = {
            "Name": "Facebook",
            "Type": "Response",
            "EventName": c.event_name,
            "Message": f"Request failed or timed out. Pixel ID: {c.dataset}",
            "Reason": js({"reason": "timed_out"}),
        }
        out.append((c.t + 15.0, res))
    elif c.logged_answer:
        headers = {
            "content-type": "application/json; charset=UTF-8",
            "facebook-api-version": "v24.0",
        }
        res = {
            "Name": "Facebook",
            "Type": "Response",
            "EventName": c.event_name,
            "ResponseStatusCode": c.status,
            "ResponseHeaders": headers,
            "ResponseBody": js(c.answer),
            "Message": f"Pixel ID: {c.dataset}",
        }
        out.append((c.t + 0.08 + (int(c.t * 1000) % 200) / 1000, res))
    for _, obj in out:
        if trace:
            obj["TraceId"] = trace
    return out


def ga4_lines(t: float, trace: str | None) -> list[tuple[float, dict[str, Any]]]:
    url = "https://region1.google-analytics.com/g/collect?v=2&tid=G-FAKE0001"
    req = {
        "Name": "GA4",
        "Type": "Request",
        "EventName": "page_view",
        "RequestMethod": "POST",
        "RequestUrl": url,
        "RequestBody": {"en": "page_view"},
    }
    res = {
        "Name": "GA4",
        "Type": "Response",
        "EventName": "page_view",
        "ResponseStatusCode": 204,
        "ResponseHeaders": {},
        "ResponseBody": "",
    }
    if trace:
        req["TraceId"] = res["TraceId"] = trace
    return [(t - 0.01, req), (t + 0.04, res)]


def bikes(planted: Counter[str]) -> dict[str, str]:
    """Alpine Bikes: Stape-hosted sGTM, the tag's console lines (no send time)."""
    fac = TrafficFactory(31, site("bikes.example.com", STAPE_AGENT), persons=600)
    lines: list[str] = ["sGTM container started", "Listening on port 8080"]
    for n, c in enumerate(calls(fac, BIKES, 28, STAPE_AGENT)):
        if between(c.t, "10:00", "10:35"):
            c.body["test_event_code"] = "TEST73105"  # the tag's Test ID left filled in
            planted["bikes TEST_EVENT_CODE_PRESENT"] += 1
        if between(c.t, "11:00", "11:20"):
            c.status = None  # Graph unreachable from the container for a few minutes
            planted["bikes DELIVERY_ERRORS no answer"] += 1
        trace = f"{fac.rng.getrandbits(64):016x}"
        entries = stape_lines(c, trace)
        if n % 3 == 0:
            entries += ga4_lines(c.t, trace)
        lines += [js(obj) for _, obj in sorted(entries, key=lambda e: e[0])]
    return {"sgtm/console.log": "\n".join(lines) + "\n"}


# ----------------------------------------------------------------------------- Cloud Run


def iso_nanos(t: float) -> str:
    whole = datetime.fromtimestamp(int(t), UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{whole}.{round((t % 1) * 1e9):09d}Z"


def tea(planted: Counter[str]) -> dict[str, str]:
    """Harbour Tea: sGTM on Cloud Run, stdout routed to a Cloud Storage sink (hourly)."""
    fac = TrafficFactory(32, site("tea.example.org", STAPE_AGENT), persons=600)
    resource = {
        "type": "cloud_run_revision",
        "labels": {
            "service_name": "sgtm",
            "revision_name": "sgtm-00042-tea",
            "location": "europe-west1",
            "project_id": "harbour-tea-sgtm",
            "configuration_name": "sgtm",
        },
    }
    log_name = "projects/harbour-tea-sgtm/logs/run.googleapis.com%2Fstdout"
    hours: dict[int, list[str]] = {}
    serial = 0
    for c in calls(fac, TEA, 24, STAPE_AGENT):
        if between(c.t, "09:40", "10:05"):
            c.status = 401
            c.answer = error(
                fac,
                190,
                463,
                "Error validating access token: Session has "
                "expired on Friday, 20-Nov-26 01:40:00 PST.",
                None,
            )["body"]
            planted["tea TOKEN_INVALID"] += 1
        if between(c.t, "07:00", "08:00"):
            user = dict(c.body["data"][0]["user_data"])
            user["ph"] = "+44 20 7946 0" + f"{fac.rng.randrange(100, 999)}"  # mapping bug
            c.body["data"][0]["user_data"] = user
            planted["tea HASH_PLAINTEXT (ph)"] += 1
        for t, obj in stape_lines(c, None):  # Cloud Run sets no trace-id header
            serial += 1
            entry = {
                "insertId": f"{serial:08x}tea",
                "jsonPayload": obj,
                "logName": log_name,
                "receiveTimestamp": iso_nanos(t + 0.02),
                "resource": resource,
                "timestamp": iso_nanos(t),
            }
            hours.setdefault(int(t // 3600), []).append(js(entry))
    out = {}
    for hour, entries in sorted(hours.items()):
        start = datetime.fromtimestamp(hour * 3600, UTC)
        name = f"{start:%H}:00:00_{start:%H}:59:59_S0.json"
        out[f"cloud-run/run.googleapis.com/stdout/{start:%Y/%m/%d}/{name}"] = (
            "\n".join(entries) + "\n"
        )
    return out


# ----------------------------------------------------------------------------- BigQuery

_COLUMNS = {
    "Name": "tag_name",
    "Type": "type",
    "TraceId": "trace_id",
    "EventName": "event_name",
    "RequestMethod": "request_method",
    "RequestUrl": "request_url",
    "RequestBody": "request_body",
    "ResponseStatusCode": "response_status_code",
    "ResponseHeaders": "response_headers",
    "ResponseBody": "response_body",
}


def lamps(planted: Counter[str]) -> dict[str, str]:
    """Lumen Lamps: the Stape tag's "Log to BigQuery" rows, exported (bq extract)."""
    fac = TrafficFactory(33, site("lamps.example.com", STAPE_AGENT), persons=600)
    rows = []
    for c in calls(fac, LAMPS, 20, STAPE_AGENT):
        event = c.body["data"][0]
        if event["event_name"] == "AddToCart" and fac.rng.random() < 0.5:
            del event["event_id"]  # the cart's data layer push has no event id
            planted["lamps MISSING_EVENT_ID (AddToCart)"] += 1
        if between(c.t, "08:10", "08:50") and "fbc" in event["user_data"]:
            user = dict(event["user_data"])
            user["fbc"] = user["fbc"].rsplit(".", 2)[0] + ".clickid"  # a cookie rewritten
            event["user_data"] = user
            c.status = 400
            c.answer = error(fac, 100, 2804019, "Invalid parameter", "Invalid fbc")["body"]
            planted["lamps FBC_MALFORMED + DELIVERY_ERRORS 100/2804019"] += 1
        trace = f"{fac.rng.getrandbits(64):016x}"
        for t, obj in stape_lines(c, trace):
            row: dict[str, Any] = {_COLUMNS.get(k, k.lower()): v for k, v in obj.items()}
            for column in ("request_body", "response_headers", "response_body"):
                if column in row:
                    row[column] = js(row[column])  # logToBigQuery's JSON.stringify
            row["timestamp"] = str(int(t * 1000))  # INT64 exported as text
            if "response_status_code" in row:
                row["response_status_code"] = str(row["response_status_code"])
            rows.append(js(row))
    Random(33).shuffle(rows)  # an export has no order
    return {"bigquery/stape_logs-000000000000.json": "\n".join(rows) + "\n"}


# ----------------------------------------------------------------------------- WooCommerce


def wc_entry(t: float, level: str, lines: list[str]) -> str:
    stamp = datetime.fromtimestamp(int(t), UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    return f"{stamp} {level} " + "\n".join(lines) + "\n\n"


def kettle(planted: Counter[str]) -> dict[str, str]:
    """Kettle & Co: Facebook for WooCommerce with debug mode on."""
    fac = TrafficFactory(34, site("kettle.example.com", WC_AGENT), persons=600)
    ua = "Facebook-for-WooCommerce/3.5.4 (WooCommerce/9.8.1; WordPress/6.8.1)"
    out: list[str] = []
    for n, c in enumerate(calls(fac, KETTLE, 18, WC_AGENT)):
        event = c.body["data"][0]
        if event["event_name"] in ("Purchase", "InitiateCheckout") and between(
            c.t, "09:00", "12:00"
        ):
            event["custom_data"] = {**event["custom_data"], "currency": "€"}  # theme filter
            planted["kettle CURRENCY_INVALID (checkout events)"] += 1
        if between(c.t, "07:15", "07:45"):
            c.status = None  # cURL error 28: the shop's host throttled outgoing calls
            planted["kettle DELIVERY_ERRORS no answer"] += 1
        duration = "15.00417s" if c.status is None else f"{0.15 + (n % 40) / 100:.5f}s"
        uri = f"https://graph.facebook.com/v21.0/{c.dataset}/events"
        out.append(
            wc_entry(
                c.t,
                "NOTICE",
                [
                    "Request",
                    "method: POST",
                    f"uri: {uri}",
                    f"user-agent: {ua}",
                    f"body: {php(c.body)}",
                    f"duration: {duration}",
                ],
            )
        )
        if c.status is None:
            out.append(wc_entry(c.t + 15, "NOTICE", ["Response", "code:", "message:", "body:"]))
        else:
            out.append(
                wc_entry(
                    c.t,
                    "NOTICE",
                    ["Response", f"code: {c.status}", "message: OK", f"body: {js(c.answer)}"],
                )
            )
        if n % 25 == 0:  # the catalog sync, another Graph endpoint (token in its query)
            batch = f"https://graph.facebook.com/v21.0/987654321/items_batch?access_token={TOKEN}"
            body = php(
                {
                    "allow_upsert": True,
                    "requests": [{"method": "UPDATE", "data": {"id": f"sku-{n}"}}],
                }
            )
            out.append(
                wc_entry(
                    c.t + 30,
                    "NOTICE",
                    [
                        "Request",
                        "method: POST",
                        f"uri: {batch}",
                        f"user-agent: {ua}",
                        f"body: {body}",
                        "duration: 0.61220s",
                    ],
                )
            )
            out.append(
                wc_entry(
                    c.t + 30,
                    "NOTICE",
                    ["Response", "code: 200", "message: OK", 'body: {"handles":["AFake"]}'],
                )
            )
            out.append(wc_entry(c.t + 31, "INFO", [f"Product sync: {n % 7 + 1} items updated."]))
    return {"wc-logs/facebook_for_woocommerce-2026-11-20-3f6a1c9e2b.log": "".join(out)}


def main() -> int:
    planted: Counter[str] = Counter()
    files = {**bikes(planted), **tea(planted), **lamps(planted), **kettle(planted)}
    total = 0
    for rel, text in sorted(files.items()):
        path = ROOT / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        total += len(text.encode())
        print(f"{rel:72} {text.count(chr(10)):6} lines {len(text) / 1024:8.1f} KiB")
    for what, n in sorted(planted.items()):
        print(f"  planted: {what}: {n}")
    if total > MAX_TOTAL_BYTES:
        print(f"samples are {total:,} bytes, over {MAX_TOTAL_BYTES:,}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
