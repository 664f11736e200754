"""Appending entries inside an open write transaction.

Everything that must change together with an entry changes here, in the caller's
transaction: the terminal's seq and last hash, the entry, its outbox row and the
member's (or gift card's) cached balance. Entries are never updated or deleted.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert

from ledger.chain import entry_hash
from ledger.db import Raw
from ledger.errors import IntegrityFailure
from ledger.schema import audit_log
from ledger.timefmt import format_utc


@dataclass(frozen=True)
class NewEntry:
    """An entry to append; seq, hashes and id are given by `append_entries`."""

    kind: str
    points: int
    amount: int
    member_id: str | None = None
    card_number: str | None = None
    gift_card_number: str | None = None
    sale_id: str | None = None
    receipt_ref: str | None = None
    rule_id: str | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        # Invariant 1: integers only. A check that raises, not an assert (python -O).
        for name in ("points", "amount"):
            value = getattr(self, name)
            if type(value) is not int:
                raise IntegrityFailure(f"entry {name} must be an integer, got {type(value).__name__}")


_ENTRY_COLUMNS = ("id", "terminal_code", "seq", "member_id", "card_number", "gift_card_number", "kind", "points",
                  "amount", "sale_id", "receipt_ref", "rule_id", "reason", "actor", "ruleset_hash", "created_at",
                  "prev_hash", "hash")
_INSERT_ENTRY_SQL = (f"INSERT INTO entries ({', '.join(_ENTRY_COLUMNS)}) "
                     f"VALUES ({', '.join('?' for _ in _ENTRY_COLUMNS)})")
_INSERT_OUTBOX_SQL = "INSERT INTO outbox (entry_id, created_at) VALUES (?, ?)"
_TERMINAL_SQL = "SELECT next_seq, last_hash FROM terminals WHERE code = ?"
_UPDATE_TERMINAL_SQL = "UPDATE terminals SET next_seq = ?, last_hash = ? WHERE code = ?"
_UPDATE_BALANCE_SQL = "UPDATE balances SET points = points + ? WHERE member_id = ?"
_UPDATE_GIFT_SQL = "UPDATE gift_cards SET balance = balance + ? WHERE number = ?"


def append_entries(
    conn: Connection,
    terminal_code: str,
    new: list[NewEntry],
    *,
    actor: str,
    ruleset_hash: str,
    at: datetime,
) -> list[dict[str, Any]]:
    """Append entries for this terminal in order; returns the rows written."""
    if not new:
        return []
    raw = Raw(conn)  # the hot path of every sale: plain SQL, built once
    term = raw.one_or_none(_TERMINAL_SQL, (terminal_code,))
    if term is None:
        raise IntegrityFailure(f"terminal {terminal_code!r} is not registered in this ledger")
    seq, prev = int(term[0]), term[1]
    created = format_utc(at)
    rows: list[dict[str, Any]] = []
    member_delta: dict[str, int] = {}
    gift_delta: dict[str, int] = {}
    for item in new:
        row = {
            "id": str(uuid.uuid4()),
            "terminal_code": terminal_code,
            "seq": seq,
            "member_id": item.member_id,
            "card_number": item.card_number,
            "gift_card_number": item.gift_card_number,
            "kind": item.kind,
            "points": item.points,
            "amount": item.amount,
            "sale_id": item.sale_id,
            "receipt_ref": item.receipt_ref,
            "rule_id": item.rule_id,
            "reason": item.reason,
            "actor": actor,
            "ruleset_hash": ruleset_hash,
            "created_at": at,
            "prev_hash": prev,
        }
        row["hash"] = prev = entry_hash(row)
        rows.append(row)
        seq += 1
        if item.member_id is not None and item.points:
            member_delta[item.member_id] = member_delta.get(item.member_id, 0) + item.points
        if item.gift_card_number is not None and item.amount:
            gift_delta[item.gift_card_number] = gift_delta.get(item.gift_card_number, 0) + item.amount
    raw.many(_INSERT_ENTRY_SQL, [tuple(created if c == "created_at" else r[c] for c in _ENTRY_COLUMNS) for r in rows])
    raw.many(_INSERT_OUTBOX_SQL, [(r["id"], created) for r in rows])
    raw.run(_UPDATE_TERMINAL_SQL, (seq, prev, terminal_code))
    for member_id, delta in member_delta.items():
        raw.run(_UPDATE_BALANCE_SQL, (delta, member_id))
    for number, delta in gift_delta.items():
        raw.run(_UPDATE_GIFT_SQL, (delta, number))
    return rows


def audit(conn: Connection, *, at: datetime, actor: str, action: str, target: str | None, **detail: Any) -> None:
    """Record a manager or admin action (never a PIN, a secret or a raw track)."""
    conn.execute(
        insert(audit_log).values(
            at=at,
            actor=actor,
            action=action,
            target=target,
            detail=json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str),
        )
    )
