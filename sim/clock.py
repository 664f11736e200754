"""Virtual time: the world's true time, which only the simulator moves, and each
node's own clock on top of it (skew, NTP steps back and forward)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

MICROSECOND = timedelta(microseconds=1)


class WorldTime:
    """True time. Nothing in the simulation reads the machine's clock."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def advance(self, delta: timedelta) -> None:
        if delta > timedelta(0):
            self.now += delta


class NodeClock:
    """A node's clock: true time plus its error. Readings at the same true time are
    one microsecond apart, so a node never reads the same instant twice, except
    across a step (an NTP correction), which may go back."""

    def __init__(self, world: WorldTime, offset: timedelta = timedelta(0)) -> None:
        self.world = world
        self.offset = offset
        self._last: datetime | None = None
        self.high: datetime | None = None  # the latest reading it ever gave
        self._lock = threading.Lock()  # the sync pipeline reads it from a worker thread

    def __call__(self) -> datetime:
        with self._lock:
            at = self.world.now + self.offset
            if self._last is not None and at <= self._last:
                at = self._last + MICROSECOND
            self._last = at
            if self.high is None or at > self.high:
                self.high = at
            return at

    def behind(self) -> timedelta:
        """How far this clock now reads behind the latest reading it ever gave."""
        now = self.peek()
        return timedelta(0) if self.high is None or now >= self.high else self.high - now

    def peek(self) -> datetime:
        with self._lock:
            at = self.world.now + self.offset
            return at if self._last is None or at > self._last else self._last

    def epoch(self) -> float:
        """Seconds since the epoch, for request signatures (the seams in sync/)."""
        return self.peek().timestamp()

    def step(self, delta: timedelta) -> None:
        """An NTP step: the clock jumps, back or forward."""
        with self._lock:
            self.offset += delta
            self._last = None

    def set_offset(self, offset: timedelta) -> None:
        with self._lock:
            self.offset = offset
            self._last = None
