"""Till users' PINs on a real ledger file: keyed hashes, old hashes upgraded, PIN lengths by role."""

from __future__ import annotations

import secrets

import pytest
from argon2 import PasswordHasher
from argon2.exceptions import VerifyMismatchError
from sqlalchemy import select, update

from ledger.errors import ValidationFailed
from ledger.schema import users
from ledger.service import Ledger
from ledger.users import KEYED_PREFIX, AuthError, add_user, authenticate, hash_pin, verify_pin

KEY = secrets.token_bytes(32)


def _stored(ledger: Ledger, username: str) -> str:
    with ledger.engine.connect() as conn:
        return str(conn.execute(select(users.c.pin_hash).where(users.c.username == username)).scalar_one())


def test_a_keyed_hash_does_not_verify_without_the_key() -> None:
    stored = hash_pin("123456", KEY)
    assert stored.startswith(KEYED_PREFIX)
    assert verify_pin(stored, "123456", KEY) == (True, False)
    assert verify_pin(stored, "123456", secrets.token_bytes(32)) == (False, False)
    with pytest.raises(VerifyMismatchError):  # what a thief with the ledger alone can try
        PasswordHasher().verify(stored[len(KEYED_PREFIX):], "123456")


def test_an_unkeyed_hash_still_verifies_and_is_stored_keyed_at_the_next_login(ledger: Ledger) -> None:
    add_user(ledger, username="old", role="cashier", pin="1234", actor="test", pin_key=KEY)
    with ledger.write("test") as conn:  # as stored before PINs were keyed
        conn.execute(update(users).where(users.c.username == "old").values(pin_hash=PasswordHasher().hash("1234")))
    assert not _stored(ledger, "old").startswith(KEYED_PREFIX)
    assert authenticate(ledger, username="old", pin="1234", pin_key=KEY).username == "old"
    assert _stored(ledger, "old").startswith(KEYED_PREFIX)
    assert authenticate(ledger, username="old", pin="1234", pin_key=KEY).username == "old"
    with pytest.raises(AuthError):
        authenticate(ledger, username="old", pin="1234", pin_key=secrets.token_bytes(32))


@pytest.mark.parametrize(("role", "short", "enough"), [("cashier", "123", "1234"), ("manager", "12345", "123456"),
                                                       ("admin", "12345", "123456")])
def test_managers_and_admins_need_six_digits_cashiers_four(ledger: Ledger, role: str, short: str,
                                                            enough: str) -> None:
    with pytest.raises(ValidationFailed):
        add_user(ledger, username=role, role=role, pin=short, actor="test", pin_key=KEY)
    add_user(ledger, username=role, role=role, pin=enough, actor="test", pin_key=KEY)
