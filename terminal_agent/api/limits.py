"""Failed PIN attempts per client (remote address), so that whoever holds the POS token
cannot lock every till user in turn: a client past the limit is answered 429 before its
attempt reaches the users' failure counts.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

# Fewer than PIN_FAILURES_MAX (5): one client cannot lock a user within a minute.
PIN_FAILURES_PER_CLIENT_PER_MINUTE_MAX = 4
PIN_FAILURE_WINDOW_S = 60.0
# Clients remembered at once; the least recently seen is forgotten first.
PIN_CLIENTS_TRACKED_MAX = 1024


class TooManyAttempts(Exception):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many wrong PINs from this client; try again in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class Attempt:
    """One login attempt in flight: it holds a place in its client's budget for the
    window, as a failure, unless forgotten (a right PIN, or an error that was no PIN's)."""

    def __init__(self, limiter: "ClientFailureLimiter", client: str, at: float) -> None:
        self._limiter = limiter
        self.client = client
        self.at = at

    def forget(self) -> None:
        self._limiter._forget(self)


class ClientFailureLimiter:
    def __init__(self, per_window: int = PIN_FAILURES_PER_CLIENT_PER_MINUTE_MAX,
                 window_s: float = PIN_FAILURE_WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._per_window = per_window
        self._window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        # client -> times of failures (and of attempts in flight) within the window
        self._clients: OrderedDict[str, deque[float]] = OrderedDict()

    def begin(self, client: str) -> Attempt:
        """A place for one attempt, or TooManyAttempts. Attempts in flight count as
        failures until they end, so concurrent tries cannot slip past the limit."""
        now = self._clock()
        with self._lock:
            times = self._clients.pop(client, None) or deque()
            while times and now - times[0] >= self._window_s:
                times.popleft()
            self._clients[client] = times
            while len(self._clients) > PIN_CLIENTS_TRACKED_MAX:
                self._clients.popitem(last=False)
            if len(times) >= self._per_window:
                raise TooManyAttempts(max(1, math.ceil(times[0] + self._window_s - now)))
            times.append(now)
        return Attempt(self, client, now)

    def _forget(self, attempt: Attempt) -> None:
        with self._lock:
            times = self._clients.get(attempt.client)
            if times is not None:
                try:
                    times.remove(attempt.at)
                except ValueError:
                    pass
