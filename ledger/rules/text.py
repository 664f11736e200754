"""Numbers in explanations: English with thousands separators, Persian with Persian
digits. str.translate is slow on non-ASCII text, so digits in Persian sentences are
swapped by replace; a number alone is ASCII, where translate is the faster."""

from __future__ import annotations

_PAIRS = tuple(zip("0123456789,", "۰۱۲۳۴۵۶۷۸۹٬"))
_DIGITS = str.maketrans(dict(_PAIRS))


def en(n: int) -> str:
    return f"{n:,}"


def persian_numbers(text: str) -> str:
    """ASCII digits and thousands separators as Persian ones (Persian text uses "،"
    as its comma, so an ASCII comma here can only be a thousands separator)."""
    for ascii_char, persian in _PAIRS:
        text = text.replace(ascii_char, persian)
    return text


def fa(n: int) -> str:
    return f"{n:,}".translate(_DIGITS)
