"""What terminals follow must become visible in the order it is numbered.

Terminals follow two counters of the hub: `entries.ingest_id` (the downstream cursor)
and the directory `rev`. A terminal that has been answered "you have everything up
to N" never asks for anything at or below N again, so no number below N may become
visible after N does. Two things break that on PostgreSQL (not on SQLite, where
every transaction begins IMMEDIATE and so runs alone):

1. Identity values are handed out at INSERT, but transactions commit in any order:
   request X takes ingest ids 100..104 and is still checking balances when request Y
   takes 105 and commits; a terminal reading now sees 105, moves its cursor past 104,
   and never receives X's entries.
2. Under READ COMMITTED every statement has its own snapshot, so reading the rows
   above the cursor and then the highest id in a second statement can skip rows
   committed in between.

The cure for (1) is one transaction-scoped advisory lock taken just before entries
are inserted and held until commit: ingest ids are then committed in the order they
are handed out (PostgreSQL makes a commit visible before it releases its locks). The
directory's `rev` is already ordered so by the row lock on `counters` (taken by the
UPDATE that advances it and held until commit), provided that row exists before the
first change (migration 0002 seeds it). The cure for (2) is to read the top first
and the rows up to it second (`downstream`, `directory_changes`).

Lock order inside one sync transaction, so that none can deadlock another: the
terminal's row, the `counters` row and directory rows (sorted by key), the hub's own
chain (its terminal row, only when an adjustment is held: hubchain.py), the ingest
lock, then `balances` rows (sorted by member id). A decision at the command line
(approve, settle) locks its own row first (a held adjustment), then the hub's chain,
the ingest lock and balances, in the same order.

What goes down to the terminal is read after that transaction commits, in one of its
own (Hub._sync): the tops-first reads need no lock, and the locks above are then held
for the batch's writes only, not while the answer is computed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, func, select

from sync.hub.db import dialect_insert
from sync.hub.schema import cards, counters, entries, gift_cards, members, nonces

# pg_advisory_xact_lock takes a bigint; this one is "loyalty" in ASCII. Nothing else
# in the hub's database may use it.
INGEST_LOCK_KEY = 0x6C6F79616C7479
REV_COUNTER = "rev"


def hold_ingest_order(conn: Connection) -> None:
    """Call in the transaction that inserts entries, before the INSERT (or COPY):
    from here to its commit no other transaction can take ingest ids. SQLite: nothing
    to do, its writers never overlap."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({INGEST_LOCK_KEY})")


def downstream(conn: Connection, terminal: str, cursor: int, limit: int) -> tuple[list[Row[Any]], int]:
    """Other terminals' entries after `cursor` (at most `limit`), and the cursor to
    hand back: the highest ingest id this answer covers, never one not yet visible."""
    top = int(conn.execute(select(func.max(entries.c.ingest_id))).scalar() or 0)
    if top <= cursor:
        return [], cursor
    rows = conn.execute(select(entries).where(entries.c.ingest_id > cursor, entries.c.ingest_id <= top,
                                              entries.c.terminal_code != terminal)
                        .order_by(entries.c.ingest_id).limit(limit)).all()
    if len(rows) < limit:
        return list(rows), top  # everything up to top was read (own entries need not be sent)
    return list(rows), int(rows[-1].ingest_id)


def directory_changes(conn: Connection, since_rev: int) -> tuple[dict[str, list[dict[str, Any]]], int]:
    """Members, cards and gift cards changed after `since_rev`, and the rev to hand back."""
    top = int(conn.execute(select(counters.c.value).where(counters.c.name == REV_COUNTER)).scalar() or 0)
    if top <= since_rev:
        return {"members": [], "cards": [], "gift_cards": []}, since_rev
    out = {}
    for key, table in (("members", members), ("cards", cards), ("gift_cards", gift_cards)):
        out[key] = [dict(r._mapping) for r in conn.execute(
            select(table).where(table.c.rev > since_rev, table.c.rev <= top).order_by(table.c.rev))]
    return out, top


def claim_nonce(conn: Connection, terminal: str, nonce: str, seen_at: int) -> bool:
    """Record a request's nonce; False if it was already there. One statement, so two
    copies of one request arriving at once cannot both pass (the second waits for the
    first's commit on PostgreSQL, and then finds the row)."""
    stored = conn.execute(dialect_insert(conn, nonces).values(terminal=terminal, nonce=nonce, seen_at=seen_at)
                          .on_conflict_do_nothing().returning(nonces.c.nonce)).first()
    return stored is not None  # (rowcount is -1 here on psycopg: RETURNING says it)
