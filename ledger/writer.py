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

from sqlalchemy import Connection, insert, select, update

from ledger.chain import entry_hash
from ledger.errors import IntegrityFailure
from ledger.schema import audit_log, balances, entries, gift_cards, outbox, terminals


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
    term = conn.execute(
        select(terminals.c.next_seq, terminals.c.last_hash).where(terminals.c.code == terminal_code)
    ).one_or_none()
    if term is None:
        raise IntegrityFailure(f"terminal {terminal_code!r} is not registered in this ledger")
    seq, prev = int(term.next_seq), term.last_hash
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
    conn.execute(insert(entries), rows)
    conn.execute(insert(outbox), [{"entry_id": r["id"], "created_at": at} for r in rows])
    conn.execute(
        update(terminals).where(terminals.c.code == terminal_code).values(next_seq=seq, last_hash=prev)
    )
    for member_id, delta in member_delta.items():
        conn.execute(
            update(balances).where(balances.c.member_id == member_id).values(points=balances.c.points + delta)
        )
    for number, delta in gift_delta.items():
        conn.execute(
            update(gift_cards).where(gift_cards.c.number == number).values(balance=gift_cards.c.balance + delta)
        )
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
