"""A store's card stock in the ledger (ledger.stock, ledger.hubsync): what the hub
sends is kept as it says, an older hub's silence changes nothing, a bank card's
number is never kept, and a card another till issued is not handed out again."""

from __future__ import annotations

import pytest

from ledger import hubsync, stock
from ledger.db import Raw
from ledger.errors import CardNotInStock, DuplicateCard
from ledger.service import Ledger


def _take(ledger: Ledger, rows: list[dict[str, object]], required: object) -> None:
    with ledger.write("taking the hub's answer") as conn:
        raw = Raw(conn)
        hubsync.take_card_stock(raw, rows, ledger.card_policy)  # type: ignore[arg-type]
        hubsync.take_card_stock_required(raw, required)


def _held(ledger: Ledger) -> dict[str, str]:
    with ledger.read() as conn:
        return dict(Raw(conn).all("SELECT number, status FROM card_stock"))


def test_the_stock_is_kept_as_the_hub_sends_it(ledger: Ledger) -> None:
    _take(ledger, [{"number": "6395000000000001", "batch": "B1", "status": "assigned"},
                   {"number": "6395 0000 0000 0002", "batch": "B1", "status": "assigned"},
                   {"number": "4111111111111111", "batch": "B1", "status": "assigned"},  # a bank card: never kept
                   {"number": "6395000000000003", "batch": "B1", "status": "issued"}], True)  # not held: nothing
    assert _held(ledger) == {"6395000000000001": "in_stock", "6395000000000002": "in_stock"}
    _take(ledger, [{"number": "6395000000000002", "batch": "B1", "status": "issued",
                    "issued_at": "2026-12-01T10:00:00.000000Z"}], None)  # another till issued it; an old hub's silence
    assert _held(ledger) == {"6395000000000001": "in_stock", "6395000000000002": "issued"}
    with ledger.read() as conn:
        assert stock.required(conn) and stock.counts(conn) == {"in_stock": 1, "issued": 1}
    m = ledger.enrol_member(name="Sara", mobile="09120000001", actor="mgr")
    with pytest.raises(DuplicateCard, match="already issued at another till"):
        ledger.issue_card(member_id=m.id, number="6395000000000002", technology="manual", actor="mgr")
    with pytest.raises(CardNotInStock):
        ledger.issue_card(member_id=m.id, number="6395000000000009", technology="manual", actor="mgr")
    ledger.issue_card(member_id=m.id, number="6395000000000001", technology="manual", actor="mgr")
    _take(ledger, [{"number": "6395000000000001", "batch": "B1", "status": "assigned"}], False)  # a resend
    assert _held(ledger)["6395000000000001"] == "issued"  # not back in stock
    ledger.issue_card(member_id=m.id, number="6395000000000009", technology="manual", actor="mgr")  # not required now
