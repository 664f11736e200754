"""Fan-out of card reads and reader status to SSE subscribers, with bounded queues.

Readers publish from any thread; each subscriber has its own queue of at most
SUBSCRIBER_QUEUE_EVENTS_MAX events, and a slow subscriber loses its oldest events
rather than holding up the till.
"""

from __future__ import annotations

import asyncio
from typing import Any

SUBSCRIBERS_MAX = 16
SUBSCRIBER_QUEUE_EVENTS_MAX = 100


class TooManySubscribers(Exception):
    pass


class EventBus:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queues: set[asyncio.Queue[dict[str, Any]]] = set()
        self.last_card: dict[str, Any] | None = None
        self.readers: dict[str, dict[str, Any]] = {}
        self.published = 0

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def bind_if_unbound(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._loop is None:
            self._loop = loop

    def publish(self, event: dict[str, Any]) -> None:
        """Safe from any thread."""
        loop = self._loop
        if loop is None:
            self._deliver(event)
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._deliver(event)
        else:
            loop.call_soon_threadsafe(self._deliver, event)

    def _deliver(self, event: dict[str, Any]) -> None:
        self.published += 1
        if event.get("type") == "card":
            self.last_card = event
        elif event.get("type") == "reader":
            self.readers[str(event.get("reader_id"))] = event
        for queue in list(self._queues):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(event)

    def full(self) -> bool:
        return len(self._queues) >= SUBSCRIBERS_MAX

    def subscribe(self) -> "Subscription":
        """A new subscriber's queue, registered at once (TooManySubscribers past the
        limit, before any answer is started); close it when the subscriber leaves."""
        if self.full():
            raise TooManySubscribers(f"at most {SUBSCRIBERS_MAX} event streams at once")
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(SUBSCRIBER_QUEUE_EVENTS_MAX)
        self._queues.add(queue)
        return Subscription(self, queue)


class Subscription:
    def __init__(self, bus: EventBus, queue: "asyncio.Queue[dict[str, Any]]") -> None:
        self._bus = bus
        self._queue = queue

    async def next(self) -> dict[str, Any]:
        return await self._queue.get()

    def close(self) -> None:
        self._bus._queues.discard(self._queue)
