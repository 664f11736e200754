"""What both ends of sync agree on, with no I/O: the fields of each kind of row on the
wire (an entry's are ledger.chain's hashed fields and its hash; the others, the
ledger's own columns) and how two branches' views of one card are merged. The
terminal's client and the hub import this; neither imports the other."""

from __future__ import annotations

from ledger.rows import (
    CARD_FIELDS,
    ENTRY_FIELDS,
    GIFT_FIELDS,
    LINE_FIELDS,
    MEMBER_FIELDS,
    PROTOCOL,
    SALE_FIELDS,
    STATUS_RANK,
    STOCK_FIELDS,
    card_change_wins,
)

__all__ = ["CARD_FIELDS", "ENTRY_FIELDS", "GIFT_FIELDS", "LINE_FIELDS", "MEMBER_FIELDS", "PROTOCOL", "SALE_FIELDS",
           "STATUS_RANK", "STOCK_FIELDS", "card_change_wins"]
