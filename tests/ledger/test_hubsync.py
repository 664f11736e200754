"""What a sync batch carries (ledger.hubsync), read from a real ledger file."""

from __future__ import annotations

import pytest

from ledger import hubsync
from ledger.db import Raw
from ledger.rows import ENTRY_FIELDS
from ledger.service import Ledger

CHAIN = ("6395000000000001", "6395000000000003", "6395000000000005", "6395000000000007")


def _card_row(number: str) -> tuple[object, ...]:
    return (1, "card", number, *([None] * len(ENTRY_FIELDS)))  # an outbox row naming a card


@pytest.mark.parametrize("named", CHAIN)
def test_a_batch_naming_any_card_of_a_replacement_chain_carries_the_whole_chain(ledger: Ledger, named: str) -> None:
    """0001 replaced by 0003, 0003 by 0005, 0005 by 0007, offline. The hub takes a card
    marked replaced only beside its replacement: a batch naming 0003 (its row fell in
    a later batch than 0005's, which the hub already held as active) used to carry
    0005, now replaced, without 0007, and the hub refused it and every sync after
    (found by the simulation, seed 5195)."""
    m = ledger.enrol_member(name="Sara", mobile="09120000001", actor="mgr")
    ledger.issue_card(member_id=m.id, number=CHAIN[0], technology="magstripe", actor="mgr")
    for old, new in zip(CHAIN, CHAIN[1:]):
        ledger.replace_card(old_number=old, new_number=new, actor="mgr")
    with ledger.read() as conn:
        cards = hubsync.batch_rows(Raw(conn), [_card_row(named)])["cards"]
    assert cards[0]["number"] == named and sorted(c["number"] for c in cards) == list(CHAIN)
    by_number = {c["number"]: c for c in cards}
    assert [by_number[n]["replaced_by"] for n in CHAIN] == [*CHAIN[1:], None]


def test_a_card_never_replaced_travels_alone(ledger: Ledger) -> None:
    m = ledger.enrol_member(name="Sara", mobile="09120000001", actor="mgr")
    ledger.issue_card(member_id=m.id, number=CHAIN[0], technology="magstripe", actor="mgr")
    ledger.issue_card(member_id=m.id, number=CHAIN[1], technology="magstripe", actor="mgr")
    with ledger.read() as conn:
        assert [c["number"] for c in hubsync.batch_rows(Raw(conn), [_card_row(CHAIN[0])])["cards"]] == [CHAIN[0]]
