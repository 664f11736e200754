"""The bounds that keep every number the ledger (or the hub) sums inside int64, by
construction, and the message a person gets when one is reached. Pure.

int64 holds 9.2e18. Each bound below is far above a real till's numbers and far
enough below int64 that no sum SQLite or PostgreSQL computes over a member, a gift
card or a sale can leave it:

- a line is at most 1e13 Rial, a sale at most 1e14 Rial (500 lines);
- a member's lifetime purchases are at most 1e17 Rial, so their SUM(amount) (and the
  signed sum with refunds, whose running value lies between -1e17 and +1e17) fits;
- an entry moves at most 1e12 points and a member's lifetime credited points are at
  most 1e17, so every running sum of their entries lies within +-1e17 (debits never
  exceed credits by more than what was credited);
- a gift card is loaded at most 1e12 Rial at once and 1e15 over its life.

Sums over the whole ledger (reports) add per-member sums in Python, which has no
bound to leave.
"""

from __future__ import annotations

from ledger.errors import LimitExceeded

LINE_TOTAL_RIAL_MAX = 10**13
SALE_AMOUNT_RIAL_MAX = 10**14
MEMBER_SPEND_RIAL_MAX = 10**17
ENTRY_POINTS_MAX = 10**12
ENTRY_AMOUNT_RIAL_MAX = 10**15
MEMBER_CREDITED_POINTS_MAX = 10**17
BALANCE_POINTS_MAX = 10**15
GIFT_AMOUNT_RIAL_MAX = 10**12
GIFT_LOADED_RIAL_MAX = 10**15


def check(name: str, value: int, limit: int, unit: str) -> int:
    """`value` if |value| is within `limit`; else LimitExceeded naming the limit."""
    if not -limit <= value <= limit:
        raise LimitExceeded(f"{name} would be {value:,} {unit}; the limit is {limit:,} {unit}")
    return value
