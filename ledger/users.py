"""Till users (cashier, manager, admin) and their PINs.

PINs are keyed with a secret kept outside the database (HMAC-SHA256 with the caller's
pin key, a "pepper") and then hashed with Argon2id (memory-hard): a copied ledger alone
cannot be used to guess PINs offline. Five wrong PINs in a row lock the user for five
minutes. Every change to a user, every failed login and every lock-out is audited.

A login that fails says the same thing whatever the reason (no such user, wrong PIN,
locked user) and costs the same work, so user names cannot be found by trying; the
audit log keeps the truth.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, insert, or_, select, update

from ledger.db import translate_db_errors
from ledger.errors import LedgerError, ValidationFailed
from ledger.schema import ROLES, users
from ledger.types import require_text
from ledger.writer import audit

if TYPE_CHECKING:
    from ledger.service import Ledger

PIN_FAILURES_MAX = 5
LOCKOUT = timedelta(minutes=5)
PIN_LENGTH_MAX = 12
# A manager's or admin's session can enrol members, move points and gift value: they
# need a longer PIN than a cashier.
PIN_LENGTH_MIN_BY_ROLE = {"cashier": 4, "manager": 6, "admin": 6}
PIN_LENGTH_MIN = min(PIN_LENGTH_MIN_BY_ROLE.values())
PIN_KEY_BYTES = 32
# Stored hashes of keyed PINs start with this; hashes without it are from before PINs
# were keyed: they still verify, and are stored keyed at the next successful login.
KEYED_PREFIX = "k1$"
AUTH_FAILED_MESSAGE = (f"wrong user name or PIN; after {PIN_FAILURES_MAX} wrong PINs a user is locked for "
                       f"{int(LOCKOUT.total_seconds() // 60)} minutes")
# Argon2id with 19 MiB and 2 passes (OWASP's minimum): ~20 ms here; a PIN is checked
# once per session, not per request.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_VERIFY_ERRORS = (VerifyMismatchError, VerificationError, InvalidHashError)


class AuthError(LedgerError):
    code = "auth_failed"


class UnknownUser(LedgerError):
    """Only for administration (set-pin): a login never says that a user does not exist."""

    code = "unknown_user"


class DuplicateUser(LedgerError):
    code = "duplicate_user"


@dataclass(frozen=True)
class User:
    username: str
    role: str


def _check_key(pin_key: bytes) -> bytes:
    if not isinstance(pin_key, bytes) or len(pin_key) != PIN_KEY_BYTES:
        raise ValueError(f"the PIN key must be {PIN_KEY_BYTES} bytes")
    return pin_key


def _check_pin(pin: str, role: str) -> str:
    shortest = PIN_LENGTH_MIN_BY_ROLE[role]
    if not isinstance(pin, str) or not pin.isdigit() or not shortest <= len(pin) <= PIN_LENGTH_MAX:
        raise ValidationFailed(f"a {role}'s PIN is {shortest} to {PIN_LENGTH_MAX} digits")
    return pin


def _pepper(pin: str, pin_key: bytes) -> str:
    return hmac.new(pin_key, pin.encode(), hashlib.sha256).hexdigest()


def hash_pin(pin: str, pin_key: bytes) -> str:
    """The stored form of a PIN: Argon2id of the PIN keyed with pin_key, versioned."""
    return KEYED_PREFIX + _HASHER.hash(_pepper(pin, _check_key(pin_key)))


def verify_pin(stored: str, pin: str, pin_key: bytes) -> tuple[bool, bool]:
    """(right, store_again): store_again when the stored hash is unkeyed or its Argon2
    parameters are out of date."""
    _check_key(pin_key)
    try:
        if stored.startswith(KEYED_PREFIX):
            argon = stored[len(KEYED_PREFIX):]
            _HASHER.verify(argon, _pepper(pin, pin_key))
            return True, _HASHER.check_needs_rehash(argon)
        _HASHER.verify(stored, pin)  # from before PINs were keyed
        return True, True
    except _VERIFY_ERRORS:
        return False, False


@functools.cache
def _dummy_hash() -> str:
    # an unknown user's attempt is checked against this, so it costs what a real one does
    return KEYED_PREFIX + _HASHER.hash("not a PIN of anyone")


def _read_user(ledger: "Ledger", username: str) -> dict[str, Any] | None:
    """The user's row, read outside any write transaction.

    Ledger.read() begins BEGIN IMMEDIATE like a write (the engine's begin hook), so this
    runs one plain SELECT on the driver's connection, which is in autocommit mode: a
    read that never holds the write lock while a PIN is being checked."""
    with translate_db_errors("reading a user"), ledger.engine.connect() as conn:
        dbapi = conn.connection.driver_connection
        row = dbapi.execute(  # type: ignore[union-attr]
            "SELECT username, role, pin_hash, failed_attempts, locked_until, disabled_at FROM users "
            "WHERE username = ?", (username,)).fetchone()
    if row is None:
        return None
    locked = users.c.locked_until.type.process_result_value(row[4], None)  # type: ignore[attr-defined]
    return {"username": row[0], "role": row[1], "pin_hash": row[2], "failed_attempts": row[3],
            "locked_until": locked, "disabled": row[5] is not None}


def add_user(ledger: "Ledger", *, username: str, role: str, pin: str, actor: str,  # noqa: F821
             pin_key: bytes) -> User:
    username = require_text("username", username, maximum=64)
    if role not in ROLES:
        raise ValidationFailed(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    pin_hash = hash_pin(_check_pin(pin, role), pin_key)
    at = ledger.clock()
    with ledger.write("adding a user") as conn:
        if conn.execute(users.select().where(users.c.username == username)).first():
            raise DuplicateUser(f"user {username!r} already exists")
        conn.execute(insert(users).values(username=username, role=role, pin_hash=pin_hash, created_at=at))
        audit(conn, at=at, actor=actor, action="user.add", target=username, role=role)
    return User(username, role)


def set_pin(ledger: "Ledger", *, username: str, pin: str, actor: str, pin_key: bytes) -> None:  # noqa: F821
    row = _read_user(ledger, username)
    if row is None:
        raise UnknownUser(f"no user {username!r}")
    pin_hash = hash_pin(_check_pin(pin, row["role"]), pin_key)  # hashed before the write lock is taken
    at = ledger.clock()
    with ledger.write("changing a PIN") as conn:
        done = conn.execute(update(users).where(users.c.username == username, users.c.role == row["role"])
                            .values(pin_hash=pin_hash, failed_attempts=0, locked_until=None))
        if done.rowcount == 0:
            raise UnknownUser(f"user {username!r} was removed or changed role meanwhile; try again")
        audit(conn, at=at, actor=actor, action="user.set_pin", target=username)


@dataclass(frozen=True)
class UserInfo:
    """A user as an admin sees them: never the PIN's hash."""

    username: str
    role: str
    created_at: datetime
    disabled_at: datetime | None
    locked_until: datetime | None
    failed_attempts: int


def list_users(ledger: "Ledger") -> list[UserInfo]:  # noqa: F821
    """Every till user, by name."""
    with ledger.read() as conn:
        rows = conn.execute(select(users.c.username, users.c.role, users.c.created_at, users.c.disabled_at,
                                   users.c.locked_until, users.c.failed_attempts)
                            .order_by(users.c.username)).all()
    return [UserInfo(r.username, r.role, r.created_at, r.disabled_at, r.locked_until, int(r.failed_attempts))
            for r in rows]


def set_disabled(ledger: "Ledger", *, username: str, disabled: bool, actor: str) -> UserInfo:  # noqa: F821
    """Disable a user (they can no longer log in) or enable them again. An admin cannot
    disable themselves, nor the last admin who can still log in."""
    username = require_text("username", username, maximum=64)
    at = ledger.clock()
    with ledger.write("disabling a user" if disabled else "enabling a user") as conn:
        row = conn.execute(select(users).where(users.c.username == username)).one_or_none()
        if row is None:
            raise UnknownUser(f"no user {username!r}")
        if disabled and username == actor:
            raise ValidationFailed("you cannot disable yourself; ask another admin")
        if disabled and row.role == "admin" and row.disabled_at is None:
            admins = conn.execute(select(func.count()).select_from(users).where(
                users.c.role == "admin", users.c.disabled_at.is_(None))).scalar_one()
            if admins <= 1:
                raise ValidationFailed(f"{username} is the last admin who can log in; add another admin first")
        if (row.disabled_at is not None) != disabled:
            conn.execute(update(users).where(users.c.username == username)
                         .values(disabled_at=at if disabled else None, failed_attempts=0, locked_until=None))
            audit(conn, at=at, actor=actor, action="user.disable" if disabled else "user.enable", target=username)
        row = conn.execute(select(users).where(users.c.username == username)).one()
    return UserInfo(row.username, row.role, row.created_at, row.disabled_at, row.locked_until,
                    int(row.failed_attempts))


def authenticate(ledger: "Ledger", *, username: str, pin: str, pin_key: bytes) -> User:  # noqa: F821
    """The user if the PIN is right; else AuthError with AUTH_FAILED_MESSAGE, whatever the reason.

    The user is read without the write lock, the PIN checked (the slow part) outside any
    transaction, and only then is a failure counted, in a short write transaction that
    increments in SQL: concurrent failures are all counted, and sales never wait for
    Argon2. Errors are raised after the transaction (inside, it would roll back the count).
    """
    at: datetime = ledger.clock()
    pin = pin if isinstance(pin, str) else ""
    row = _read_user(ledger, username)
    if row is None:
        verify_pin(_dummy_hash(), pin, pin_key)  # the same work as a wrong PIN
        with ledger.write("recording a failed login") as conn:
            audit(conn, at=at, actor="anonymous", action="user.login_unknown", target=username[:64])
        raise AuthError(AUTH_FAILED_MESSAGE)
    right, store_again = verify_pin(row["pin_hash"], pin, pin_key)
    not_locked = or_(users.c.locked_until.is_(None), users.c.locked_until <= at)
    failure = False
    if row["disabled"]:
        with ledger.write("recording a login of a disabled user") as conn:
            audit(conn, at=at, actor=username, action="user.login_disabled", target=username)
        failure = True
    elif row["locked_until"] is not None and row["locked_until"] > at:
        with ledger.write("recording a login of a locked user") as conn:
            audit(conn, at=at, actor=username, action="user.login_locked", target=username,
                  locked_until=row["locked_until"])
        failure = True
    elif not right:
        with ledger.write("counting a wrong PIN") as conn:
            failures = conn.execute(
                update(users).where(users.c.username == username, not_locked)
                .values(failed_attempts=users.c.failed_attempts + 1).returning(users.c.failed_attempts)
            ).scalar_one_or_none()
            if failures is None:  # locked meanwhile by concurrent failures
                audit(conn, at=at, actor=username, action="user.login_locked", target=username)
            else:
                locked = at + LOCKOUT if failures >= PIN_FAILURES_MAX else None
                if locked is not None:
                    conn.execute(update(users).where(users.c.username == username)
                                 .values(failed_attempts=0, locked_until=locked))
                audit(conn, at=at, actor=username, action="user.pin_failed", target=username, failures=failures,
                      locked=locked is not None)
        failure = True
    elif row["failed_attempts"] or row["locked_until"] is not None or store_again:
        new_hash = hash_pin(pin, pin_key) if store_again else None  # outside the transaction too
        with ledger.write("clearing failed PINs") as conn:
            done = conn.execute(update(users).where(users.c.username == username, not_locked)
                                .values(failed_attempts=0, locked_until=None))
            if done.rowcount == 0:  # locked meanwhile by concurrent failures
                audit(conn, at=at, actor=username, action="user.login_locked", target=username)
                failure = True
            elif new_hash is not None:
                # only if the PIN was not changed meanwhile
                conn.execute(update(users).where(users.c.username == username,
                                                 users.c.pin_hash == row["pin_hash"]).values(pin_hash=new_hash))
    if failure:
        raise AuthError(AUTH_FAILED_MESSAGE)
    return User(row["username"], row["role"])
