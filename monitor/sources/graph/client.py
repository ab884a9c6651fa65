"""Graph API client: an async client for the reads behind the Graph-based checks.

Reads (docs/meta-capi.md §2-§4, appendix): ``/{dataset}/stats`` (``event``, ``event_source``,
``match_keys``), ``/dataset_quality``, ``/{dataset}/da_checks`` and ``/debug_token``,
normalised by ``monitor.sources.graph.parse``; ``monitor.sources.graph.poll`` bundles
them into snapshots.

Contracts:

- **Secrets.** The token travels in the ``Authorization: Bearer`` header (Graph accepts it
  like the ``access_token`` query parameter), so URLs carry no token, except
  ``debug_token``'s ``input_token``. ``paging.next`` URLs returned by Meta do contain
  ``access_token``: it is stripped before they are followed, and they are never logged or
  stored. Every ``httpx`` error is converted into a ``GraphError`` built from safe parts,
  outside the ``except`` block (no ``__context__`` chain to the URL), with the token
  replaced and the text scrubbed. A log filter on the ``httpx`` logger redacts the tokens
  of live clients from its "HTTP Request: GET <url>" lines.
- **Errors** are classified from Meta's whole error envelope, not the HTTP status (mocks
  pair 190 and 17 with HTTP 500, §8), by ``monitor.model.meta_errors.MetaError``, the
  classifier the log side shares (docs/contracts.md §9). Transient errors (Meta's
  ``is_transient`` first, then the codes, 5xx, no answer) are retried with exponential
  backoff and full jitter; a throttled answer's ``estimated_time_to_regain_access``
  (MINUTES, §8) replaces the backoff, capped at ``backoff_max``. 100, 190/102, 3, 10,
  200-299 are never retried, nor anything Meta calls ``is_transient: false``.
- **Usage.** ``X-App-Usage``, ``X-Business-Use-Case-Usage`` and ``X-Ad-Account-Usage`` are
  read from every answer; above ``usage_slowdown_pct`` the client sleeps before each call,
  from 0 s at the threshold up to ``usage_slowdown_max`` at 100 %, to stay under the
  limit rather than hit it (§8: back off near 75-90 %).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import orjson

from monitor.config import MetaSettings
from monitor.model.graph import (
    DaCheck,
    EventQuality,
    GraphErrorKind,
    StatsBucket,
    TokenInfo,
    Usage,
)
from monitor.sources.graph.batch import MAX_BATCH, Batcher, BatchItem, parse_batch_answer
from monitor.sources.graph.errors import GraphError
from monitor.sources.graph.parse import (
    as_dicts,
    as_str,
    decode_answer,
    normalise_stats,
    parse_da_checks,
    parse_dataset_quality,
    parse_debug_token,
    parse_usage,
)
from monitor.sources.graph.redact import REDACTOR, install_redactor, safe

__all__ = [
    "DATASET_CALLS",
    "DATASET_QUALITY_FIELDS",
    "ClientSettings",
    "GraphClient",
    "HttpPool",
]

log = logging.getLogger(__name__)

# The spelling Meta's examples and SDK use; the field table's `dedup_key_feedback`
# reportedly fails with (#100) "nonexisting field" (docs/meta-capi.md §3, spelling trap).
DATASET_QUALITY_FIELDS = (
    "web{event_name,"
    "event_match_quality{composite_score,"
    "match_key_feedback{identifier,coverage{percentage}},diagnostics},"
    "event_coverage{percentage,goal_percentage},"
    "dedupe_key_feedback{dedupe_key,browser_events_with_dedupe_key{percentage},"
    "server_events_with_dedupe_key{percentage},"
    "overall_browser_coverage_from_dedupe_key{percentage}},"
    "data_freshness{upload_frequency},acr{percentage},"
    "event_potential_aly_acr_increase{percentage}}"
)

# HTTP calls made on behalf of one dataset: set by `poll_dataset`, inherited by the tasks
# it spawns, so one client shared by many datasets still attributes its calls.
DATASET_CALLS: ContextVar[list[int] | None] = ContextVar("graph_dataset_calls", default=None)


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """How a ``GraphClient`` talks to the Graph API (``[meta]``, docs/contracts.md §5).

    ``timeout`` per call (s); ``max_retries`` of transient and throttled calls, with
    backoff from ``backoff_base`` doubling up to ``backoff_max`` (s); above
    ``usage_slowdown_pct`` % of a rate limit each call waits up to ``usage_slowdown_max``
    seconds (see the module docstring); reads are sent in batches of up to ``batch_size``
    (at most 50; 0 or 1: one HTTP call per read).
    """

    graph_url: str = "https://graph.facebook.com"
    api_version: str = "v25.0"
    timeout: float = 30.0
    max_retries: int = 4
    backoff_base: float = 0.5
    backoff_max: float = 60.0
    usage_slowdown_pct: float = 75.0
    usage_slowdown_max: float = 10.0
    batch_size: int = MAX_BATCH

    @classmethod
    def from_meta(cls, meta: MetaSettings) -> ClientSettings:
        """The settings ``[meta]`` configures; the rest at their defaults."""
        return cls(
            graph_url=meta.graph_url,
            api_version=meta.api_version,
            timeout=meta.timeout,
            max_retries=meta.max_retries,
            batch_size=meta.batch_size,
        )


@dataclass(frozen=True, slots=True)
class _Target:
    """Where a request goes: a URL without query, its parameters, and a log-safe label."""

    url: str
    params: dict[str, str] = field(repr=False)  # may hold debug_token's input_token
    label: str = ""


class HttpPool:
    """One or more ``httpx.AsyncClient`` connection pools used as one, least-busy first.

    Why: httpcore's pool does O(connections²) bookkeeping plus one ``poll()`` per
    connection on every request start and end (``_assign_requests_to_connections``); at
    64 connections that costs more CPU than the calls themselves. Pools of at most
    ``per_pool`` connections keep it small. Never more than ``size`` connections in all
    when at most ``size`` requests are in flight (``poll_many``'s limiter ensures it).
    A given ``transport`` (tests) means a single pool on that transport.
    """

    def __init__(
        self,
        *,
        size: int = 100,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        per_pool: int = 8,
    ) -> None:
        shards = 1 if transport is not None else max(1, math.ceil(size / max(per_pool, 1)))
        cap = max(1, math.ceil(size / shards))
        limits = httpx.Limits(max_connections=cap, max_keepalive_connections=cap)
        self._clients = [
            httpx.AsyncClient(
                transport=transport, limits=limits, timeout=timeout, follow_redirects=False
            )
            for _ in range(shards)
        ]
        self._busy = [0] * shards

    @property
    def shards(self) -> int:
        return len(self._clients)

    async def get(
        self, url: str, *, params: Mapping[str, str], headers: Mapping[str, str], timeout: float
    ) -> httpx.Response:
        i = min(range(len(self._busy)), key=self._busy.__getitem__)
        self._busy[i] += 1
        try:
            return await self._clients[i].get(url, params=params, headers=headers, timeout=timeout)
        finally:
            self._busy[i] -= 1

    async def post(
        self, url: str, *, data: Mapping[str, str], headers: Mapping[str, str], timeout: float
    ) -> httpx.Response:
        i = min(range(len(self._busy)), key=self._busy.__getitem__)
        self._busy[i] += 1
        try:
            return await self._clients[i].post(url, data=data, headers=headers, timeout=timeout)
        finally:
            self._busy[i] -= 1

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()


class GraphClient:
    """Async Graph API client for one token: ``async with GraphClient(token, settings) as c``.

    ``settings`` (``ClientSettings``, default: Meta's URL and the defaults) says where and
    how patiently to call. ``transport`` (tests: a real loopback server or
    ``httpx.MockTransport``), ``sleep`` and ``rng`` are injectable. ``limiter`` bounds
    in-flight HTTP calls (shared by the clients of ``poll_many``); ``http`` is a shared
    ``HttpPool`` this client then does not close. ``calls`` counts HTTP requests made;
    ``usage`` is the latest usage.
    """

    def __init__(
        self,
        token: str,
        settings: ClientSettings | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        limiter: asyncio.Semaphore | None = None,
        http: HttpPool | None = None,
    ) -> None:
        if not token:
            raise ValueError("GraphClient needs a non-empty access token")
        cfg = settings or ClientSettings()
        self.settings = cfg
        self._base = cfg.graph_url.rstrip("/")
        self._base_parts = urlsplit(self._base)
        self._version = cfg.api_version.strip("/")
        self._token = token
        self._timeout = cfg.timeout
        self._max_retries = max(0, cfg.max_retries)
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._limiter = limiter
        self._owns_http = http is None
        self._http = http or HttpPool(timeout=cfg.timeout, transport=transport)
        self._token_lock = asyncio.Lock()
        self._token_memo: tuple[float, TokenInfo | GraphError] | None = None
        self._closed = False
        self._batcher: Batcher[_Target, dict[str, Any] | GraphError] | None = None
        if cfg.batch_size > 1:
            self._batcher = Batcher(self._send_batch, cfg.batch_size)
        self.calls = 0
        self.http_calls = 0
        self.usage = Usage()
        install_redactor()
        REDACTOR.add(token)

    def __repr__(self) -> str:
        return f"GraphClient(graph_url={self._base!r}, api_version={self._version!r})"

    async def __aenter__(self) -> GraphClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the owned HTTP client; idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._batcher is not None:
            await self._batcher.aclose()
        if self._owns_http:
            await self._http.aclose()
        REDACTOR.discard(self._token)

    # -- generic reads

    async def get(self, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        """GET ``/{version}/{path}``; the decoded JSON object, or ``GraphError``."""
        return await self._request(self._target(path, params))

    async def get_all(
        self, path: str, params: Mapping[str, str], *, max_pages: int = 500
    ) -> list[dict[str, Any]]:
        """All ``data`` items of ``path``, following ``paging.next`` to the end (§2).

        Raises ``GraphError`` (kind ``unknown``) rather than return a silently truncated
        list when paging does not end within ``max_pages``: a partial read has produced
        false findings before (§2).
        """
        target = self._target(path, params)
        body = await self._request(target)
        items, seen = as_dicts(body.get("data")), {_key(target)}
        while (nxt := _next_url(body)) is not None:
            target = self._rebase(nxt, target.label)
            if _key(target) in seen:
                break  # a next link pointing back: Meta's paging ended
            if len(seen) >= max_pages:
                msg = f"{target.label}: paging did not end after {max_pages} pages"
                raise GraphError(msg, kind=GraphErrorKind.UNKNOWN)
            seen.add(_key(target))
            body = await self._request(target)
            items.extend(as_dicts(body.get("data")))
        return items

    # -- typed reads

    async def stats(
        self,
        dataset_id: str,
        aggregation: str,
        start: float,
        end: float,
        *,
        event: str | None = None,
    ) -> list[StatsBucket]:
        """``/{dataset}/stats`` over ``[start, end)``, all pages, normalised (§2)."""
        params = {
            "aggregation": aggregation,
            "start_time": str(int(start)),
            "end_time": str(int(end)),
        }
        if event is not None:
            params["event"] = event
        results = await self.get_all(f"{dataset_id}/stats", params)
        return normalise_stats(aggregation, results, event=event, window=(start, end))

    async def dataset_quality(self, dataset_id: str) -> list[EventQuality]:
        """``/dataset_quality?dataset_id=..`` web block, per event name (§3)."""
        body = await self.get(
            "dataset_quality", {"dataset_id": dataset_id, "fields": DATASET_QUALITY_FIELDS}
        )
        return parse_dataset_quality(body)

    async def da_checks(self, dataset_id: str) -> list[DaCheck]:
        """``/{dataset}/da_checks``, all checks, all pages (§4)."""
        return parse_da_checks(await self.get_all(f"{dataset_id}/da_checks", {}, max_pages=20))

    async def debug_token(self, now: float) -> TokenInfo:
        """Probe this client's own token with ``/debug_token`` (appendix).

        A 190/102 on the probe itself means the token is invalid: that is an answer,
        ``TokenInfo(valid=False, ...)``, not an error. The outcome is memoised per ``now``
        (one probe per poll for all datasets sharing the token); other failures raise
        ``GraphError`` (a fresh copy for each caller).
        """
        async with self._token_lock:
            if self._token_memo is None or self._token_memo[0] != now:
                self._token_memo = (now, await self._probe_token(now))
            outcome = self._token_memo[1]
        if isinstance(outcome, GraphError):
            raise outcome.clone()
        return outcome

    async def _probe_token(self, now: float) -> TokenInfo | GraphError:
        try:
            body = await self.get("debug_token", {"input_token": self._token})
            return parse_debug_token(body, now=now, secret=self._token)
        except GraphError as err:
            if err.kind is not GraphErrorKind.TOKEN_INVALID:
                return err
            return TokenInfo(
                valid=False, checked_at=now, error=err.message, code=err.code, subcode=err.subcode
            )

    # -- plumbing

    def _target(self, path: str, params: Mapping[str, str]) -> _Target:
        clean = path.strip("/")
        url = f"{self._base}/{self._version}/{clean}"
        return _Target(url=url, params=dict(params), label=f"GET /{self._version}/{clean}")

    def _rebase(self, next_url: str, label: str) -> _Target:
        """A ``paging.next`` URL -> a target on our ``graph_url``, ``access_token`` removed.

        The host is ours, not the link's: a proxy in ``graph_url`` must not be bypassed,
        and the token header must not go to a host we were not configured for. (Plain
        ``urllib.parse``: ``httpx.URL`` costs more than the rest of a page's handling.)
        """
        try:
            url: SplitResult | None = urlsplit(next_url)
        except (ValueError, TypeError, AttributeError):
            url = None
        if url is None:  # raised outside the except: no context holding the link's token
            raise GraphError(f"{label}: unusable paging.next link", kind=GraphErrorKind.UNKNOWN)
        base = self._base_parts
        same_origin = (url.scheme, url.hostname, _port(url)) == (
            base.scheme,
            base.hostname,
            _port(base),
        )
        path = url.path if same_origin else base.path.rstrip("/") + url.path
        query = parse_qsl(url.query, keep_blank_values=True)
        params = {k: v for k, v in query if k != "access_token"}
        rebased = urlunsplit((base.scheme, base.netloc, path, "", ""))
        return _Target(url=rebased, params=params, label=label)

    async def _request(self, target: _Target) -> dict[str, Any]:
        """One read: batched on its first attempt (when batching), retried alone."""
        batchable = self._batcher is not None and target.url.startswith(self._base + "/")
        for attempt in range(self._max_retries + 1):
            await self._throttle()  # per read: batch items count one by one against limits
            self.calls += 1
            if (counter := DATASET_CALLS.get()) is not None:
                counter[0] += 1
            if attempt == 0 and batchable and self._batcher is not None:
                outcome = await self._batcher.submit(target)
            else:
                outcome = await self._attempt(target)
            if not isinstance(outcome, GraphError):
                return outcome
            if not outcome.retryable or attempt == self._max_retries:
                raise outcome.clone(attempts=attempt + 1)
            delay = self._retry_delay(attempt, outcome)
            log.info(
                "%s: %s (code %s), retry %d/%d in %.1fs",
                target.label,
                outcome.kind.value,
                outcome.code,
                attempt + 1,
                self._max_retries,
                delay,
            )
            await self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _retry_delay(self, attempt: int, err: GraphError) -> float:
        # Throttled answers say when access returns (minutes -> s, §8): wait that long,
        # within backoff_max; otherwise exponential backoff with full jitter.
        if err.kind is GraphErrorKind.RATE_LIMITED and err.regain_access_s:
            return min(err.regain_access_s, self.settings.backoff_max)
        cap = min(self.settings.backoff_max, self.settings.backoff_base * 2**attempt)
        return self._rng.uniform(0.0, cap)

    def usage_delay(self) -> float:
        """Seconds to wait before the next call given the latest usage (0 below threshold)."""
        pct = self.usage.max_pct
        if pct <= self.settings.usage_slowdown_pct:
            return 0.0
        share = min(
            1.0,
            (pct - self.settings.usage_slowdown_pct)
            / max(100.0 - self.settings.usage_slowdown_pct, 1e-9),
        )
        return share * self.settings.usage_slowdown_max

    async def _throttle(self) -> None:
        delay = self.usage_delay()
        if delay > 0:
            log.debug("usage at %.0f%%: slowing down %.2fs", self.usage.max_pct, delay)
            await self._sleep(delay)

    async def _attempt(self, target: _Target) -> dict[str, Any] | GraphError:
        """One HTTP request; never raises for HTTP or API failures (returns the error)."""
        headers = {"Authorization": f"Bearer {self._token}"}
        failure: GraphError | None = None
        limiter = self._limiter or contextlib.nullcontext()
        async with limiter:
            self.http_calls += 1
            try:
                response = await self._http.get(
                    target.url, params=target.params, headers=headers, timeout=self._timeout
                )
            except httpx.TimeoutException as exc:
                failure = self._network_error(target.label, exc, "timed out")
            except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
                failure = self._network_error(target.label, exc, "bad URL", GraphErrorKind.UNKNOWN)
            except httpx.TransportError as exc:
                failure = self._network_error(target.label, exc, "connection failed")
        # Raised (by the caller) outside the `except` blocks: no __context__ chain back to
        # the httpx exception, whose request holds the URL.
        if failure is not None:
            return failure
        usage = parse_usage(response.headers)
        if usage is not None:
            self.usage = usage
        return decode_answer(
            target.label, response.status_code, response.content, usage, self._token
        )

    async def _send_batch(self, targets: Sequence[_Target]) -> list[dict[str, Any] | GraphError]:
        """One batch call for ``targets``: each read's own outcome, in order (never raises).

        A ``null`` item, and every item of a call that failed as a whole, comes back as a
        transient error (or the call's own error): ``_request`` retries it alone."""
        label = f"POST / (batch of {len(targets)})"
        relative = [self._relative(t) for t in targets]
        data = {"batch": orjson.dumps(relative).decode(), "include_headers": "true"}
        headers = {"Authorization": f"Bearer {self._token}"}
        failure: GraphError | None = None
        async with self._limiter or contextlib.nullcontext():
            self.http_calls += 1
            try:
                response = await self._http.post(
                    self._base + "/", data=data, headers=headers, timeout=self._timeout
                )
            except httpx.TimeoutException as exc:
                failure = self._network_error(label, exc, "timed out")
            except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
                failure = self._network_error(label, exc, "bad URL", GraphErrorKind.UNKNOWN)
            except httpx.TransportError as exc:
                failure = self._network_error(label, exc, "connection failed")
        if failure is not None:
            return [failure.relabelled(f"{t.label}: {failure.message}") for t in targets]
        if (usage := parse_usage(response.headers)) is not None:
            self.usage = usage
        try:
            answer: Any = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            answer = None
        items = parse_batch_answer(answer, len(targets))
        if items is None:  # the call failed as a whole (or its answer is not a list)
            whole = decode_answer(label, response.status_code, response.content, usage, self._token)
            if not isinstance(whole, GraphError):
                msg = f"{label}: the answer is not a list"
                whole = GraphError(msg, kind=GraphErrorKind.TRANSIENT, http_status=200)
            return [whole.relabelled(f"{t.label}: {whole.message}") for t in targets]
        return [self._item_outcome(t, item) for t, item in zip(targets, items, strict=True)]

    def _item_outcome(self, target: _Target, item: BatchItem | None) -> dict[str, Any] | GraphError:
        if item is None:
            msg = f"{target.label}: no answer in the batch (null item)"
            return GraphError(msg, kind=GraphErrorKind.TRANSIENT)
        usage = parse_usage(item.headers)
        if usage is not None:
            self.usage = usage
        return decode_answer(target.label, item.status, item.body, usage, self._token)

    def _relative(self, target: _Target) -> dict[str, str]:
        path = target.url[len(self._base) + 1 :]
        query = urlencode(target.params)
        return {"method": "GET", "relative_url": f"{path}?{query}" if query else path}

    def _network_error(
        self,
        label: str,
        exc: Exception,
        what: str,
        kind: GraphErrorKind = GraphErrorKind.TRANSIENT,
    ) -> GraphError:
        detail = safe(str(exc), self._token) or type(exc).__name__
        msg = f"{label}: {what} ({type(exc).__name__}: {detail})"
        return GraphError(safe(msg, self._token), kind=kind)


def _port(url: SplitResult) -> int | None:
    """The port, the scheme's default when none is written (``None``: unusable)."""
    try:
        port = url.port
    except ValueError:
        return None
    return port if port is not None else {"http": 80, "https": 443}.get(url.scheme)


def _next_url(body: Mapping[str, Any]) -> str | None:
    paging = body.get("paging")
    return as_str(paging.get("next")) if isinstance(paging, dict) else None


def _key(target: _Target) -> tuple[str, tuple[tuple[str, str], ...]]:
    return target.url, tuple(sorted(target.params.items()))
