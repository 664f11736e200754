"""Till user sessions: opened with user and PIN, held in memory, bounded and expiring.

Only a hash of each session token is kept, so a memory dump does not hand out sessions.

Bounds: each user holds at most SESSIONS_PER_USER_MAX sessions (a new one replaces
that user's own least recently used), and the store at most SESSIONS_MAX. When the
store is full, a new session replaces the least recently used session of a user of
the same or a lower role, never a higher one: cashiers logging in cannot push out a
manager's open session. If there is none, the new session is refused (SessionsFull).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass

from ledger.schema import ROLES
from ledger.users import User

SESSIONS_MAX = 64
SESSIONS_PER_USER_MAX = 4
SESSION_IDLE_S_MAX = 15 * 60
_RANK = {role: rank for rank, role in enumerate(ROLES)}  # cashier < manager < admin


class SessionsFull(Exception):
    pass


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
            own = [k for k, s in self._sessions.items() if s.user.username == user.username]
            if len(own) >= SESSIONS_PER_USER_MAX:
                del self._sessions[self._least_recent(own)]
            elif len(self._sessions) >= SESSIONS_MAX:
                rank = _RANK.get(user.role, 0)
                peers = [k for k, s in self._sessions.items() if _RANK.get(s.user.role, len(_RANK)) <= rank]
                if not peers:
                    raise SessionsFull(f"{SESSIONS_MAX} sessions of users of a higher role are open; "
                                       "close one (log out) or wait until one expires")
                del self._sessions[self._least_recent(peers)]
            self._sessions[self._key(token)] = Session(user, now)
        return token

    def _least_recent(self, keys: list[str]) -> str:
        return min(keys, key=lambda k: self._sessions[k].last_used_s)

    def close_user(self, username: str) -> int:
        """End every open session of one user (disabled, or its PIN changed); how many ended."""
        with self._lock:
            keys = [k for k, s in self._sessions.items() if s.user.username == username]
            for key in keys:
                del self._sessions[key]
        return len(keys)

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
