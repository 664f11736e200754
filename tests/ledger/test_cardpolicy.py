"""The one card policy (invariant 10): ranges, check digits, payment cards refused
first and shown masked, Persian and Arabic digits normalised."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.cardpolicy import (
    CardPolicy,
    CardRange,
    luhn_ok,
    mask,
    normalise_card_number,
    payment_network,
    payment_prefix_of,
)
from ledger.errors import CardOutOfRange, PaymentCardRefused, ValidationFailed


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
    ("4111111111111111", "Visa"), ("4761739001010010", "Visa"), ("5500000000000004", "Mastercard"),
    ("2221000000000009", "Mastercard"), ("378282246310005", "Amex"), ("6037991234567893", "Shetab"),
    ("6011111111111117", "Discover"),
])
def test_payment_cards_are_recognised(number: str, network: str) -> None:
    assert payment_network(number) == network


def test_the_policy_accepts_only_configured_ranges_and_refuses_bank_cards_masked() -> None:
    policy = CardPolicy((CardRange("6395", (16,), False), CardRange("77", (10, 12), True)))
    assert policy.accept("6395000000000001") == "6395000000000001"
    good = with_luhn("77123456789")
    assert policy.accept(good) == good
    with pytest.raises(CardOutOfRange, match="not a member card"):
        policy.accept(good[:-1] + str((int(good[-1]) + 1) % 10))  # Luhn required in this range
    with pytest.raises(CardOutOfRange):
        policy.accept("639500000000001")  # wrong length
    with pytest.raises(PaymentCardRefused, match="this is a bank card") as err:
        policy.accept("6037991234567893")
    assert "6037991234567893" not in str(err.value) and "603799******7893" in str(err.value)


def test_a_payment_card_is_refused_even_inside_a_range() -> None:
    # a careless range (Visa's 4...) must not turn bank cards into member cards
    policy = CardPolicy((CardRange("4", (16,), False),))
    with pytest.raises(PaymentCardRefused):
        policy.accept("4111111111111111")
    assert payment_prefix_of("41") == "Visa" and payment_prefix_of("6395") is None


def test_persian_and_arabic_digits_and_spaces_are_normalised() -> None:
    assert CardPolicy().accept("۶۳۹۵ ۰۰۰۰ ۰۰۰۰ ۱۲۳۴") == "6395000000001234"
    assert CardPolicy().accept("٦٣٩٥-٠٠٠٠-٠٠٠٠-١٢٣٤") == "6395000000001234"
    with pytest.raises(PaymentCardRefused):
        CardPolicy().accept("۶۰۳۷ ۹۹۱۲ ۳۴۵۶ ۷۸۹۳")


def test_no_ranges_means_every_number_but_a_payment_card() -> None:
    policy = CardPolicy(())
    assert policy.accept("1234") == "1234"
    with pytest.raises(PaymentCardRefused):
        policy.accept("5500000000000004")


def test_gift_card_numbers_are_never_payment_cards() -> None:
    assert CardPolicy().not_payment("GC-0001") == "GC0001"
    with pytest.raises(PaymentCardRefused):
        CardPolicy().not_payment("4111 1111 1111 1111", "gift card number")


@given(st.text(max_size=40))
def test_any_text_is_accepted_or_refused_never_shown_whole(text: str) -> None:
    policy = CardPolicy()
    try:
        assert policy.accept(text).startswith("6395")
    except ValidationFailed as exc:
        # the number keyed (its digits, whatever else was typed around them) is never
        # repeated whole; words typed are (the refusal's own words may contain them)
        digits = "".join(c for c in text if c.isdigit())
        if len(digits) >= 8:
            assert digits not in str(exc) and text.strip() not in str(exc)


def test_a_range_holding_a_bank_prefix_is_named_with_it() -> None:
    from ledger.cardpolicy import overlap_warning, payment_prefixes_within

    assert payment_prefixes_within("6395") == [("Shetab", "639599")]  # the example range holds Bank Ghavamin's BIN
    assert payment_prefixes_within("77") == [] and overlap_warning("77") is None
    assert ("Mastercard", "2221-2720") in payment_prefixes_within("2500")  # inside Mastercard's 2-series
    assert ("Mastercard", "51-55") in payment_prefixes_within("5")
    warning = overlap_warning("63")
    assert warning is not None and "Shetab 639346" in warning and "and 1 more" in warning


@given(st.sampled_from(["6", "63", "6395", "5", "50", "2", "27", "272", "60", "62"]),
       st.text(alphabet="0123456789", min_size=15, max_size=15))
def test_every_bank_number_inside_a_range_lies_under_a_prefix_it_was_warned_of(prefix: str, tail: str) -> None:
    from ledger.cardpolicy import luhn_ok, payment_network, payment_prefixes_within

    body = (prefix + tail)[:15]
    number = next(body + d for d in "0123456789" if luhn_ok(body + d))
    network = payment_network(number)
    if network is None or payment_prefix_of(prefix) is not None:
        return
    warned = payment_prefixes_within(prefix)
    spans = {"51-55": (510000, 559999), "2221-2720": (222100, 272099)}
    assert any(number.startswith(p) if p not in spans else spans[p][0] <= int(number[:6]) <= spans[p][1]
               for _, p in warned), (prefix, network)
