"""Seeded generator of realistic Meta CAPI delivery-log lines (docs/contracts.md §1, shape (a)).

One line per ``POST /{dataset_id}/events`` as a sender logs it: ``sent_at``, ``dataset_id``,
the request (``data`` = 1-50 events, mostly small batches), Meta's response and
``duration_ms``. The events look like what Meta's Python SDK sends for a web shop:
SHA-256 user data (real digests of fake people), public IPs, long real-world user agents,
``fbc``/``fbp`` cookies in the official format (some with parameter-builder appendices),
product ``custom_data``, a unique ``event_id`` on every event and send lags of seconds to
minutes.

With ``defects=0`` the output is clean: an audit must find nothing at ``warn`` or above.
With ``defects > 0`` each event, and independently each request, carries one realistic
defect with that probability (see ``EVENT_DEFECTS`` and ``RECORD_DEFECTS``).

Used by the audit benchmark, the bundled samples (``samples/generate.py``, which builds
on ``TrafficFactory``) and the tests. Dependency-light on purpose (stdlib + orjson).

    python -m monitor.tools.genlogs OUT --events N [--seed S] [--defects 0.01] [--gzip]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gzip as gzip_mod
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from random import Random
from typing import IO, Any, cast

import orjson

from monitor.tools.pools import (
    DAY,
    EPOCH_S,
    GUIDES,
    LEAD_PAGES,
    LEADGEN,
    LUT,
    SHOP,
    Person,
    Site,
    build_pools,
    iso_z,
    parse_iso,
)

EVENT_DEFECTS = (
    "plaintext_email",  # hashing skipped: em in clear text
    "md5_email",  # legacy helper hashed em with MD5
    "uppercase_hash",  # em/ph digests upper-cased (e.g. PHP strtoupper, .NET ToString("X2"))
    "ms_event_time",  # JavaScript Date.now() used as event_time
    "missing_event_id",  # dedup impossible
    "missing_user_agent",  # website event without client_user_agent
)
RECORD_DEFECTS = (
    "error_190",  # access token expired (HTTP 500, code 190 / subcode 463)
    "error_2804003",  # a stale event made Meta reject the whole batch
    "error_17",  # user request limit reached (throttled)
    "test_event_code",  # Test Events code left on in production
    "malformed",  # an extra unparseable line (truncated write, binary junk, text log)
)


class TrafficFactory:
    """Builds clean events, requests and responses for one site, deterministically.

    The pools come from ``build_pools``; everything else random comes from one
    ``Random(seed)``, so the same calls in the same order give byte-identical output.
    Per-event work is a few table look-ups, which is what makes > 50k events/s possible.
    Events share their ``user_data`` dicts: copy before mutating (``replace_user_data``).
    """

    def __init__(self, seed: int = 1, site: Site = SHOP, *, persons: int = 4096) -> None:
        self.site = site
        self.rng = Random(seed)
        pools = build_pools(seed, site, persons)
        self.people = pools.people
        self.products = pools.products
        self._email_of = pools.email_of
        self._names, self._lags, self._sizes = pools.names, pools.lags, pools.sizes
        self._page_urls = pools.page_urls
        self._uds: dict[int, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
        self._orders = 0

    def _user_data(self, p: Person, epoch_start: int, full: bool) -> dict[str, Any]:
        wrap = self.wrap
        d = p.digests
        ud: dict[str, Any] = {"em": wrap(d["em"])}
        if full:
            for key in ("ph", "fn", "ln", "ct", "st", "zp", "country"):
                if key in d:
                    ud[key] = wrap(d[key])
        ud["external_id"] = wrap(d["external_id"])
        ud["client_ip_address"] = p.ip
        ud["client_user_agent"] = p.user_agent
        tail = f".{p.appendix}" if p.appendix else ""
        # Cookie creation times sit >= 1 day before the epoch starts, so never in the future
        # of any event that uses them and never more than ~50 days old.
        fbp_ms = (epoch_start - p.fbp_age_s) * 1000 + p.fbp_random % 1000
        ud["fbp"] = f"fb.1.{fbp_ms}.{p.fbp_random}{tail}"
        if p.fbclid:
            fbc_ms = (epoch_start - p.fbc_age_s) * 1000 + p.fbp_random % 997
            ud["fbc"] = f"fb.1.{fbc_ms}.{p.fbclid}{tail}"
        return ud

    def user_data_table(self, t: float) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """(full, lite) ``user_data`` per person, valid for events at Unix time ``t``."""
        epoch = int(t) // EPOCH_S
        table = self._uds.get(epoch)
        if table is None:
            if len(self._uds) >= 3:  # bounded memory on very long runs
                del self._uds[min(self._uds)]
            start = epoch * EPOCH_S
            table = [
                (self._user_data(p, start, True), self._user_data(p, start, False))
                for p in self.people
            ]
            self._uds[epoch] = table
        return table

    # -- events ---------------------------------------------------------------------------

    def wrap(self, value: str) -> Any:
        """A hashed value in this sender's style (SDK list or plain string)."""
        return [value] if self.site.list_values else value

    def event_id(self) -> str:
        """A random UUID-4-shaped id, from the seeded RNG (so reproducible)."""
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"

    def event(
        self, name: str, event_time: int, *, person: int | None = None, full: bool | None = None
    ) -> dict[str, Any]:
        """One clean event; ``person``/``full`` default to a random visitor and key set."""
        rnd = self.rng.random
        idx = int(rnd() * len(self.people)) if person is None else person
        if full is None:
            full = rnd() < self.site.full_share
        uds = self.user_data_table(event_time)[idx]
        return self._event(name, event_time, idx, uds[0] if full else uds[1])

    def _event(self, name: str, event_time: int, idx: int, ud: dict[str, Any]) -> dict[str, Any]:
        ev: dict[str, Any] = {
            "event_name": name,
            "event_time": event_time,
            "event_id": self.event_id(),
            "action_source": "website",
            "event_source_url": "",
            "user_data": ud,
        }
        if self.site.kind == "retail":
            self._retail(ev, self.people[idx].currency)
        else:
            self._leadgen(ev)
        return ev

    def _retail(self, ev: dict[str, Any], cur: str) -> None:
        rng = self.rng
        name = ev["event_name"]
        if name == "PageView":
            ev["event_source_url"] = self._page_urls[int(rng.random() * len(self._page_urls))]
        elif name in ("ViewContent", "AddToCart"):
            prod = self.products[int(rng.random() * len(self.products))]
            ev["event_source_url"] = prod.url
            ev["custom_data"] = (prod.view if name == "ViewContent" else prod.cart)[cur]
        elif name in ("InitiateCheckout", "Purchase"):
            self._basket(ev, cur, purchase=name == "Purchase")
        else:  # Lead: newsletter sign-up
            ev["event_source_url"] = f"https://{self.site.host}/newsletter/confirm"
            ev["custom_data"] = {"content_name": "newsletter", "content_category": "signup"}

    def _basket(self, ev: dict[str, Any], cur: str, *, purchase: bool) -> None:
        rng = self.rng
        n = rng.choice((1, 1, 1, 1, 2, 2, 3, 4))
        items = [self.products[int(rng.random() * len(self.products))] for _ in range(n)]
        qty = [rng.choice((1, 1, 1, 1, 2)) for _ in items]
        contents = [
            {"id": p.id, "quantity": q, "item_price": p.price}
            for p, q in zip(items, qty, strict=True)
        ]
        total = sum(p.price * q for p, q in zip(items, qty, strict=True))
        cd: dict[str, Any] = {
            "currency": cur,
            "value": 0.0,
            "content_ids": [p.id for p in items],
            "content_type": "product",
            "contents": contents,
            "num_items": sum(qty),
        }
        if purchase:
            self._orders += 1
            order = f"SO-{self.rng.randrange(100, 999)}{self._orders:07d}"
            total += 0.0 if total >= 100 else 4.95  # shipping under the free threshold
            cd["order_id"] = order
            ev["event_source_url"] = f"https://{self.site.host}/checkout/thank-you?order={order}"
        else:
            ev["event_source_url"] = f"https://{self.site.host}/checkout"
        cd["value"] = round(total, 2)
        ev["custom_data"] = cd

    def _leadgen(self, ev: dict[str, Any]) -> None:
        rng, host, name = self.rng, self.site.host, ev["event_name"]
        if name == "PageView":
            ev["event_source_url"] = self._page_urls[int(rng.random() * len(self._page_urls))]
        elif name == "ViewContent":
            guide = rng.choice(GUIDES)
            ev["event_source_url"] = f"https://{host}/guides/{guide}"
            ev["custom_data"] = {"content_name": guide, "content_category": "guides"}
        elif name == "Lead":
            page = rng.choice(LEAD_PAGES)
            ev["event_source_url"] = f"https://{host}/lp/{page}?step=thank-you"
            ev["custom_data"] = {
                "content_name": page,
                "content_category": "quote_request",
                "value": 40.0,
                "currency": "EUR",
            }
        else:
            ev["event_source_url"] = f"https://{host}/contact"

    def batches(
        self, n_events: int, start: float, events_per_hour: float
    ) -> Iterator[tuple[float, list[dict[str, Any]]]]:
        """Yield ``(sent_at, events)`` requests totalling ``n_events``, in send order.

        Requests arrive as a Poisson process whose event rate is ``events_per_hour``;
        each event happened a realistic lag before its request was sent.
        """
        rng, rnd = self.rng, self.rng.random
        names, lags, sizes = self._names, self._lags, self._sizes
        n_people, full_share = len(self.people), self.site.full_share
        mean_gap = 3600.0 / events_per_hour
        t, left = start, n_events
        while left > 0:
            size = sizes[int(rnd() * LUT)]
            k = (
                size
                if isinstance(size, int)
                else rng.randint(*((6, 20) if size == "mid" else (21, 50)))
            )
            k = min(k, left)
            t += rng.expovariate(1.0 / (mean_gap * k))
            queued = 0.0 if k == 1 else 60.0  # batched events waited in a queue first
            uds = self.user_data_table(t - DAY / 2)
            events = []
            for _ in range(k):
                idx = int(rnd() * n_people)
                ud = uds[idx][0 if rnd() < full_share else 1]
                lag = lags[int(rnd() * LUT)] + queued * rnd()
                events.append(self._event(names[int(rnd() * LUT)], int(t - lag), idx, ud))
            left -= k
            yield t, events

    # -- requests and responses -------------------------------------------------------------

    def fbtrace_id(self) -> str:
        return base64.urlsafe_b64encode(self.rng.randbytes(17)).decode().rstrip("=")

    def record(
        self, sent_at: float, events: list[dict[str, Any]], dataset_id: str | None
    ) -> dict[str, Any]:
        """A successful delivery record (shape (a)) for ``events`` sent at ``sent_at``."""
        rng = self.rng
        rec: dict[str, Any] = {"sent_at": iso_z(sent_at)}
        if dataset_id is not None:
            rec["dataset_id"] = dataset_id
        request: dict[str, Any] = {"data": events}
        if self.site.partner_agent:
            request["partner_agent"] = self.site.partner_agent
        rec["request"] = request
        body = {"events_received": len(events), "messages": [], "fbtrace_id": self.fbtrace_id()}
        rec["response"] = {"status": 200, "body": body}
        rec["duration_ms"] = int(70 + rng.expovariate(1 / 80) + 1.5 * len(events))
        return rec

    def error_response(
        self,
        status: int,
        code: int,
        subcode: int | None,
        message: str,
        *,
        title: str | None = None,
        transient: bool = False,
    ) -> dict[str, Any]:
        """Meta's error envelope (reference §8) as the sender logged it."""
        err: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code}
        if subcode is not None:
            err["error_subcode"] = subcode
        err["is_transient"] = transient
        if title:
            err["error_user_title"] = title
        err["fbtrace_id"] = self.fbtrace_id()
        return {"status": status, "body": {"error": err}}

    # -- defects ----------------------------------------------------------------------------

    def replace_user_data(self, ev: dict[str, Any], **changes: Any) -> dict[str, Any]:
        """Give ``ev`` its own copy of ``user_data`` with ``changes`` (``None`` deletes)."""
        ud = dict(ev["user_data"])
        for key, value in changes.items():
            if value is None:
                ud.pop(key, None)
            else:
                ud[key] = value
        ev["user_data"] = ud
        return ud

    def person_of(self, ev: dict[str, Any]) -> Person:
        em = ev["user_data"]["em"]
        return self._email_of[em[0] if isinstance(em, list) else em]

    def apply_event_defect(self, ev: dict[str, Any], kind: str) -> None:
        """Plant one of ``EVENT_DEFECTS`` into a clean event (in place)."""
        if kind == "plaintext_email":
            self.replace_user_data(ev, em=self.wrap(self.person_of(ev).email))
        elif kind == "md5_email":
            self.replace_user_data(ev, em=self.wrap(self.person_of(ev).email_md5))
        elif kind == "uppercase_hash":
            ud = ev["user_data"]
            changes = {
                k: [v.upper() for v in ud[k]] if isinstance(ud[k], list) else ud[k].upper()
                for k in ("em", "ph")
                if k in ud
            }
            self.replace_user_data(ev, **changes)
        elif kind == "ms_event_time":
            ev["event_time"] = ev["event_time"] * 1000 + self.rng.randrange(1000)
        elif kind == "missing_event_id":
            del ev["event_id"]
        elif kind == "missing_user_agent":
            self.replace_user_data(ev, client_user_agent=None)
        else:
            raise ValueError(f"unknown event defect {kind!r}")

    def apply_record_defect(self, rec: dict[str, Any], kind: str) -> None:
        """Plant one of ``RECORD_DEFECTS`` (except ``malformed``) into a record (in place)."""
        if kind == "error_190":
            rec["response"] = self.error_response(
                500,
                190,
                463,
                "Error validating access token: Session has expired. The current time is "
                "later than the token's expiry.",
            )
        elif kind == "error_2804003":
            # The usual cause: a retry queue replays an event older than Meta's 7-day limit.
            first = rec["request"]["data"][0]
            first["event_time"] -= 8 * DAY + self.rng.randrange(DAY)
            rec["response"] = self.error_response(
                400, 100, 2804003, "Invalid parameter", title="Event Timestamp Too Old"
            )
        elif kind == "error_17":
            rec["response"] = self.error_response(
                500, 17, 2446079, "(#17) User request limit reached", transient=True
            )
        elif kind == "test_event_code":
            rec["request"]["test_event_code"] = f"TEST{self.rng.randrange(10000, 99999)}"
        else:
            raise ValueError(f"unknown record defect {kind!r}")

    def malformed_line(self, line: bytes, sent_at: float) -> bytes:
        """An unparseable line as real logs contain them (newline-terminated)."""
        rng = self.rng
        kind = rng.randrange(3)
        if kind == 0:  # writer killed mid-line
            return line[: rng.randrange(20, max(21, len(line) - 2))] + b"\n"
        if kind == 1:  # block of a crashed file system: NULs and junk
            junk = b"\x00" * rng.randrange(1, 16) + rng.randbytes(rng.randrange(16, 160))
            # No CR/LF inside: the junk stays one line whatever the reader's newline mode.
            return junk.replace(b"\n", b"\x00").replace(b"\r", b"\x00") + b"\n"
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(sent_at))
        return f"{stamp} WARNING capi.sender: retrying POST /events after timeout\n".encode()


