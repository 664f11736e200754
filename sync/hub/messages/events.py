"""The one thing the sync does for messages: in its own transaction, a small
`message_events` row per relevant entry and per new member. Nothing is decided or
sent there; a worker reads the rows after the commit (producer.py)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, insert

from sync.hub.messages.triggers import relevant
from sync.hub.schema import message_events


def record_events(conn: Connection, at: str, *, entries: Iterable[dict[str, Any]] = (),
                  member_ids: Iterable[str] = ()) -> None:
    """at: the hub's clock (ledger time text)."""
    rows = [{"source": "member", "ref": m, "at": at} for m in member_ids]
    rows += [{"source": "entry", "ref": e["id"], "at": at} for e in entries if relevant(e)]
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(insert(message_events), rows)
        return
    # PostgreSQL: by COPY, as the entries themselves (a row per earning entry was a
    # fifth of a sync's time as an INSERT); ids and times were checked by the sync
    cur = conn.connection.driver_connection.cursor()
    with cur.copy("COPY message_events (source, ref, at) FROM STDIN") as copy:
        for row in rows:
            copy.write_row((row["source"], row["ref"], row["at"]))
