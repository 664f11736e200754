"""Till user sessions: opened with user and PIN, held in memory, bounded and expiring.

Only a hash of each session token is kept, so a memory dump does not hand out sessions.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass

from ledger.users import User

SESSIONS_MAX = 64
SESSION_IDLE_S_MAX = 15 * 60


@dataclass
class Session:
    user: User
    last_used_s: float


class SessionStore:
    def __init__(self, idle_s_max: float = SESSION_IDLE_S_MAX, clock=time.monotonic) -> None:  # type: ignore[no-untyped-def]
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()
        self._idle_s_max = idle_s_max
        self._clock = clock

    @staticmethod
    def _key(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def open(self, user: User) -> str:
        token = secrets.token_urlsafe(32)
        now = self._clock()
        with self._lock:
            self._expire(now)
            if len(self._sessions) >= SESSIONS_MAX:
                oldest = min(self._sessions, key=lambda k: self._sessions[k].last_used_s)
                del self._sessions[oldest]
            self._sessions[self._key(token)] = Session(user, now)
        return token

    def get(self, token: str) -> User | None:
        now = self._clock()
        with self._lock:
            self._expire(now)
            session = self._sessions.get(self._key(token))
            if session is None:
                return None
            session.last_used_s = now
            return session.user

    def close(self, token: str) -> bool:
        with self._lock:
            return self._sessions.pop(self._key(token), None) is not None

    def _expire(self, now: float) -> None:
        for key in [k for k, s in self._sessions.items() if now - s.last_used_s > self._idle_s_max]:
            del self._sessions[key]
