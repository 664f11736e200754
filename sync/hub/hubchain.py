"""The hub's own chain: entries the hub writes itself, under the reserved terminal id
`hub` (schema.HUB_TERMINAL), hash-chained with ledger.chain.entry_hash like any
terminal's, so every terminal takes them through the normal downstream and checks
them like the rest. They are `adjust` entries with no loyalty table
(ruleset_hash "-" * 64), written by the person named with --by (or `hub` for what
the hub does by itself): holding a manual adjustment above a terminal's daily limit,
releasing it once approved, and settling an overdrawn member.

Lock order (see ordering.py): the hub's terminal row is locked before the ingest
lock, in every transaction that writes here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from ledger.chain import entry_hash
from ledger.timefmt import format_utc
from sync.hub.ordering import hold_ingest_order
from sync.hub.schema import HUB_TERMINAL, entries, terminals
from sync.hub.scope import record_effects

NO_RULESET = "-" * 64
HUB_ACTOR = "hub"  # the actor of what the hub writes by itself
KIND = "adjust"


@dataclass(frozen=True)
class HubEntry:
    member_id: str
    points: int
    reason: str  # at most 200 characters, as entries.reason
    rule_id: str  # what it is: hold, release, write-off, keep-debt
    actor: str  # at most 64 characters


def lock_hub_chain(conn: Connection) -> tuple[int, str]:
    """Lock the hub's chain until commit; its (last seq, last hash)."""
    row = conn.execute(select(terminals.c.last_seq, terminals.c.last_hash)
                       .where(terminals.c.id == HUB_TERMINAL).with_for_update()).one()
    return int(row.last_seq), row.last_hash


def chain_entries(last_seq: int, last_hash: str, items: list[HubEntry], at: datetime) -> list[dict[str, Any]]:
    """The rows of `items` following (last_seq, last_hash). Pure, apart from new ids."""
    rows = []
    created = format_utc(at)
    for item in items:
        last_seq += 1
        row = {"id": str(uuid.uuid4()), "terminal_code": HUB_TERMINAL, "seq": last_seq,
               "member_id": item.member_id, "card_number": None, "gift_card_number": None, "kind": KIND,
               "points": item.points, "amount": 0, "sale_id": None, "receipt_ref": None, "rule_id": item.rule_id,
               "reason": item.reason[:200], "actor": item.actor[:64], "ruleset_hash": NO_RULESET,
               "created_at": created, "prev_hash": last_hash}
        row["hash"] = last_hash = entry_hash(row)
        rows.append(row)
    return rows


def append_hub_entries(conn: Connection, items: list[HubEntry], at: datetime,
                       locked: tuple[int, str] | None = None) -> list[dict[str, Any]]:
    """Write `items` to the hub's chain in the caller's transaction and return the rows.
    The caller adds their points to the balances. locked: what lock_hub_chain returned,
    if the caller took the lock already (it must come before the ingest lock)."""
    if not items:
        return []
    last_seq, last_hash = locked if locked is not None else lock_hub_chain(conn)
    rows = chain_entries(last_seq, last_hash, items, at)
    hold_ingest_order(conn)
    conn.execute(insert(entries), [r | {"received_at": format_utc(at)} for r in rows])
    conn.execute(update(terminals).where(terminals.c.id == HUB_TERMINAL)
                 .values(last_seq=rows[-1]["seq"], last_hash=rows[-1]["hash"], last_seen_at=format_utc(at)))
    record_effects(conn, rows, None, format_utc(at))
    return rows
