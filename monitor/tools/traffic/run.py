"""One dataset's traffic: visitors arrive, sessions walk the funnel, the pixel fires.

``SiteRun.records`` draws the sessions slot by slot and yields the delivery records in
send order: the server events go to ``monitor.tools.traffic.senders``, whose queues are
released once no later session can add to them. Browser events are counted as Meta counts
them; ``SiteRun.graph_rows`` then lists Meta's hourly browser and server counts.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from random import Random
from typing import Any

from monitor.tools.traffic.localtime import DAY, HOUR, SLOT, Clock, curve_table, weekday_table
from monitor.tools.traffic.people import Visitor, app_data, catalogue
from monitor.tools.traffic.senders import Senders
from monitor.tools.traffic.world import Site, World

_PAGES = (
    "",
    "",
    "sale",
    "new",
    "blog/winter-layers",
    "c/jackets",
    "c/home?page=2",
    "search?q=boots",
)


def poisson(rng: Random, lam: float) -> int:
    """A Poisson draw (normal approximation above 50)."""
    if lam <= 0:
        return 0
    if lam > 50:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


# --- one dataset's traffic ---------------------------------------------------------------


class SiteRun:
    """Generates one dataset's delivery records (in send order) and Meta's counts."""

    def __init__(self, world: World, site: Site) -> None:
        self.world, self.site = world, site
        tag = f"{world.seed}:{site.dataset_id}"
        self.rng = Random(f"sessions:{tag}")
        self.noise_rng = Random(f"noise:{tag}")
        self.clock = Clock(site.timezone)
        self.account = Clock(site.account_timezone)
        self.rate = site.sessions_per_hour * world.scale
        self.curves = {w: curve_table(site.vertical, w) for w in (False, True)}
        self.weekday = weekday_table(site.vertical)
        self.effects = [e for e in world.effects if e.dataset_id == site.dataset_id]
        self.bursts = [b for b in world.bursts if b.dataset_id == site.dataset_id]
        self.incidents = [i for i in world.incidents if i.dataset_id == site.dataset_id]
        self.pixel_incidents = [i for i in self.incidents if i.type == "pixel_broken"]
        self.trend = self.noise_rng.uniform(-0.08, 0.15)
        self.day_noise: dict[date, float] = {}
        self._day_state = 0.0
        self._slot_state = 0.0
        self.visitors: list[Visitor] = []  # a ring of the latest visitors
        self.pool = int(min(50_000, max(2_000, self.rate * 24 * 3)))
        self.next_uid = 0
        self.clear_emails: dict[str, str] = {}  # em digest -> address (clear-text incident)
        self.browser: dict[tuple[str, int], int] = {}
        self.senders = Senders(world, site, self.clock, self.account, self.clear_emails)
        self.tally = self.senders.tally
        self.orders = 0
        self.products = catalogue(Random(f"catalogue:{tag}"), site)

    # -- the arrival rate --

    def _noise_of_day(self, day: date) -> float:
        got = self.day_noise.get(day)
        if got is None:  # AR(1) over days, in log space
            self._day_state = 0.5 * self._day_state + 0.87 * self.noise_rng.gauss(0, 0.08)
            got = self.day_noise[day] = math.exp(self._day_state)
        return got

    def expected_rate(self, t: float) -> tuple[float, float, bool, bool]:
        """Without noise: (sessions per hour, conversion multiplier, weekend curve, stores
        closed) at ``t``, from the local clock and the calendar effects."""
        _, _, weekday, secs = self.clock.at(t)
        sessions, conv = 1.0, 1.0
        weekend, closed = weekday >= 5, False
        for e in self.effects:
            if e.start <= t < e.end:
                sessions *= e.sessions
                conv *= e.conversion
                weekend = weekend or e.weekend_curve
                closed = closed or e.stores_closed
        curve = self.curves[weekend][int(secs // SLOT) % (DAY // SLOT)]
        growth = 1 + self.trend * (t - self.world.start) / (self.world.end - self.world.start)
        return self.rate * curve * self.weekday[weekday] * sessions * growth, conv, weekend, closed

    def _context(self, t: float) -> tuple[float, float, bool, bool]:
        """``expected_rate`` times the day's and the 5-minute noise (both AR(1))."""
        rate, conv, weekend, closed = self.expected_rate(t)
        self._slot_state = 0.85 * self._slot_state + 0.53 * self.noise_rng.gauss(0, 0.06)
        noise = self._noise_of_day(self.clock.at(t)[1]) * math.exp(self._slot_state)
        return rate * noise, conv, weekend, closed

    def _burst_rate(self, t: float) -> float:
        total = 0.0
        for b in self.bursts:
            if b.start <= t < b.start + 8 * b.tau:
                total += b.sessions / b.tau * math.exp(-(t - b.start) / b.tau) * HOUR
        return total

    # -- the run --

    def records(self) -> Iterator[dict[str, Any]]:
        """Delivery records (CONTRACTS §1 shape (a)) in send order; Meta's counts fill
        ``self.browser``/``self.server`` as a side effect."""
        rng = self.rng
        w = self.world
        for slot in range(int(w.start), int(w.end), SLOT):
            rate, conv, weekend, closed = self._context(slot + SLOT / 2)
            n = poisson(rng, rate * SLOT / HOUR)
            m = poisson(rng, self._burst_rate(slot + SLOT / 2) * SLOT / HOUR)
            for i in range(n + m):
                t0 = slot + rng.random() * SLOT
                self._session(t0, conv, from_email=i >= n)
            self._offline(slot, conv, weekend, closed)
            if slot % HOUR == 0:
                yield from self.senders.release(slot)
        yield from self.senders.release(w.end, last=True)

    def _session(self, t0: float, conv: float, *, from_email: bool) -> None:
        site, rng = self.site, self.rng
        self.tally.sessions += 1
        app = rng.random() < site.app_share
        v = self._visitor(t0)
        if not from_email and not app and rng.random() < 0.18:
            v.click(rng, t0)  # arrived through a Meta ad
        known = rng.random() < (0.9 if from_email else 0.7 if app else site.known_share)
        if site.vertical == "retail":
            self._shop(t0, v, known, conv, app)
        else:
            self._leads(t0, v, known, conv)

    def _visitor(self, t: float) -> Visitor:
        """A returning visitor (38 %) or a new one."""
        rng = self.rng
        if self.visitors and rng.random() < 0.38:
            return self.visitors[int(rng.random() * len(self.visitors))]
        v = Visitor(self.next_uid, rng, self.site, t)
        if len(self.visitors) < self.pool:
            self.visitors.append(v)
        else:
            self.visitors[self.next_uid % self.pool] = v
        self.next_uid += 1
        return v

    def _identity(self, v: Visitor) -> dict[str, str]:
        ids = v.identity(self.site)
        self.clear_emails.setdefault(ids["em"], ids["clear_email"])
        return ids

    def _shop(self, t: float, v: Visitor, known: bool, conv: float, app: bool) -> None:
        rng = self.rng
        pages = 1 if rng.random() < (0.3 if app else 0.42) else 2 + int(rng.expovariate(0.4))
        viewed: dict[str, Any] | None = None
        for i in range(pages):
            if i:
                t += 4 + rng.expovariate(1 / 40)
            if not app:
                self._event("PageView", t, v, known, app, None)
            if (i and rng.random() < 0.55) or (app and rng.random() < 0.7):
                viewed = self.products[int(rng.random() * len(self.products))]
                t += 1 + rng.random() * 2
                self._event("ViewContent", t, v, known, app, viewed)
        if viewed is None or rng.random() >= min(0.6, 0.12 * conv):
            return
        t += 5 + rng.expovariate(1 / 30)
        self._event("AddToCart", t, v, known, app, viewed)
        if rng.random() >= 0.45:
            return
        t += 10 + rng.expovariate(1 / 120)
        self._event("InitiateCheckout", t, v, known or rng.random() < 0.35, app, viewed)
        if rng.random() >= min(0.95, 0.6 * math.sqrt(conv)):
            return
        t += rng.uniform(60, 600)
        self._event("Purchase", t, v, rng.random() < 0.95, app, viewed)

    def _leads(self, t: float, v: Visitor, known: bool, conv: float) -> None:
        rng = self.rng
        pages = 1 if rng.random() < 0.5 else 2 + int(rng.expovariate(0.5))
        for i in range(pages):
            if i:
                t += 4 + rng.expovariate(1 / 50)
            self._event("PageView", t, v, known, False, None)
            if i and rng.random() < 0.4:
                self._event("ViewContent", t + 1, v, known, False, None)
        r = rng.random()
        if r < 0.045 * conv:
            t += rng.uniform(30, 240)
            self._event("Lead", t, v, rng.random() < 0.98, False, None)
            if rng.random() < 0.25:
                self._event("Schedule", t + rng.uniform(20, 120), v, True, False, None)
        elif r < 0.06 * conv:
            self._event("Contact", t + rng.uniform(20, 120), v, rng.random() < 0.85, False, None)

    # -- events --

    def _event(
        self, name: str, t: float, v: Visitor, known: bool, app: bool, item: Any | None
    ) -> None:
        site, rng = self.site, self.rng
        pixel = not app and v.consent and not v.adblock
        if pixel and (name != "Purchase" or rng.random() < 0.93):  # thank-you page reached
            self._pixel(name, t)
        if name not in site.server_events or (
            site.server_needs_consent and not app and not v.consent
        ):
            return
        source = "app" if app else "website"
        ud = self._user_data(v, known, app)
        ev: dict[str, Any] = {
            "event_name": name,
            "event_time": int(t),
            "event_id": self._event_id(name),
            "action_source": source,
        }
        if not app:
            ev["event_source_url"] = self._url(name, item)
        ev["user_data"] = ud
        cd = self._custom_data(name, item)
        if cd:
            ev["custom_data"] = cd
        if app:
            ev["app_data"] = app_data(v)
        self.senders.queue(source, t, ev)

    def _pixel(self, name: str, t: float) -> None:
        """One browser event as Meta counts it (none while the pixel is broken)."""
        broken = [i for i in self.pixel_incidents if i.covers(t, name)]
        for inc in broken:
            inc._seen += 1
        if not broken:
            key = (name, self.account.bucket(t))
            self.browser[key] = self.browser.get(key, 0) + 1

    def _event_id(self, name: str) -> str:
        if name == "Purchase":
            self.orders += 1
            return f"order-{self.site.dataset_id[-3:]}{self.orders:07d}"
        return f"{self.rng.getrandbits(64):016x}.{int(self.rng.random() * 1e6)}"

    def _user_data(self, v: Visitor, known: bool, app: bool) -> dict[str, Any]:
        site = self.site
        ud: dict[str, Any] = {}
        if known:
            ids = self._identity(v)
            for k in site.identity_keys:
                if k in ids:
                    ud[k] = [ids[k]] if site.list_values else ids[k]
        ud["client_ip_address"] = v.ip
        if app:
            system = "Android 15" if v.mobile else "iOS 18.2"
            ud["client_user_agent"] = f"{site.name.split()[0]}App/5.4.1 ({system})"
            ud["anon_id"] = f"{v.uid:08x}-6e0f-4c3a-9b1d-{v.uid * 7919 % 10**12:012d}"
            if v.consent:
                ud["madid"] = f"{v.uid * 104729 % 16**8:08x}-1f2e-4d3c-8b4a-{v.uid:012x}"
            return ud
        ud["client_user_agent"] = v.ua
        if v.fbp:
            ud["fbp"] = v.fbp
        if v.fbc:
            ud["fbc"] = v.fbc
        return ud

    def _url(self, name: str, item: Any | None) -> str:
        host = self.site.host
        if item is not None and name in ("ViewContent", "AddToCart"):
            return f"https://{host}/p/{item['content_ids'][0].lower()}"
        paths = {
            "InitiateCheckout": "/checkout",
            "Purchase": "/checkout/thank-you",
            "Lead": "/quote/thank-you",
            "Schedule": "/quote/book",
            "Contact": "/contact",
        }
        if name in paths:
            return f"https://{host}{paths[name]}"
        return f"https://{host}/{_PAGES[self.rng.randrange(len(_PAGES))]}"

    def _custom_data(self, name: str, item: Any | None) -> dict[str, Any] | None:
        cur = self.site.currency
        if name in ("ViewContent", "AddToCart") and item is not None:
            return item
        if name in ("InitiateCheckout", "Purchase") and item is not None:
            qty = 1 + int(self.rng.expovariate(1.5))
            cd = {"currency": cur, "value": round(item["value"] * qty, 2),
                  "content_ids": item["content_ids"], "content_type": "product",
                  "num_items": qty}  # fmt: skip
            if name == "Purchase":
                cd["order_id"] = f"{self.orders:07d}"
            return cd
        if name in ("Lead", "Schedule"):
            return {"currency": cur, "value": 60.0 if name == "Lead" else 150.0}
        return None

    # -- channels without browsers --

    def _offline(self, slot: int, conv: float, weekend: bool, closed: bool) -> None:
        """Till sales (opening hours), the nightly renewal run and call-centre leads."""
        site, rng = self.site, self.rng
        _, _, weekday, secs = self.clock.at(slot)
        hour = secs / HOUR
        if site.store_sales_per_day:
            sunday_shut = site.stores_close_on_holidays and weekday == 6
            is_open = 10 <= hour < 20 and not closed and not sunday_shut
            if is_open:
                lam = site.store_sales_per_day * self.world.scale / 10 * SLOT / HOUR
                for _ in range(poisson(rng, lam * math.sqrt(conv))):
                    self._till(slot + rng.random() * SLOT)
        if site.renewals_per_day and int(secs) // SLOT == 4 * HOUR // SLOT:
            run = poisson(rng, site.renewals_per_day * self.world.scale)
            for k in range(run):
                self._renewal(slot + 20 + 2.5 * k)
        if site.phone_leads_per_day and 8 <= hour < 18 and not weekend:
            lam = site.phone_leads_per_day * self.world.scale / 10 * SLOT / HOUR
            for _ in range(poisson(rng, lam)):
                self._phone(slot + rng.random() * SLOT)

    def _offline_ud(self, v: Visitor, keys: Sequence[str]) -> dict[str, Any]:
        ids = self._identity(v)
        lists = self.site.list_values
        return {k: [ids[k]] if lists else ids[k] for k in keys if k in ids}

    def _till(self, t: float) -> None:
        rng = self.rng
        v = self._visitor(t)
        keys = ["external_id", "country", "zp"]
        keys += ["em"] if rng.random() < 0.85 else []
        keys += ["ph", "fn", "ln"] if rng.random() < 0.6 else []
        item = self.products[int(rng.random() * len(self.products))]
        self.orders += 1
        ev = {
            "event_name": "Purchase",
            "event_time": int(t),
            "event_id": f"pos-{self.site.dataset_id[-3:]}{self.orders:07d}",
            "action_source": "physical_store",
            "user_data": self._offline_ud(v, keys),
            "custom_data": {"currency": self.site.currency, "value": item["value"],
                            "content_ids": item["content_ids"], "content_type": "product"},
        }  # fmt: skip
        self.senders.queue("store", t, ev)

    def _renewal(self, t: float) -> None:
        v = self.visitors[int(self.rng.random() * len(self.visitors))] if self.visitors else None
        v = v or self._visitor(t)
        self.orders += 1
        ev = {
            "event_name": "Purchase",
            "event_time": int(t),
            "event_id": f"sub-{self.site.dataset_id[-3:]}{self.orders:07d}",
            "action_source": "system_generated",
            "user_data": self._offline_ud(v, ("em", "ph", "external_id", "country")),
            "custom_data": {"currency": self.site.currency, "value": 24.9,
                            "content_type": "product", "content_ids": ["ABO-BOX-M"]},
        }  # fmt: skip
        self.senders.queue("crm", t, ev)

    def _phone(self, t: float) -> None:
        v = self._visitor(t)
        keys = ["ph", "fn", "ln", "zp"] + (["em"] if self.rng.random() < 0.5 else [])
        ev = {
            "event_name": "Lead",
            "event_time": int(t),
            "event_id": f"call-{self.rng.getrandbits(48):012x}",
            "action_source": "phone_call",
            "user_data": self._offline_ud(v, keys),
            "custom_data": {"currency": self.site.currency, "value": 60.0},
        }
        self.senders.queue("phone", t, ev)

    def graph_rows(self) -> Iterator[dict[str, Any]]:
        """Meta's hourly counts per event name in the account's hours (call after
        ``records`` is exhausted)."""
        server = self.senders.server
        keys = sorted(set(self.browser) | set(server), key=lambda k: (k[1], k[0]))
        for name, hour in keys:
            if not self.world.start <= hour < self.world.end:
                continue
            offset = self.account.at(hour)[0]
            local = datetime.fromtimestamp(hour, UTC) + timedelta(seconds=offset)
            sign, off = ("+" if offset >= 0 else "-"), abs(offset)
            label = (
                local.strftime("%Y-%m-%dT%H:%M:%S")
                + f"{sign}{off // HOUR:02d}{off % HOUR // 60:02d}"
            )
            yield {
                "dataset_id": self.site.dataset_id,
                "event_name": name,
                "hour": label,
                "browser": self.browser.get((name, hour), 0),
                "server": server.get((name, hour), 0),
            }

    def finish_truth(self) -> None:
        """Expected events per hour of each incident's series, from what was counted."""
        for inc in self.incidents:
            hours = (inc.end - inc.start) / HOUR
            inc.expected_per_hour = inc._seen / hours if hours else 0.0
