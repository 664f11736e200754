"""The one thing the sync does for messages: in its own transaction, a small
`message_events` row per relevant entry and per new member. Nothing is decided or
sent there; a worker reads the rows after the commit (producer.py)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection

from sync.hub.db import insert_new_rows
from sync.hub.messages.triggers import relevant
from sync.hub.schema import message_events


def record_events(conn: Connection, at: str, *, entries: Iterable[dict[str, Any]] = (),
                  member_ids: Iterable[str] = ()) -> None:
    """at: the hub's clock (ledger time text)."""
    rows = [{"source": "member", "ref": m, "at": at} for m in member_ids]
    rows += [{"source": "entry", "ref": e["id"], "at": at} for e in entries if relevant(e)]
    # on PostgreSQL by COPY (a row per earning entry was a fifth of a sync's time as an
    # INSERT); ids and times were checked by the sync
    insert_new_rows(conn, message_events, rows)
