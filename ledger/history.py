"""A member's history for the manager's console, and a sale found by its receipt for
the till's refunds. Reads only.

Each history item is one of the member's ledger entries, or a sale or refund of theirs
that moved no points, newest first, with the balance after it (walked back from the
current balance, so the newest row always shows the balance the member has). Entries
made by a sale carry that sale's explanations in both languages from its stored
result (`sales.result_json`), so an entry made under an older loyalty table still
reads as it did at the till.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from ledger.archive import archived_refusal, archived_sale
from ledger.db import Raw
from ledger.errors import SaleArchived, UnknownMember, UnknownSale
from ledger.schema import balances, entries, members, sale_lines, sales
from ledger.snapshots import tier_window
from ledger.types import require_int, require_text

if TYPE_CHECKING:
    from ledger.service import Ledger

HISTORY_ITEMS_MAX = 500
SALES_BY_RECEIPT_MAX = 10


@dataclass(frozen=True)
class HistoryItem:
    at: datetime
    kind: str  # an entry kind, or "sale" / "refund" for one that moved no points
    points: int
    amount: int
    balance_after: int
    receipt_ref: str | None
    sale_id: str | None
    rule_id: str | None
    reason: str | None
    actor: str
    explanation_en: str | None
    explanation_fa: str | None

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "at": self.at.isoformat()}


def _explanations(result_json: str) -> dict[str, list[tuple[str, str]]]:
    """A sale's awards by rule id, in order: (en, fa) per award that gave points."""
    out: dict[str, list[tuple[str, str]]] = {}
    for award in json.loads(result_json).get("awards", []):
        if award.get("points"):
            out.setdefault(str(award.get("rule_id")), []).append(
                (str(award.get("explanation_en", "")), str(award.get("explanation_fa", ""))))
    return out


def member_history(ledger: "Ledger", member_id: str, limit: int = 100) -> list[HistoryItem]:
    """The member's newest `limit` items (entries, and sales or refunds without any)."""
    require_int("limit", limit, minimum=1, maximum=HISTORY_ITEMS_MAX)
    with ledger.read() as conn:
        balance = conn.execute(select(balances.c.points).where(balances.c.member_id == member_id)).scalar()
        if balance is None:
            raise UnknownMember(f"no member with id {member_id}")
        rows = conn.execute(
            select(entries.c.created_at, entries.c.kind, entries.c.points, entries.c.amount, entries.c.receipt_ref,
                   entries.c.sale_id, entries.c.rule_id, entries.c.reason, entries.c.actor, entries.c.seq)
            .where(entries.c.member_id == member_id)
            .order_by(entries.c.created_at.desc(), entries.c.seq.desc()).limit(limit)).all()
        quiet = conn.execute(
            select(sales.c.created_at, sales.c.kind, sales.c.amount, sales.c.receipt_ref, sales.c.id, sales.c.actor)
            .where(sales.c.member_id == member_id,
                   ~select(entries.c.id).where(entries.c.sale_id == sales.c.id,
                                               entries.c.member_id == member_id).exists())
            .order_by(sales.c.created_at.desc()).limit(limit)).all()
        sale_ids = {r.sale_id for r in rows if r.sale_id}
        results = dict(conn.execute(select(sales.c.id, sales.c.result_json)
                                    .where(sales.c.id.in_(sale_ids), sales.c.kind == "sale")).all()) \
            if sale_ids else {}
    explained = {sale_id: _explanations(text) for sale_id, text in results.items()}
    items: list[tuple[datetime, int, dict[str, Any]]] = []
    for r in rows:
        en = fa = None
        awards = explained.get(r.sale_id or "", {}).get(r.rule_id or "")
        if awards and r.kind in ("earn", "bonus"):
            en, fa = awards.pop(0)
        items.append((r.created_at, int(r.seq), dict(
            kind=r.kind, points=int(r.points), amount=int(r.amount), receipt_ref=r.receipt_ref, sale_id=r.sale_id,
            rule_id=r.rule_id, reason=r.reason, actor=r.actor, explanation_en=en, explanation_fa=fa)))
    for s in quiet:
        items.append((s.created_at, -1, dict(
            kind=s.kind, points=0, amount=int(s.amount), receipt_ref=s.receipt_ref, sale_id=s.id, rule_id=None,
            reason=None, actor=s.actor, explanation_en=None, explanation_fa=None)))
    items.sort(key=lambda item: (item[0], item[1]), reverse=True)
    out: list[HistoryItem] = []
    after = int(balance)
    for at, _, fields in items[:limit]:
        out.append(HistoryItem(at=at, balance_after=after, **fields))
        after -= fields["points"]
    return out


