"""Logging: human-readable lines by default, JSON lines as an option.

Nothing logged at INFO carries a member's name, mobile number or a full card number;
drivers log card numbers masked, and the API logs paths, not bodies.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timezone

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# A flood (a thousand connections refused, a bad token a thousand times, asyncio's
# accept errors) must not fill the disk: each kind of message at most this many times
# a minute, then one line saying more are held back, and their count when it resumes.
LOG_REPEATS_PER_MINUTE_MAX = 10
LOG_REPEAT_WINDOW_S = 60.0
LOG_KINDS_TRACKED_MAX = 512


class RepeatFilter(logging.Filter):
    """At most `per_window` records of one kind (logger, level, first line of the
    message's template) per window; the next one becomes a summary line without its
    traceback, the rest are dropped and counted into the first line after the window."""

    def __init__(self, per_window: int = LOG_REPEATS_PER_MINUTE_MAX, window_s: float = LOG_REPEAT_WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._per_window = per_window
        self._window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._kinds: OrderedDict[tuple[str, int, str], list[float | int]] = OrderedDict()  # start, passed, held

    def filter(self, record: logging.LogRecord) -> bool:
        kind = (record.name, record.levelno, str(record.msg).split("\n", 1)[0][:120])
        now = self._clock()
        with self._lock:
            state = self._kinds.pop(kind, None)
            held = 0
            if state is None or now - state[0] >= self._window_s:
                held = int(state[2]) if state is not None else 0
                state = [now, 0, 0]
            self._kinds[kind] = state
            while len(self._kinds) > LOG_KINDS_TRACKED_MAX:
                self._kinds.popitem(last=False)
            state[1] += 1
            if state[1] > self._per_window + 1:
                state[2] += 1
                return False
        if state[1] == self._per_window + 1:
            record.msg = (f"{record.getMessage()} [said {self._per_window} times within {self._window_s:.0f} s; "
                          "more like it are held back for the rest of that time]")
            record.args = None
            record.exc_info = record.exc_text = None
            record.stack_info = None
        elif held:
            record.msg = f"{record.getMessage()} [{held} more like it were held back]"
            record.args = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


def setup_logging(fmt: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(RepeatFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's access log would print every request line; ours is enough.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
