"""Which card numbers are this programme's member cards: one policy for every door
(reader, local API, console, CLI, import, sync in both directions, the hub). Pure.

A number is a member card when it lies in one of the configured ranges (prefix,
lengths, and a Luhn check digit where the range asks for it) and does not look like
a payment card of any network: a Visa, Mastercard or Shetab (Iranian bank) card
swiped or typed by mistake is refused even inside a range, and it is shown masked
(first 6, last 4) and never written anywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ledger.errors import CardOutOfRange, PaymentCardRefused, ValidationFailed

CARD_NUMBER_MAX = 32

# Persian and Arabic-Indic digits, as typed on a Persian keyboard or pasted from a receipt
_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")
_SEPARATORS = re.compile(r"[\s\-\u200c\u200f\u200e]")

# Issuer prefixes of the payment networks (ISO/IEC 7812 IINs). Iranian bank cards
# (Shetab) start with 6 as well, on 16 digits with a valid Luhn digit.
_PAYMENT_PREFIXES: tuple[tuple[str, str], ...] = (
    ("4", "Visa"), ("34", "Amex"), ("37", "Amex"), ("36", "Diners"), ("35", "JCB"),
    ("62", "UnionPay"), ("65", "Discover"), ("6011", "Discover"),
)
SHETAB_PREFIXES = (
    "603799", "589210", "627648", "627961", "603770", "628023", "627760", "502908", "627412", "622106",
    "502229", "627488", "621986", "639346", "639607", "502806", "502938", "603769", "610433", "627353",
    "585983", "589463", "627381", "505785", "636214", "636949", "505416", "606373", "504706", "639370",
    "628157", "505801", "639599", "627884", "585947", "507677", "504172", "606256",
)


def normalise_card_number(raw: Any, name: str = "card number") -> str:
    """The number as stored: Persian or Arabic digits made ASCII, spaces and dashes
    dropped, letters upper case. ValidationFailed (never echoing the number) if it is
    not 4 to 32 letters or digits."""
    if not isinstance(raw, str):
        raise ValidationFailed(f"{name} must be text, got {type(raw).__name__}")
    text = _SEPARATORS.sub("", raw.translate(_DIGITS)).upper()
    if not 4 <= len(text) <= CARD_NUMBER_MAX or not text.isascii() or not text.isalnum():
        raise ValidationFailed(f"{name} must be 4 to {CARD_NUMBER_MAX} letters or digits")
    return text


def luhn_ok(number: str) -> bool:
    if not number.isascii() or not number.isdigit() or len(number) < 2:
        return False
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def mask(number: str) -> str:
    """First 6 and last 4 for long numbers (PCI DSS), last 4 otherwise."""
    if len(number) >= 13:
        return number[:6] + "*" * (len(number) - 10) + number[-4:]
    if len(number) > 4:
        return "*" * (len(number) - 4) + number[-4:]
    return "*" * len(number)


def payment_network(number: str) -> str | None:
    """The payment network a number looks like, or None. Only for 13-19 digit numbers
    with a valid Luhn digit: anything else cannot be a payment card."""
    if not number.isascii() or not number.isdigit() or not 13 <= len(number) <= 19 or not luhn_ok(number):
        return None
    if number.startswith(SHETAB_PREFIXES):
        return "Shetab"
    if len(number) == 16 and 51 <= int(number[:2]) <= 55 or 222100 <= int(number[:6]) <= 272099:
        return "Mastercard"
    for prefix, name in _PAYMENT_PREFIXES:
        if number.startswith(prefix):
            return name
    return None


def payment_prefix_of(prefix: str) -> str | None:
    """The network whose numbers every number with this range prefix would look like
    (a range inside Visa's 4...): such a range cannot hold member cards."""
    for known, name in _PAYMENT_PREFIXES:
        if prefix.startswith(known):
            return name
    if len(prefix) >= 2 and 51 <= int(prefix[:2]) <= 55:
        return "Mastercard"
    if prefix.startswith(SHETAB_PREFIXES):
        return "Shetab"
    return None


_MASTERCARD_SPANS = ((510000, 559999, "51-55"), (222100, 272099, "2221-2720"))


def payment_prefixes_within(prefix: str) -> list[tuple[str, str]]:
    """Payment prefixes that lie inside a member range's prefix, as (network, prefix):
    the range 6395 holds Shetab's 639599. Numbers there with a valid check digit are
    refused as bank cards, so member cards should not be printed there (a range wholly
    inside a network is refused outright: payment_prefix_of)."""
    inside = [(name, p) for p, name in _PAYMENT_PREFIXES if p.startswith(prefix) and p != prefix]
    inside += [("Shetab", p) for p in SHETAB_PREFIXES if p.startswith(prefix) and p != prefix]
    if prefix.isdigit() and len(prefix) <= 6:
        low, high = int(prefix.ljust(6, "0")), int(prefix.ljust(6, "9"))
        inside += [("Mastercard", name) for first, last, name in _MASTERCARD_SPANS if low <= last and first <= high]
    return inside


def overlap_warning(prefix: str) -> str | None:
    """What to tell whoever sets a member range holding payment prefixes; None if it holds none."""
    inside = payment_prefixes_within(prefix)
    if not inside:
        return None
    shown = ", ".join(f"{name} {p}" for name, p in inside[:5]) + (f" and {len(inside) - 5} more" if len(inside) > 5
                                                                   else "")
    return (f"the member range {prefix} holds {shown}: a number there with a valid check digit is refused as a "
            "bank card; print no member cards there")


@dataclass(frozen=True)
class CardRange:
    prefix: str
    lengths: tuple[int, ...]
    luhn: bool = False

    def matches(self, number: str) -> bool:
        return number.startswith(self.prefix) and len(number) in self.lengths and (not self.luhn or luhn_ok(number))


@dataclass(frozen=True)
class Refusal:
    """Why a number is not a member card: a stable code, a message that shows the
    number masked only, and the masked form."""

    code: str  # "bank_card" or "card_out_of_range"
    message: str
    masked: str

    def error(self) -> ValidationFailed:
        return (PaymentCardRefused if self.code == PaymentCardRefused.code else CardOutOfRange)(self.message)


DEFAULT_RANGES = (CardRange("6395", (16,), False),)


@dataclass(frozen=True)
class CardPolicy:
    """The member card ranges. With no ranges at all (the hub before head office sets
    them), every number is accepted except a payment card's."""

    ranges: tuple[CardRange, ...] = DEFAULT_RANGES
    mask = staticmethod(mask)

    def refusal(self, number: str) -> Refusal | None:
        """None for a member card; else why not. `number` is already normalised."""
        network = payment_network(number)
        if network is not None:
            masked = mask(number)
            return Refusal(PaymentCardRefused.code,
                           f"this is a bank card ({network} {masked}), not a member card", masked)
        if not self.ranges or any(r.matches(number) for r in self.ranges):
            return None
        masked = mask(number)
        return Refusal(CardOutOfRange.code, f"card {masked} is not a member card of this programme", masked)

    def accept(self, raw: Any, name: str = "card number") -> str:
        """The normalised member number; PaymentCardRefused or CardOutOfRange otherwise."""
        number = normalise_card_number(raw, name)
        refused = self.refusal(number)
        if refused is not None:
            raise refused.error()
        return number

    def not_payment(self, raw: Any, name: str = "card number") -> str:
        """For numbers that are not member cards (gift cards): normalised, and never a
        payment card's."""
        number = normalise_card_number(raw, name)
        network = payment_network(number)
        if network is not None:
            raise PaymentCardRefused(f"this is a bank card ({network} {mask(number)}), not a {name}")
        return number

    @classmethod
    def from_config(cls, cards: Any) -> "CardPolicy":
        """From the agent's [cards] section (anything with `.ranges` of prefix, lengths, luhn)."""
        return cls(tuple(CardRange(r.prefix, tuple(r.lengths), bool(r.luhn)) for r in cards.ranges))

    def overlap_warnings(self) -> list[str]:
        """overlap_warning of each range that holds a payment prefix (said at the agent's
        start and by `loyalty-hub cards ranges set`)."""
        return [w for r in self.ranges if (w := overlap_warning(r.prefix)) is not None]

    def describe(self) -> list[dict[str, Any]]:
        return [{"prefix": r.prefix, "lengths": list(r.lengths), "luhn": r.luhn} for r in self.ranges]

    @classmethod
    def from_description(cls, rows: list[dict[str, Any]]) -> "CardPolicy":
        return cls(tuple(CardRange(str(r["prefix"]), tuple(int(x) for x in r["lengths"]), bool(r.get("luhn")))
                         for r in rows))
