"""Runs outside a sale: point expiry (first in, first out) and the tier review.

The rules engine decides (ledger.rules.lifecycle); this module reads the history,
and writes each member's `expire` or `tier` entry in its own short transaction so a
long run never holds the till's write lock for more than one member.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Connection, func, select, update

from ledger.rules import Lot, expiry_outlook, reviewed_tier
from ledger.schema import balances, entries, members
from ledger.snapshots import tier_window
from ledger.writer import NewEntry, append_entries, audit

if TYPE_CHECKING:
    from ledger.service import Ledger

EXPIRY_RULE = "expiry"


@dataclass(frozen=True)
class Expiring:
    member_id: str
    points: int
    first_expiry: datetime


def _outlook(conn: Connection, ledger: "Ledger", member_id: str, at: datetime):  # type: ignore[no-untyped-def]
    lots = [Lot(r.created_at, int(r.points)) for r in conn.execute(
        select(entries.c.created_at, entries.c.points)
        .where(entries.c.member_id == member_id, entries.c.points > 0)
        .order_by(entries.c.created_at, entries.c.seq))]
    debited = -int(conn.execute(select(func.coalesce(func.sum(entries.c.points), 0))
                                .where(entries.c.member_id == member_id, entries.c.points < 0)).scalar_one())
    credit, debit = conn.execute(select(balances.c.archived_credit, balances.c.archived_debit)
                                 .where(balances.c.member_id == member_id)).one()
    if credit:
        # archived credits are older than every kept one and past expiry (the archive
        # keeps the expiry period: ledger.archive), so as one oldest lot they are
        # taken first, first in first out, exactly as they were one by one
        oldest = min((lot.at for lot in lots), default=at) - timedelta(microseconds=1)
        lots.insert(0, Lot(min(oldest, _expired_by(ledger, at)), int(credit)))
    return expiry_outlook(ledger.ruleset, lots, debited + int(debit), at)


def _expired_by(ledger: "Ledger", at: datetime) -> datetime:
    """A time whose credits are past expiry at `at`."""
    return at - timedelta(days=31 * ledger.ruleset.expiry.months + 1)


def _members_with_points(ledger: "Ledger") -> list[str]:
    with ledger.read() as conn:
        return list(conn.execute(select(balances.c.member_id).where(balances.c.points > 0)
                                 .order_by(balances.c.member_id)).scalars())


def expire_points(ledger: "Ledger", actor: str) -> list[tuple[str, int]]:
    """Write an `expire` entry for every member with points past the expiry period;
    returns (member id, points expired). Running it twice expires nothing more."""
    if ledger.ruleset.expiry.months == 0:
        return []
    done: list[tuple[str, int]] = []
    for member_id in _members_with_points(ledger):
        at = ledger.clock()
        with ledger.write("expiring points") as conn:
            due = _outlook(conn, ledger, member_id, at).due_now
            balance = int(conn.execute(select(balances.c.points).where(balances.c.member_id == member_id)).scalar_one())
            due = min(due, balance)
            if due <= 0:
                continue
            append_entries(conn, ledger.terminal,
                           [NewEntry(kind="expire", points=-due, amount=0, member_id=member_id, rule_id=EXPIRY_RULE,
                                     reason=f"points older than {ledger.ruleset.expiry.months} months")],
                           actor=actor, ruleset_hash=ledger.ruleset.hash, at=at)
            done.append((member_id, due))
    return done


def expiring_soon(ledger: "Ledger") -> list[Expiring]:
    """Members whose points expire within the table's warning window (30 days by default)."""
    if ledger.ruleset.expiry.months == 0:
        return []
    at = ledger.clock()
    out: list[Expiring] = []
    with ledger.read() as conn:
        for member_id in conn.execute(select(balances.c.member_id).where(balances.c.points > 0)
                                      .order_by(balances.c.member_id)).scalars():
            upcoming = _outlook(conn, ledger, member_id, at).upcoming
            if upcoming:
                out.append(Expiring(member_id, sum(p for _, p in upcoming), min(w for w, _ in upcoming)))
    return out


def review_tiers(ledger: "Ledger", actor: str) -> list[tuple[str, str, str]]:
    """Move every member to the tier their window earns, up or down, and record each
    change as a `tier` entry; returns (member id, old tier, new tier). Meant for the
    review day (`tiers.review_on`); the caller decides when."""
    changes: list[tuple[str, str, str]] = []
    with ledger.read() as conn:
        ids = list(conn.execute(select(members.c.id).order_by(members.c.id)).scalars())
    policy = ledger.ruleset.tier_policy
    for member_id in ids:
        at = ledger.clock()
        since = at - timedelta(days=policy.window_days)
        with ledger.write("reviewing tiers") as conn:
            old = conn.execute(select(members.c.tier).where(members.c.id == member_id)).scalar_one()
            spend, points = tier_window(conn, member_id, since)
            new = reviewed_tier(ledger.ruleset, spend, points)
            if new == old:
                continue
            conn.execute(update(members).where(members.c.id == member_id).values(tier=new))
            append_entries(conn, ledger.terminal,
                           [NewEntry(kind="tier", points=0, amount=0, member_id=member_id, rule_id="tier-review",
                                     reason=f"{old} -> {new}")],
                           actor=actor, ruleset_hash=ledger.ruleset.hash, at=at)
            audit(conn, at=at, actor=actor, action="tier.review", target=member_id, old=old, new=new)
            changes.append((member_id, old, new))
    return changes
