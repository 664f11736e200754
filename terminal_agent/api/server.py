"""The HTTP server under the API: uvicorn, with the connection bounds it lacks.

uvicorn (0.55 here) closes a connection only for keep-alive idleness: one that opens
and sends nothing, or sends half a request head, stays forever, and a thousand of them
exhaust the process's file descriptors. GuardedHttpProtocol (uvicorn's httptools
protocol, a project dependency) adds:

- HEADER_READ_TIMEOUT_S: a connection must send a complete request head this soon
  after it opens (or after it starts a new request on a kept-alive connection);
- BODY_READ_TIMEOUT_S: and then the whole body this soon;
- WRITE_STALL_TIMEOUT_S: a client that stops reading an answer (an event stream it
  never reads) is cut off when the answer makes no progress for this long;
- CONNECTIONS_MAX: at most this many connections; one more takes the place of the
  oldest connection that is not in the middle of a request (idle, or still sending its
  head); if every one is busy, the new one is closed at once.

KEEP_ALIVE_TIMEOUT_S is uvicorn's own idle timeout between requests.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("terminal_agent.api.server")

HEADER_READ_TIMEOUT_S = 5.0
BODY_READ_TIMEOUT_S = 10.0
KEEP_ALIVE_TIMEOUT_S = 5
WRITE_STALL_TIMEOUT_S = 30.0
# The POS, the console and a few CLI calls need a handful; 16 event streams at most.
CONNECTIONS_MAX = 128
LISTEN_BACKLOG_MAX = 128


class GuardedHttpProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_timer: asyncio.TimerHandle | None = None
        self._stall_timer: asyncio.TimerHandle | None = None
        self._opened_s = 0.0
        self.idle = False  # no request in progress: may give its place to a new connection

    # -- connection ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= CONNECTIONS_MAX and not self._make_room():
            self.transport = transport  # connection_lost (called after abort) uses it
            log.warning("connection refused: %d connections open, all busy (CONNECTIONS_MAX)", CONNECTIONS_MAX)
            transport.abort()
            return
        super().connection_made(transport)
        self._opened_s = self.loop.time()
        self.idle = True
        self._arm_read(HEADER_READ_TIMEOUT_S, "no complete request head")

    def _make_room(self) -> bool:
        idle = [c for c in self.connections if isinstance(c, GuardedHttpProtocol) and c.idle]
        if not idle:
            return False
        oldest = min(idle, key=lambda c: c._opened_s)
        log.warning("connection closed: %d connections open (CONNECTIONS_MAX); the oldest idle one makes room",
                    CONNECTIONS_MAX)
        self.connections.discard(oldest)  # now, not when its connection_lost runs
        oldest.transport.abort()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_read()
        self._cancel_stall()
        super().connection_lost(exc)

    # -- reading a request -------------------------------------------------------------
    def _arm_read(self, timeout_s: float, what: str) -> None:
        self._cancel_read()
        self._read_timer = self.loop.call_later(timeout_s, self._read_timed_out, timeout_s, what)

    def _cancel_read(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _read_timed_out(self, timeout_s: float, what: str) -> None:
        self._read_timer = None
        if self.transport.is_closing():
            return
        log.warning("connection closed: %s within %.0f s", what, timeout_s)
        if self.cycle is not None and not self.cycle.response_complete:
            self.transport.abort()  # the app waits for the body: it sees a disconnect
        else:
            self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._read_timer is None:  # a new request on a kept-alive connection
            self._arm_read(HEADER_READ_TIMEOUT_S, "no complete request head")

    def on_headers_complete(self) -> None:
        self.idle = False
        super().on_headers_complete()
        self._arm_read(BODY_READ_TIMEOUT_S, "no complete request body")

    def on_message_complete(self) -> None:
        self._cancel_read()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.pipeline:
            self.idle = True

    # -- writing an answer -------------------------------------------------------------
    def pause_writing(self) -> None:
        super().pause_writing()
        if self._stall_timer is None:
            self._stall_timer = self.loop.call_later(WRITE_STALL_TIMEOUT_S, self._write_stalled)

    def resume_writing(self) -> None:
        self._cancel_stall()
        super().resume_writing()

    def _cancel_stall(self) -> None:
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None

    def _write_stalled(self) -> None:
        self._stall_timer = None
        log.warning("connection closed: the client read nothing of the answer for %.0f s", WRITE_STALL_TIMEOUT_S)
        self.transport.abort()


def server_config(app: Any, *, host: str, port: int, **kwargs: Any) -> uvicorn.Config:
    """uvicorn's config for the API: the guarded protocol and the timeouts above."""
    return uvicorn.Config(app, host=host, port=port, http=GuardedHttpProtocol, log_config=None, lifespan="off",
                          access_log=False, timeout_keep_alive=KEEP_ALIVE_TIMEOUT_S,
                          backlog=LISTEN_BACKLOG_MAX, **kwargs)
