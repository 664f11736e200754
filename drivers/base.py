"""The one reader interface: open, a stream of events, close.

A reader runs in its own asyncio task (blocking I/O goes to a thread) and never
raises out of `events()`: trouble becomes a ReaderStatus event and a retry with
backoff, so one bad reader never stops the daemon or the others.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime, timezone

from drivers.events import ReaderEvent

RECONNECT_BACKOFF_MIN_S = 0.2
RECONNECT_BACKOFF_MAX_S = 5.0


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Reader(abc.ABC):
    kind: str = "reader"

    def __init__(self, reader_id: str) -> None:
        self.reader_id = reader_id

    @abc.abstractmethod
    def events(self) -> AsyncIterator[ReaderEvent]:
        """Card reads, refusals and status changes until `close()`; reconnects by itself."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop reading and release the device; safe to call twice."""


class EventInbox:
    """Events from a reader's thread to its asyncio consumer, through a bounded queue.

    When the consumer falls behind, new events are dropped and counted rather than
    held without limit; the end mark (None) always gets in, making room if it must.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, maxsize: int) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[ReaderEvent | None] = asyncio.Queue(maxsize)
        self.dropped = 0

    def put(self, event: ReaderEvent | None) -> None:
        """Safe from any thread."""
        queue = self.queue

        def deliver() -> None:
            if event is None:
                while queue.full():
                    queue.get_nowait()
                    self.dropped += 1
            elif queue.full():
                self.dropped += 1
                return
            queue.put_nowait(event)

        with contextlib.suppress(RuntimeError):  # the loop closed under us: we are stopping
            self.loop.call_soon_threadsafe(deliver)


def next_backoff(current: float) -> float:
    return min(max(current * 2, RECONNECT_BACKOFF_MIN_S), RECONNECT_BACKOFF_MAX_S)
