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

from ledger import limits
from ledger.chain import HASHED_FIELDS, hash_of_values
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


_ENTRY_COLUMNS = (*HASHED_FIELDS, "hash")  # the values hashed are the values inserted
_INSERT_ENTRY_SQL = (f"INSERT INTO entries ({', '.join(_ENTRY_COLUMNS)}) "
                     f"VALUES ({', '.join('?' for _ in _ENTRY_COLUMNS)})")
_INSERT_OUTBOX_SQL = "INSERT INTO outbox (entry_id, created_at) VALUES (?, ?)"
_TERMINAL_SQL = "SELECT next_seq, last_hash FROM terminals WHERE code = ?"
_UPDATE_TERMINAL_SQL = "UPDATE terminals SET next_seq = ?, last_hash = ? WHERE code = ?"
# RETURNING: the bounds are checked on what the row holds after the change, in one
# statement (a failed check rolls the whole operation back)
_UPDATE_BALANCE_SQL = ("UPDATE balances SET points = points + ?, credited = credited + ? WHERE member_id = ? "
                       "RETURNING points, credited")
_UPDATE_GIFT_SQL = ("UPDATE gift_cards SET balance = balance + ?, loaded = loaded + ? WHERE number = ? "
                    "RETURNING balance, loaded")
_QUEUE_SQL = "INSERT INTO outbox (kind, ref, created_at) VALUES (?, ?, ?)"


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
    values: list[tuple[Any, ...]] = []  # each entry's columns (_ENTRY_COLUMNS), built once: hashed, then inserted
    member_delta: dict[str, int] = {}
    member_credit: dict[str, int] = {}
    gift_delta: dict[str, int] = {}
    gift_loaded: dict[str, int] = {}
    for item in new:
        limits.check("an entry's points", item.points, limits.ENTRY_POINTS_MAX, "points")
        limits.check("an entry's amount", item.amount, limits.ENTRY_AMOUNT_RIAL_MAX, "Rial")
        # HASHED_FIELDS' order (ledger.chain), the time as its ledger text
        hashed = (str(uuid.uuid4()), terminal_code, seq, item.member_id, item.card_number, item.gift_card_number,
                  item.kind, item.points, item.amount, item.sale_id, item.receipt_ref, item.rule_id, item.reason,
                  actor, ruleset_hash, created, prev)
        prev = hash_of_values(hashed)
        values.append((*hashed, prev))
        seq += 1
        if item.member_id is not None and item.points:
            member_delta[item.member_id] = member_delta.get(item.member_id, 0) + item.points
            if item.points > 0:
                member_credit[item.member_id] = member_credit.get(item.member_id, 0) + item.points
        if item.gift_card_number is not None and item.amount:
            gift_delta[item.gift_card_number] = gift_delta.get(item.gift_card_number, 0) + item.amount
            if item.amount > 0:
                gift_loaded[item.gift_card_number] = gift_loaded.get(item.gift_card_number, 0) + item.amount
    raw.many(_INSERT_ENTRY_SQL, values)
    raw.many(_INSERT_OUTBOX_SQL, [(v[0], created) for v in values])
    raw.run(_UPDATE_TERMINAL_SQL, (seq, prev, terminal_code))
    move_balances(raw, member_delta, member_credit, gift_delta, gift_loaded)
    return [{**dict(zip(_ENTRY_COLUMNS, v)), "created_at": at} for v in values]


def move_balances(raw: Raw, member_delta: dict[str, int], member_credit: dict[str, int],
                  gift_delta: dict[str, int], gift_loaded: dict[str, int]) -> None:
    """Apply entries' effects to the cached balances, within the bounds of ledger.limits
    (LimitExceeded, and the caller's transaction rolls back). For this terminal's
    entries and for those the hub sends from other branches alike."""
    for member_id, delta in member_delta.items():
        after = raw.one_or_none(_UPDATE_BALANCE_SQL, (delta, member_credit.get(member_id, 0), member_id))
        if after is None:
            raise IntegrityFailure(f"member {member_id} has no balance row")
        limits.check("the member's balance", int(after[0]), limits.BALANCE_POINTS_MAX, "points")
        limits.check("the member's points credited over their life", int(after[1]),
                     limits.MEMBER_CREDITED_POINTS_MAX, "points")
    for number, delta in gift_delta.items():
        after = raw.one_or_none(_UPDATE_GIFT_SQL, (delta, gift_loaded.get(number, 0), number))
        if after is None:
            raise IntegrityFailure(f"gift card …{number[-4:]} is not issued")
        limits.check("the gift card's Rial loaded over its life", int(after[1]), limits.GIFT_LOADED_RIAL_MAX,
                     "Rial")


def queue_for_hub(conn: Connection, kind: str, ref: str, at: datetime) -> None:
    """Queue a member, card, gift card or sale for the hub, in the caller's transaction;
    it is sent as it stands when its turn comes (ledger.schema.outbox)."""
    Raw(conn).run(_QUEUE_SQL, (kind, ref, format_utc(at)))


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
