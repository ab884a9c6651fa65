"""The CAPI setup of one dataset: what its senders send and what Meta accepts.

Events are queued per channel with the time their sender will send them (right away, or
at the next flush of a queue); ``Senders.release`` turns the queued events sent before a
time into delivery records (CONTRACTS §1 shape (a)), after the planted incidents have
done their work (events dropped or changed, error responses, a test code), and counts
what Meta accepts: events of HTTP-200 requests without ``test_event_code``, per event
name and hour of the ad account's clock (bucketed by ``event_time``). An event that
reaches Meta more than ``COUNTED_WITHIN`` after its ``event_time`` (a stuck queue's
replay) is left out: Meta adds it to an hour the daemon judged a day before, and the
backtest stores one count per hour, so counting it would show the replay in Meta's
counts 30 hours before it was sent.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from random import Random
from typing import Any

import orjson

from monitor.tools.traffic.localtime import DAY, HOUR, Clock
from monitor.tools.traffic.world import HASHED_KEYS, Planted, Site, World

COUNTED_WITHIN = DAY  # Meta's count of an hour as the daemon reads it (module docstring)


@dataclass(slots=True)
class _Request:
    sent: float
    channel: str
    events: list[dict[str, Any]]
    retry: bool = False


@dataclass(slots=True)
class Tally:
    """What one dataset produced: counts for summaries and tests."""

    sessions: int = 0
    events: int = 0
    requests: int = 0
    by_source: dict[str, int] = field(default_factory=dict)
    # (event name, action source) -> [events, events with a hashed identifier]
    identified: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    batch_sizes: dict[str, list[int]] = field(default_factory=dict)  # channel -> sizes

    def shares(self) -> dict[str, float]:
        return {
            f"{name}/{source}": round(n[1] / n[0], 3)
            for (name, source), n in sorted(self.identified.items())
            if n[0]
        }


class Senders:
    """One dataset's senders (channels ``website``, ``app``, ``store``, ``crm``,
    ``phone``), the incidents that hit them, and Meta's server counts."""

    def __init__(
        self, world: World, site: Site, clock: Clock, account: Clock, clear_emails: dict[str, str]
    ) -> None:
        self.world, self.site = world, site
        self.rng = Random(f"senders:{world.seed}:{site.dataset_id}")
        self.clock, self.account = clock, account
        self.incidents = [i for i in world.incidents if i.dataset_id == site.dataset_id]
        self.clear_emails = clear_emails  # em digest -> address, filled by the visitors
        self.pending: list[tuple[float, int, str, dict[str, Any]]] = []
        self.seq = 0
        self.flushes: dict[str, list[float]] = {}
        self.server: dict[tuple[str, int], int] = {}
        self.tally = Tally()

    def queue(self, channel: str, t: float, ev: dict[str, Any]) -> None:
        """Queue an event that happened at ``t`` for its channel's sender."""
        heapq.heappush(self.pending, (self._send_time(channel, t), self.seq, channel, ev))
        self.seq += 1

    def _send_time(self, channel: str, t: float) -> float:
        """When the sender sends an event that happened at ``t``: right away, or with the
        next flush of its queue."""
        rng = self.rng
        if channel == "phone":
            return t + rng.uniform(30, 300)  # the agent saves the call
        if channel == "website" and self.site.web_sender == "single":
            return t + 0.2 + rng.expovariate(1 / 1.5)
        if channel == "crm":
            return float(int(t // HOUR) * HOUR + 900)  # the run's upload, 15 min in
        times = self._flush_times(channel)
        i = bisect.bisect_right(times, t)
        return times[i] if i < len(times) else t + 60

    def _flush_times(self, channel: str) -> list[float]:
        got = self.flushes.get(channel)
        if got is None:
            rng = Random(f"flush:{self.world.seed}:{self.site.dataset_id}:{channel}")
            t, end, got = self.world.start, self.world.end + DAY, []
            while t < end:
                if channel == "store":
                    t = (t // 900 + 1) * 900
                    got.append(t + rng.uniform(5, 40))
                else:
                    t += rng.uniform(30, 120) if channel == "website" else rng.uniform(20, 90)
                    got.append(t)
            self.flushes[channel] = got
        return got

    def release(self, until: float, *, last: bool = False) -> Iterator[dict[str, Any]]:
        """The requests sent before ``until`` (every event they hold is known by then)."""
        pending = self.pending
        while pending and (last or pending[0][0] < until):
            sent, _, channel, ev = heapq.heappop(pending)
            events = [ev]
            while pending and pending[0][0] == sent and pending[0][2] == channel:
                events.append(heapq.heappop(pending)[3])
            if last and sent >= self.world.end:
                continue
            cap = self.site.max_batch if channel != "app" else 100
            for k in range(0, len(events), cap):
                req = _Request(sent + k / 1000, channel, events[k : k + cap])
                yield from self._deliver(req)

    def _deliver(self, req: _Request) -> Iterator[dict[str, Any]]:
        active = [i for i in self.incidents if i.start <= req.sent < i.end]
        if active and not req.retry:
            for inc in active:
                if inc.type != "pixel_broken":
                    inc._seen += sum(1 for e in req.events if inc.exposes(req.sent, e))
            req = self._apply(req, active)
            if not req.events:
                return
        rec = self._record(req, active)
        status = rec["response"]["status"]
        if status == 200 and "test_event_code" not in rec["request"]:
            for ev in req.events:
                if req.sent - ev["event_time"] > COUNTED_WITHIN:
                    continue
                key = (ev["event_name"], self.account.bucket(ev["event_time"]))
                self.server[key] = self.server.get(key, 0) + 1
        self._count(req, rec)
        yield rec
        if status == 503:  # a transient failure: the sender retries a few seconds later
            yield from self._deliver(_Request(req.sent + self.rng.uniform(2, 20),
                                              req.channel, req.events, retry=True))  # fmt: skip

    def _apply(self, req: _Request, active: list[Planted]) -> _Request:
        """The incidents' effect on one request (a changed copy; events are not shared)."""
        rng = self.rng
        events = req.events
        for inc in active:
            scope = inc.covers
            if inc.type == "server_stop":
                events = [e for e in events if not scope(req.sent, e["event_name"])]
            elif inc.type == "drop_50":
                if inc.event_name is None:
                    events = events if rng.random() < 0.5 else []
                else:
                    events = [
                        e
                        for e in events
                        if not scope(req.sent, e["event_name"]) or rng.random() < 0.5
                    ]
            elif inc.type in ("email_missing", "plaintext_email", "event_id_missing", "late_30h"):
                changed = [
                    self._defect(inc, e) if scope(req.sent, e["event_name"]) else e for e in events
                ]
                if any(a is not b for a, b in zip(changed, events, strict=True)):
                    inc.first_affected = inc.first_affected or req.sent
                events = changed
        return _Request(req.sent, req.channel, events)

    def _defect(self, inc: Planted, ev: dict[str, Any]) -> dict[str, Any]:
        ud = ev.get("user_data") or {}
        if inc.type in ("email_missing", "plaintext_email") and "em" not in ud:
            return ev
        ev = dict(ev)
        if inc.type == "event_id_missing":
            ev.pop("event_id", None)
        elif inc.type == "late_30h":
            ev["event_time"] = int(ev["event_time"] - self.rng.uniform(28, 32) * HOUR)
        else:
            ud = dict(ud)
            if inc.type == "email_missing":
                del ud["em"]
            else:
                email = self._clear_email(ud["em"])
                ud["em"] = [email] if isinstance(ud["em"], list) else email
            ev["user_data"] = ud
        return ev

    def _clear_email(self, hashed: Any) -> str:
        digest = hashed[0] if isinstance(hashed, list) else hashed
        return self.clear_emails.get(digest) or f"someone{int(digest[:6], 16)}@example.org"

    def _record(self, req: _Request, active: list[Planted]) -> dict[str, Any]:
        rng, site = self.rng, self.site
        request: dict[str, Any] = {"data": req.events}
        if req.channel == "app" and site.app_events_as_strings:
            request["data"] = [orjson.dumps(e).decode() for e in req.events]  # SDK form
        if site.partner_agent and req.channel == "website":
            request["partner_agent"] = site.partner_agent
        token_dead = any(i.type == "token_invalid" for i in active)
        if any(i.type == "test_event_code" for i in active):
            request["test_event_code"] = "TEST60412"
        rec: dict[str, Any] = {"sent_at": self._stamp(req.sent), "dataset_id": site.dataset_id}
        rec["request"] = request
        trace = f"A{rng.getrandbits(96):024x}"
        if token_dead:
            err = {"message": "Error validating access token: The session has been "
                   "invalidated because the user changed their password.",
                   "type": "OAuthException", "code": 190, "error_subcode": 460,
                   "fbtrace_id": trace}  # fmt: skip
            rec["response"] = {"status": 400, "body": {"error": err}}
        elif not req.retry and rng.random() < self.world.transient_errors:
            err = {"message": "An unexpected error has occurred. Please retry your request "
                   "later.", "type": "OAuthException", "code": 2, "is_transient": True,
                   "fbtrace_id": trace}  # fmt: skip
            rec["response"] = {"status": 503, "body": {"error": err}}
        else:
            body = {"events_received": len(req.events), "messages": [], "fbtrace_id": trace}
            rec["response"] = {"status": 200, "body": body}
        if token_dead or "test_event_code" in request:
            for inc in active:
                if inc.type in ("token_invalid", "test_event_code"):
                    inc.first_affected = inc.first_affected or req.sent
        rec["duration_ms"] = int(60 + rng.expovariate(1 / 90) + 0.8 * len(req.events))
        return rec

    def _stamp(self, t: float) -> Any:
        style = self.site.time_style
        if style == "unix":
            return round(t, 3)
        if style == "iso_local":
            local = datetime.fromtimestamp(round(t, 3), self.clock.zone)
            return local.isoformat(timespec="milliseconds")
        ms = round(t * 1000)
        return (
            datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            + f".{ms % 1000:03d}Z"
        )

    def _count(self, req: _Request, rec: dict[str, Any]) -> None:
        tally = self.tally
        tally.requests += 1
        if rec["response"]["status"] == 503:
            return  # its retry carries the same events
        tally.events += len(req.events)
        tally.batch_sizes.setdefault(req.channel, []).append(len(req.events))
        for ev in req.events:
            src = ev["action_source"]
            tally.by_source[src] = tally.by_source.get(src, 0) + 1
            n = tally.identified.setdefault((ev["event_name"], src), [0, 0])
            n[0] += 1
            ud = ev.get("user_data") or {}
            if any(k in ud for k in HASHED_KEYS):
                n[1] += 1