@contextlib.contextmanager
def open_output(path: str | Path, gzip: bool) -> Iterator[IO[bytes]]:
    """A buffered binary writer; gzip output is reproducible (no mtime in the header)."""
    path = Path(path)
    with open(path, "wb", buffering=1 << 20) as raw:
        if not gzip:
            yield raw
            return
        name = path.name.removesuffix(".gz")
        with gzip_mod.GzipFile(name, "wb", compresslevel=6, fileobj=raw, mtime=0) as gz:
            yield cast(IO[bytes], gz)


def generate(
    path: str | Path,
    n_events: int,
    *,
    seed: int = 1,
    start: float,
    events_per_hour: float = 2000,
    dataset_id: str | None = "1234567890",
    defects: float = 0.0,
    gzip: bool = False,
    site: Site = SHOP,
) -> dict[str, Any]:
    """Write ``n_events`` events as delivery records to ``path``; return what was written.

    ``start`` is the Unix time the traffic starts. ``dataset_id=None`` omits the key (the
    dataset then comes from the config's ``logs`` glob). Malformed lines (a record defect)
    are *extra* lines: every one of the ``n_events`` events is in a well-formed record.
    The result counts ``events``, ``records``, ``lines``, ``bytes`` (uncompressed),
    ``malformed_lines``, ``defective_events``, ``defective_records``, ``defects`` per kind,
    ``first_sent_at``/``last_sent_at`` (ISO) and ``last_sent_ts``.
    """
    if not 0.0 <= defects <= 1.0:
        raise ValueError("defects must be a share between 0 and 1")
    began = time.perf_counter()
    fac = TrafficFactory(seed, site)
    rnd, choice = fac.rng.random, fac.rng.choice
    dumps, opt = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    kinds: Counter[str] = Counter()
    records = lines = nbytes = bad_events = bad_records = 0
    first = last = start
    buf: list[bytes] = []
    with open_output(path, gzip) as out:
        for sent_at, events in fac.batches(n_events, start, events_per_hour):
            if defects:
                for ev in events:
                    if rnd() < defects:
                        kind = choice(EVENT_DEFECTS)
                        fac.apply_event_defect(ev, kind)
                        kinds[kind] += 1
                        bad_events += 1
            rec = fac.record(sent_at, events, dataset_id)
            if defects and rnd() < defects:
                kind = choice(RECORD_DEFECTS)
                kinds[kind] += 1
                bad_records += 1
                if kind == "malformed":
                    buf.append(fac.malformed_line(dumps(rec), sent_at))
                else:
                    fac.apply_record_defect(rec, kind)
            buf.append(dumps(rec, option=opt))
            if records == 0:
                first = sent_at
            records += 1
            last = sent_at
            if len(buf) >= 512:
                lines += len(buf)
                nbytes += sum(map(len, buf))
                out.write(b"".join(buf))
                buf.clear()
        lines += len(buf)
        nbytes += sum(map(len, buf))
        out.write(b"".join(buf))
    return {
        "events": n_events,
        "records": records,
        "lines": lines,
        "bytes": nbytes,
        "malformed_lines": kinds["malformed"],
        "defective_events": bad_events,
        "defective_records": bad_records,
        "defects": dict(sorted(kinds.items())),
        "first_sent_at": iso_z(first),
        "last_sent_at": iso_z(last),
        "last_sent_ts": last,
        "seconds": round(time.perf_counter() - began, 3),
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m monitor.tools.genlogs OUT --events N [...]``; prints the counts as JSON."""
    ap = argparse.ArgumentParser(
        prog="python -m monitor.tools.genlogs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("out", help="output file (.jsonl, or .jsonl.gz with --gzip)")
    ap.add_argument("--events", type=int, required=True, help="number of events")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--defects", type=float, default=0.0, help="defect rate, e.g. 0.01")
    ap.add_argument("--gzip", action="store_true", help="gzip the output")
    ap.add_argument("--start", default="2026-10-01T00:00:00Z", help="ISO time traffic starts")
    ap.add_argument("--events-per-hour", type=float, default=2000.0)
    ap.add_argument("--dataset-id", default="1234567890", help="'' omits dataset_id")
    ap.add_argument("--site", choices=("shop", "leadgen"), default="shop")
    args = ap.parse_args(argv)
    if args.events < 0:
        ap.error("--events must be >= 0")
    counts = generate(
        args.out,
        args.events,
        seed=args.seed,
        start=parse_iso(args.start),
        events_per_hour=args.events_per_hour,
        dataset_id=args.dataset_id or None,
        defects=args.defects,
        gzip=args.gzip,
        site=SHOP if args.site == "shop" else LEADGEN,
    )
    rate = counts["events"] / max(counts["seconds"], 1e-9)
    sys.stdout.write(orjson.dumps(counts, option=orjson.OPT_INDENT_2).decode() + "\n")
    sys.stderr.write(
        f"{counts['events']} events, {counts['bytes'] / 1e6:.1f} MB in "
        f"{counts['seconds']:.1f} s ({rate:,.0f} events/s)\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
