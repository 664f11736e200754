"""Pre-printed card stock at the till: the cards head office assigned to this store
(ledger.hubsync.take_card_stock keeps them as the hub sends them). Issuing or replacing
a card takes it from the stock, offline, in the issue's own transaction; when the chain
requires stock, a number that is not in it is refused before anything is written.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from ledger.db import Raw
from ledger.errors import CardNotInStock, DuplicateCard
from ledger.timefmt import format_utc


def _shown(number: str) -> str:
    return f"…{number[-4:]}"  # as the till shows member cards (ledger.service.mask_card)


def required(conn: Connection) -> bool:
    """Whether the chain issues cards only from a store's stock (as the hub last said)."""
    row = Raw(conn).one_or_none("SELECT card_stock_required FROM sync_state WHERE id = 1")
    return bool(row and row[0])


def take(conn: Connection, number: str, actor: str, at: datetime) -> bool:
    """Mark `number` issued from this store's stock; True if it was in it. A number
    another till of the store already issued is refused (DuplicateCard: the hub would
    hold it for another member); one not in the stock is refused only when the chain
    requires stock (CardNotInStock), else issued as before. `number` is normalised and
    checked by the card policy already."""
    raw = Raw(conn)
    row = raw.one_or_none("SELECT status FROM card_stock WHERE number = ?", (number,))
    if row is not None and row[0] == "issued":
        raise DuplicateCard(f"card {_shown(number)} of this store's stock was already issued at another till; "
                            "use another card")
    if row is None:
        if required(conn):
            raise CardNotInStock(f"card {_shown(number)} is not in this store's stock of pre-printed cards, and the "
                                 "chain issues only cards from it; use a card from the store's stock (head office "
                                 "assigns them: loyalty-hub cards stock assign)")
        return False
    raw.run("UPDATE card_stock SET status = 'issued', issued_at = ?, issued_by = ? WHERE number = ?",
            (format_utc(at), actor, number))
    return True


def counts(conn: Connection) -> dict[str, int]:
    """Cards of this store's stock: in stock (not issued yet) and issued."""
    rows = dict(Raw(conn).all("SELECT status, count(*) FROM card_stock GROUP BY status"))
    return {"in_stock": int(rows.get("in_stock", 0)), "issued": int(rows.get("issued", 0))}
