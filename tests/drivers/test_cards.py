"""Which numbers are member cards: ranges, Luhn, payment cards refused, masking,
and duplicate reads within a window."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.cards import DEDUPE_CARDS_MAX, CardPolicy, Deduper, Range, luhn_ok, mask, payment_network
from drivers.errors import BankCardRefused, CardRejected, OutOfRange

T0 = datetime(2026, 11, 25, 9, tzinfo=timezone.utc)


def with_luhn(body: str) -> str:
    for d in "0123456789":
        if luhn_ok(body + d):
            return body + d
    raise AssertionError("unreachable")


def test_luhn_and_masking() -> None:
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112") and not luhn_ok("x1")
    assert mask("4111111111111111") == "411111******1111"
    assert mask("123456") == "**3456" and mask("1234") == "****"


@pytest.mark.parametrize("number,network", [
    ("4111111111111111", "Visa"), ("5500000000000004", "Mastercard"), ("2221000000000009", "Mastercard"),
    ("378282246310005", "Amex"), ("6037991234567893", "Shetab"), ("6011111111111117", "Discover"),
])
def test_payment_cards_are_recognised(number: str, network: str) -> None:
    assert payment_network(number) == network


def test_the_policy_accepts_only_configured_ranges_and_refuses_bank_cards_masked() -> None:
    policy = CardPolicy((Range("6395", (16,), False), Range("77", (10, 12), True)))
    assert policy.accept("6395000000000001") == "6395000000000001"
    good = with_luhn("77123456789")
    assert policy.accept(good) == good
    with pytest.raises(OutOfRange, match="not a member card"):
        policy.accept(good[:-1] + str((int(good[-1]) + 1) % 10))  # Luhn required in this range
    with pytest.raises(OutOfRange):
        policy.accept("639500000000001")  # wrong length
    with pytest.raises(BankCardRefused, match="this is a bank card") as err:
        policy.accept("6037991234567893")
    assert "6037991234567893" not in str(err.value) and "603799******7893" in str(err.value)


@given(st.text(max_size=40))
def test_any_text_is_accepted_or_refused_never_shown_whole(text: str) -> None:
    policy = CardPolicy((Range("6395", (16,), False),))
    try:
        assert policy.accept(text).startswith("6395")
    except CardRejected as exc:
        digits = text.strip()
        if len(digits) >= 8:
            assert digits not in str(exc)


def test_duplicates_within_the_window_count_once_and_memory_is_bounded() -> None:
    d = Deduper(timedelta(milliseconds=1500))
    assert d.first("A", T0) and not d.first("A", T0 + timedelta(milliseconds=1000))
    assert not d.first("A", T0 + timedelta(milliseconds=2000))  # within 1.5 s of the last read
    assert d.first("A", T0 + timedelta(seconds=4))
    assert d.first("B", T0 + timedelta(seconds=4))
    for i in range(DEDUPE_CARDS_MAX + 10):
        d.first(f"C{i}", T0)
    assert len(d._seen) == DEDUPE_CARDS_MAX
