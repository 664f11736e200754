"""The one reader interface: open, a stream of events, close.

A reader runs in its own asyncio task (blocking I/O goes to a thread) and never
raises out of `events()`: trouble becomes a ReaderStatus event and a retry with
backoff, so one bad reader never stops the daemon or the others.
"""

from __future__ import annotations

import abc
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


def next_backoff(current: float) -> float:
    return min(max(current * 2, RECONNECT_BACKOFF_MIN_S), RECONNECT_BACKOFF_MAX_S)
