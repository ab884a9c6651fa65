"""Meta's batch requests: many Graph reads in one HTTP call (docs/meta-capi.md §8).

``POST /`` with a form field ``batch`` (a JSON list of at most 50 ``{"method": "GET",
"relative_url": "v25.0/<path>?<query>"}``) and ``include_headers=true``. The answer is a
JSON list in request order; each item is ``{"code": <status>, "headers": [{"name",
"value"}], "body": "<JSON text>"}`` with its own status and error, or ``null`` when it
did not finish (Meta: retry it). Each item counts against Meta's rate limits as one call.

``Batcher`` gathers the reads that concurrent coroutines ask for into batches: a batch
leaves as soon as it is full, or once the event loop has had a few turns to let the
other coroutines of the same round ask theirs. ``parse_batch_answer`` splits an answer
into items; each item body then takes the same decoding path as a direct answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

__all__ = ["MAX_BATCH", "BatchItem", "Batcher", "parse_batch_answer"]

MAX_BATCH = 50
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One item of a batch answer: its status, headers (names lower-cased) and body."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def parse_batch_answer(answer: Any, n: int) -> list[BatchItem | None] | None:
    """Meta's answer to a batch of ``n`` reads -> one ``BatchItem`` (or ``None``: the item
    did not finish, or the answer has no item for it) per read, in order. ``None`` when
    the answer is not a list at all (an error envelope for the whole call, say)."""
    if not isinstance(answer, list):
        return None
    items: list[BatchItem | None] = []
    for i in range(n):
        raw = answer[i] if i < len(answer) else None
        items.append(_item(raw))
    return items


def _item(raw: Any) -> BatchItem | None:
    if not isinstance(raw, dict):
        return None
    status = raw.get("code")
    if isinstance(status, bool) or not isinstance(status, int):
        return None
    headers: dict[str, str] = {}
    for h in raw.get("headers") or ():
        if isinstance(h, dict) and isinstance(h.get("name"), str):
            value = h.get("value")
            headers[h["name"].lower()] = value if isinstance(value, str) else str(value)
    body = raw.get("body")
    text = body if isinstance(body, str) else ""
    return BatchItem(status, headers, text.encode())


class Batcher(Generic[T, R]):
    """Gathers submitted requests into batches of at most ``size`` and sends each with
    ``send`` (which answers one result per request, in order). ``ticks``: how many turns
    of the event loop a partial batch waits for more requests before it leaves."""

    def __init__(
        self, send: Callable[[Sequence[T]], Awaitable[Sequence[R]]], size: int, ticks: int = 3
    ) -> None:
        self._send = send
        self._size = max(1, min(size, MAX_BATCH))
        self._ticks = ticks
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, request: T) -> R:
        """The result of ``request``, once the batch holding it has been answered."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((request, future))
        if len(self._queue) >= self._size:
            self._launch(self._take())
        elif self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_soon())
        return await future

    def _take(self) -> list[tuple[T, asyncio.Future[R]]]:
        taken, self._queue = self._queue[: self._size], self._queue[self._size :]
        return taken

    async def _flush_soon(self) -> None:
        for _ in range(self._ticks):
            await asyncio.sleep(0)
        self._flusher = None
        while self._queue:
            self._launch(self._take())

    def _launch(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        task = asyncio.create_task(self._run(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._send([request for request, _ in batch])
        except Exception as err:  # every waiter learns of it, none hangs
            for _, future in batch:
                if not future.done():
                    future.set_exception(err)
            return
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def aclose(self) -> None:
        """Cancel what has not been sent or answered (a poll that is being torn down)."""
        tasks = [*self._tasks, *([self._flusher] if self._flusher else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for _, future in self._queue:
            future.cancel()
        self._queue.clear()
