"""Fan-out of card reads and reader status to SSE subscribers, with bounded queues.

Readers publish from any thread. Each subscriber has its own queue of at most
SUBSCRIBER_QUEUE_EVENTS_MAX events; a subscriber that falls that far behind (a client
that does not read) is dropped, and its place freed, rather than holding up the till
or a place that the POS needs. At most SUBSCRIBERS_MAX subscribe at once: a new one
takes the place of the oldest, whose stream ends (the POS reconnecting always gets
its stream; nobody can hold every place by connecting and never reading). On stop,
close() ends every stream at once.
"""

from __future__ import annotations

import asyncio
from typing import Any

SUBSCRIBERS_MAX = 16
SUBSCRIBER_QUEUE_EVENTS_MAX = 100


class End:
    """The last item of an ended subscription, saying why it ended."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


class BusClosed(Exception):
    pass


class EventBus:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        # insertion order is subscription order: the first is the oldest
        self._subscriptions: dict[Subscription, None] = {}
        self._closed = False
        self.last_card: dict[str, Any] | None = None
        self.readers: dict[str, dict[str, Any]] = {}
        self.published = 0
        self.dropped_slow = 0
        self.replaced = 0

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def bind_if_unbound(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._loop is None:
            self._loop = loop

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)

    def _on_loop(self, fn: Any, *args: Any) -> None:
        loop = self._loop
        if loop is None:
            fn(*args)
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            fn(*args)
        else:
            loop.call_soon_threadsafe(fn, *args)

    def publish(self, event: dict[str, Any]) -> None:
        """Safe from any thread."""
        self._on_loop(self._deliver, event)

    def close(self) -> None:
        """End every stream now and refuse new ones (the agent is stopping). Safe from any thread."""
        self._closed = True
        self._on_loop(self._end_all)

    def _end_all(self) -> None:
        for subscription in list(self._subscriptions):
            subscription.end("the agent is stopping")

    def _deliver(self, event: dict[str, Any]) -> None:
        self.published += 1
        if event.get("type") == "card":
            self.last_card = event
        elif event.get("type") == "reader":
            self.readers[str(event.get("reader_id"))] = event
        for subscription in list(self._subscriptions):
            subscription._offer(event)

    def subscribe(self) -> "Subscription":
        """A new subscriber's queue, registered at once (taking the oldest one's place if
        all are taken; BusClosed once the agent is stopping); close it when it leaves.
        Call on the bus's loop."""
        if self._closed:
            raise BusClosed("the agent is stopping")
        while len(self._subscriptions) >= SUBSCRIBERS_MAX:
            oldest = next(iter(self._subscriptions))
            self.replaced += 1
            oldest.end(f"replaced by a newer stream (at most {SUBSCRIBERS_MAX} at once)")
        subscription = Subscription(self)
        self._subscriptions[subscription] = None
        return subscription


class Subscription:
    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        # one place more than the backlog, kept for the End that says why it stopped
        self._queue: asyncio.Queue[dict[str, Any] | End] = asyncio.Queue(SUBSCRIBER_QUEUE_EVENTS_MAX + 1)
        self.ended: End | None = None

    def _offer(self, event: dict[str, Any]) -> None:
        if self._queue.qsize() >= SUBSCRIBER_QUEUE_EVENTS_MAX:
            self._bus.dropped_slow += 1
            self.end(f"dropped: fell {SUBSCRIBER_QUEUE_EVENTS_MAX} events behind; reconnect")
            return
        self._queue.put_nowait(event)

    def end(self, reason: str) -> None:
        """Leave the bus; the reader gets what is queued, then End(reason)."""
        if self.ended is not None:
            return
        self.ended = End(reason)
        self._bus._subscriptions.pop(self, None)
        self._queue.put_nowait(self.ended)

    async def next(self) -> dict[str, Any] | End:
        return await self._queue.get()

    def close(self) -> None:
        """The subscriber left: free its place (no await: safe in a cancelled finally)."""
        self._bus._subscriptions.pop(self, None)
        if self.ended is None:
            self.ended = End("closed")
