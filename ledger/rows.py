"""The rows a terminal's ledger shares with the hub: their columns, in wire order, and
how two branches' views of one card are merged. Pure (sync.protocol re-exports it for
both ends of the wire)."""

from __future__ import annotations

from ledger.chain import HASHED_FIELDS

ENTRY_FIELDS = (*HASHED_FIELDS, "hash")
MEMBER_FIELDS = ("id", "name", "mobile", "birth_date", "referrer_id", "tier", "segment", "enrolled_at",
                 "enrolled_by", "store_code")
CARD_FIELDS = ("number", "member_id", "technology", "status", "replaced_by", "issued_at", "issued_by",
               "status_changed_at", "status_reason")
GIFT_FIELDS = ("number", "status", "issued_at", "issued_by")
# A sale or refund as the hub keeps it for the back office (the idempotency key and
# request hash stay at the till), with its lines
SALE_FIELDS = ("id", "kind", "original_sale_id", "terminal_code", "member_id", "card_number", "receipt_ref",
               "amount", "ruleset_hash", "created_at", "actor", "result_json")
LINE_FIELDS = ("line_no", "sku", "name", "category", "quantity", "unit_price", "original_line_no")
# A store's pre-printed card coming down (protocol 2's `card_stock`): status assigned
# (in the store's stock) or issued (at any till of the store: no longer to be handed out)
STOCK_FIELDS = ("number", "batch", "status", "issued_at")
PROTOCOL = 2  # 2: sales go up; other branches come down as sums, not entries
# When two branches changed a card, the more final status wins.
STATUS_RANK = {"active": 0, "lost": 1, "blocked": 1, "replaced": 2}


def card_change_wins(local_status: str, local_replaced_by: str | None, local_changed_at: str | None,
                     status: str, replaced_by: str | None, changed_at: str | None) -> bool:
    """Whether a card's status from the other side replaces the one held here, the same
    at the hub and at every terminal (so all end on one status): a more final status
    wins; of two equally final ones (lost, blocked) the later change wins; and a
    replacement names its new card once."""
    mine, theirs = STATUS_RANK.get(local_status, 0), STATUS_RANK.get(status, 0)
    if theirs != mine:
        return theirs > mine
    if status != local_status:
        return (changed_at or "") > (local_changed_at or "")
    return bool(replaced_by) and local_replaced_by is None and status == "replaced"
