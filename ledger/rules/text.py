"""Numbers in explanations: English with thousands separators, Persian with Persian digits."""

from __future__ import annotations

_FA = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")


def en(n: int) -> str:
    return f"{n:,}"


def fa(n: int) -> str:
    return f"{n:,}".replace(",", "٬").translate(_FA)


def fa_text(text: str) -> str:
    return text.translate(_FA)
