"""A separate process that posts sales into a ledger file: used by the concurrency test.

usage: python -m tests.ledger.poster LEDGER_PATH KEY_PREFIX COUNT CARD [CARD ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

from ledger.sales import post_sale
from ledger.service import Ledger
from ledger.types import SaleLine, SaleRequest


def main() -> None:
    path, prefix, count, *card_numbers = sys.argv[1:]
    ledger = Ledger.open(Path(path), store="S1", terminal="T1", busy_timeout_ms=30_000)
    for i in range(int(count)):
        card = card_numbers[i % len(card_numbers)]
        line = SaleLine(sku="SKU1", name="bread", category="grocery", quantity=1 + i % 3, unit_price=350_000)
        post_sale(ledger, SaleRequest(idempotency_key=f"{prefix}-{i}", card_number=card,
                                      receipt_ref=f"{prefix}-{i}", lines=(line,)))
    ledger.close()
    print("done", count)


if __name__ == "__main__":
    main()
