"""Which card numbers are ours: loyalty ranges, Luhn, payment cards refused, masking,
and duplicate reads within a window. Pure."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

from drivers.errors import BankCardRefused, OutOfRange

DEDUPE_CARDS_MAX = 256  # distinct cards remembered for de-duplication

# Issuer prefixes of the payment networks (ISO/IEC 7812 IINs). Iranian bank cards
# (Shetab) start with 6 as well, on 16 digits with a valid Luhn digit.
_PAYMENT_PREFIXES: tuple[tuple[str, str], ...] = (
    ("4", "Visa"), ("34", "Amex"), ("37", "Amex"), ("36", "Diners"), ("35", "JCB"),
    ("62", "UnionPay"), ("65", "Discover"), ("6011", "Discover"),
)
_SHETAB_PREFIXES = (
    "603799", "589210", "627648", "627961", "603770", "628023", "627760", "502908", "627412", "622106",
    "502229", "627488", "621986", "639346", "639607", "502806", "502938", "603769", "610433", "627353",
    "585983", "589463", "627381", "505785", "636214", "636949", "505416", "606373", "504706", "639370",
    "628157", "505801", "639599", "627884", "585947", "507677", "504172", "606256",
)


def luhn_ok(number: str) -> bool:
    if not number.isdigit() or len(number) < 2:
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
    if not number.isdigit() or not 13 <= len(number) <= 19 or not luhn_ok(number):
        return None
    if number.startswith(_SHETAB_PREFIXES):
        return "Shetab"
    if len(number) == 16 and 51 <= int(number[:2]) <= 55 or 222100 <= int(number[:6]) <= 272099:
        return "Mastercard"
    for prefix, name in _PAYMENT_PREFIXES:
        if number.startswith(prefix):
            return name
    return None


@dataclass(frozen=True)
class Range:
    prefix: str
    lengths: tuple[int, ...]
    luhn: bool

    def matches(self, number: str) -> bool:
        return number.startswith(self.prefix) and len(number) in self.lengths and (not self.luhn or luhn_ok(number))


@dataclass(frozen=True)
class CardPolicy:
    ranges: tuple[Range, ...]

    def accept(self, number: str) -> str:
        """The member number if it is one of ours; BankCardRefused or OutOfRange otherwise.
        Messages show the number masked only."""
        number = number.strip()
        for r in self.ranges:
            if r.matches(number):
                return number
        network = payment_network(number)
        if network is not None:
            raise BankCardRefused(f"this is a bank card ({network} {mask(number)}), not a member card")
        raise OutOfRange(f"card {mask(number)} is not a member card of this programme")

    @classmethod
    def from_config(cls, cards: object) -> "CardPolicy":
        return cls(tuple(Range(r.prefix, tuple(r.lengths), r.luhn) for r in getattr(cards, "ranges")))


class Deduper:
    """Reads of the same card within `window` count once. Remembers a bounded number of cards."""

    def __init__(self, window: timedelta) -> None:
        self.window = window
        self._seen: OrderedDict[str, datetime] = OrderedDict()

    def first(self, key: str, at: datetime) -> bool:
        last = self._seen.get(key)
        self._seen[key] = at
        self._seen.move_to_end(key)
        while len(self._seen) > DEDUPE_CARDS_MAX:
            self._seen.popitem(last=False)
        return last is None or at - last > self.window or at < last
