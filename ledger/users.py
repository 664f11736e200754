"""Till users (cashier, manager, admin) and their PINs.

PINs are hashed with Argon2id (memory-hard); five wrong PINs in a row lock the user
for five minutes. Every change to a user, and every lock-out, is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import insert, select, update

from ledger.errors import LedgerError, ValidationFailed
from ledger.schema import ROLES, users
from ledger.types import require_text
from ledger.writer import audit

if TYPE_CHECKING:
    from ledger.service import Ledger

PIN_FAILURES_MAX = 5
LOCKOUT = timedelta(minutes=5)
PIN_LENGTH_MIN = 4
PIN_LENGTH_MAX = 12
# Argon2id with 19 MiB and 2 passes (OWASP's minimum): ~20 ms here; a PIN is checked
# once per session, not per request.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


class AuthError(LedgerError):
    code = "auth_failed"


class UserLocked(AuthError):
    code = "user_locked"


class UnknownUser(AuthError):
    code = "unknown_user"


class DuplicateUser(LedgerError):
    code = "duplicate_user"


@dataclass(frozen=True)
class User:
    username: str
    role: str


def _check_pin(pin: str) -> str:
    if not isinstance(pin, str) or not pin.isdigit() or not PIN_LENGTH_MIN <= len(pin) <= PIN_LENGTH_MAX:
        raise ValidationFailed(f"a PIN is {PIN_LENGTH_MIN} to {PIN_LENGTH_MAX} digits")
    return pin


def add_user(ledger: "Ledger", *, username: str, role: str, pin: str, actor: str) -> User:  # noqa: F821
    username = require_text("username", username, maximum=64)
    if role not in ROLES:
        raise ValidationFailed(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    pin_hash = _HASHER.hash(_check_pin(pin))
    at = ledger.clock()
    with ledger.write("adding a user") as conn:
        if conn.execute(select(users.c.username).where(users.c.username == username)).first():
            raise DuplicateUser(f"user {username!r} already exists")
        conn.execute(insert(users).values(username=username, role=role, pin_hash=pin_hash, created_at=at))
        audit(conn, at=at, actor=actor, action="user.add", target=username, role=role)
    return User(username, role)


def set_pin(ledger: "Ledger", *, username: str, pin: str, actor: str) -> None:  # noqa: F821
    pin_hash = _HASHER.hash(_check_pin(pin))
    at = ledger.clock()
    with ledger.write("changing a PIN") as conn:
        done = conn.execute(update(users).where(users.c.username == username)
                            .values(pin_hash=pin_hash, failed_attempts=0, locked_until=None))
        if done.rowcount == 0:
            raise UnknownUser(f"no user {username!r}")
        audit(conn, at=at, actor=actor, action="user.set_pin", target=username)


def authenticate(ledger: "Ledger", *, username: str, pin: str) -> User:  # noqa: F821
    """The user if the PIN is right; counts failures and locks after PIN_FAILURES_MAX.

    The failure count must be committed even though the call fails, so the error is
    raised after the transaction, never inside it (that would roll the count back).
    """
    at: datetime = ledger.clock()
    failure: AuthError | None = None
    with ledger.write("checking a PIN") as conn:
        row = conn.execute(select(users).where(users.c.username == username)).one_or_none()
        if row is None:
            # Same message as a wrong PIN: do not reveal which usernames exist.
            raise AuthError("wrong user name or PIN")
        if row.locked_until is not None and row.locked_until > at:
            minutes = max(1, int((row.locked_until - at).total_seconds() // 60) + 1)
            raise UserLocked(f"user {username} is locked after {PIN_FAILURES_MAX} wrong PINs; "
                             f"try again in {minutes} minute(s) or ask an admin")
        try:
            _HASHER.verify(row.pin_hash, pin if isinstance(pin, str) else "")
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            failures = row.failed_attempts + 1
            locked = at + LOCKOUT if failures >= PIN_FAILURES_MAX else None
            conn.execute(update(users).where(users.c.username == username).values(
                failed_attempts=0 if locked else failures, locked_until=locked))
            audit(conn, at=at, actor=username, action="user.pin_failed", target=username, failures=failures,
                  locked=locked is not None)
            if locked:
                failure = UserLocked(f"user {username} is now locked for {int(LOCKOUT.total_seconds() // 60)} "
                                     f"minutes after {PIN_FAILURES_MAX} wrong PINs")
            else:
                failure = AuthError("wrong user name or PIN")
        else:
            if row.failed_attempts or row.locked_until:
                conn.execute(update(users).where(users.c.username == username)
                             .values(failed_attempts=0, locked_until=None))
    if failure is not None:
        raise failure
    return User(row.username, row.role)
