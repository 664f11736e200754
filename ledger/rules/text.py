"""Numbers in explanations: English with thousands separators, Persian with Persian
digits. str.translate is slow on non-ASCII text, so digits are swapped by replace."""

from __future__ import annotations

_PAIRS = tuple(zip("0123456789,", "۰۱۲۳۴۵۶۷۸۹٬"))


def en(n: int) -> str:
    return f"{n:,}"


def persian_numbers(text: str) -> str:
    """ASCII digits and thousands separators as Persian ones (Persian text uses "،"
    as its comma, so an ASCII comma here can only be a thousands separator)."""
    for ascii_char, persian in _PAIRS:
        text = text.replace(ascii_char, persian)
    return text


def fa(n: int) -> str:
    return persian_numbers(f"{n:,}")