@dataclass(frozen=True)
class TierProgress:
    tier: str
    basis: str  # "spend" (Rial) or "points"
    window_days: int
    window_value: int  # Rial spent or points earned in the window
    next_tier: str | None
    needed: int  # more Rial or points to reach next_tier (0 at the top)


def tier_progress(ledger: "Ledger", member_id: str) -> TierProgress:
    """Where the member stands in the tier window, with the same sums a sale uses."""
    ruleset = ledger.ruleset
    policy = ruleset.tier_policy
    at = ledger.clock()
    with ledger.read() as conn:
        tier = conn.execute(select(members.c.tier).where(members.c.id == member_id)).scalar()
        if tier is None:
            raise UnknownMember(f"no member with id {member_id}")
        spend, points = tier_window(conn, member_id, at - timedelta(days=policy.window_days))
    value = spend if policy.basis == "spend" else points
    rank = ruleset.rank(tier)
    higher = [t for t in ruleset.tiers[rank + 1:] if t.threshold > value] or \
        [t for t in ruleset.tiers[rank + 1:]]
    nxt = higher[0] if higher else None
    return TierProgress(tier=tier, basis=policy.basis, window_days=policy.window_days, window_value=value,
                        next_tier=nxt.id if nxt else None, needed=max(0, nxt.threshold - value) if nxt else 0)


def sales_by_receipt(ledger: "Ledger", receipt_ref: str) -> list[dict[str, Any]]:
    """This till's sales with that receipt reference, newest first, each with its lines
    and what of each line is left to refund."""
    receipt_ref = require_text("receipt reference", receipt_ref, maximum=64)
    with ledger.read() as conn:
        found = conn.execute(
            select(sales.c.id, sales.c.member_id, sales.c.card_number, sales.c.amount, sales.c.created_at,
                   sales.c.terminal_code, members.c.name)
            .join(members, members.c.id == sales.c.member_id)
            .where(sales.c.receipt_ref == receipt_ref, sales.c.kind == "sale")
            .order_by(sales.c.created_at.desc()).limit(SALES_BY_RECEIPT_MAX)).all()
        if not found:
            archived = archived_sale(Raw(conn), receipt_ref=receipt_ref)
            if archived is not None:
                raise SaleArchived(archived_refusal(*archived))
            raise UnknownSale(f"no sale with receipt {receipt_ref}")
        out = []
        for sale in found:
            lines = conn.execute(select(sale_lines).where(sale_lines.c.sale_id == sale.id)
                                 .order_by(sale_lines.c.line_no)).all()
            refunded = dict(conn.execute(
                select(sale_lines.c.original_line_no, func.sum(sale_lines.c.quantity))
                .join(sales, sales.c.id == sale_lines.c.sale_id)
                .where(sales.c.original_sale_id == sale.id).group_by(sale_lines.c.original_line_no)).all())
            out.append({
                "sale_id": sale.id, "receipt_ref": receipt_ref, "member_id": sale.member_id,
                "member_name": sale.name, "card": ledger_mask(sale.card_number), "amount": int(sale.amount),
                "created_at": sale.created_at.isoformat(), "terminal": sale.terminal_code,
                "lines": [{"line_no": x.line_no, "sku": x.sku, "name": x.name, "category": x.category,
                           "quantity": int(x.quantity), "unit_price": int(x.unit_price),
                           "refundable": int(x.quantity) - int(refunded.get(x.line_no, 0))} for x in lines],
            })
    return out


def ledger_mask(number: str | None) -> str | None:
    from ledger.service import mask_card

    return mask_card(number) if number else None


