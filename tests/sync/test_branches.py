"""What happens at one branch reaches the others: members, cards, balances, the
loyalty table; and two offline branches spending the same points are both kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from ledger.errors import CardReplaced, SharedMobile
from ledger.rules import default_ruleset
from ledger.sales import post_sale
from ledger.service import Ledger
from ledger.verify import verify
from sync.errors import HubRefused
from sync.hub.schema import balances
from sync.hub.service import Hub
from tests.conftest import sale


def test_a_card_replaced_at_one_branch_is_refused_at_another_after_its_sync(hub: Hub, terminals) -> None:  # type: ignore[no-untyped-def]
    a, b = terminals("TA"), terminals("TB")
    m = a.ledger.enrol_member(name="Sara", mobile="09120000001", actor="mgr")
    old = a.ledger.issue_card(member_id=m.id, number="6395000000000001", technology="magstripe", actor="mgr")
    post_sale(a.ledger, sale("a1", old.number, 2_000_000))
    a.client.sync_once()
    b.client.sync_once()
    assert b.ledger.balance(m.id) == a.ledger.balance(m.id) == 300  # 100 sign-up + 200, from A's entries
    post_sale(b.ledger, sale("b1", old.number, 1_000_000))  # the member shops at B with the old card
    a.ledger.replace_card(old_number=old.number, new_number="6395000000000002", actor="mgr", reason="lost")
    a.client.sync_once()
    # until B syncs it cannot know: the till never waits for the network
    assert post_sale(b.ledger, sale("b1b", old.number, 500_000)).earned_points == 50
    b.client.sync_once()
    with pytest.raises(CardReplaced, match="replaced on"):
        post_sale(b.ledger, sale("b2", old.number, 1_000_000))
    ok = post_sale(b.ledger, sale("b3", "6395000000000002", 1_000_000))
    b.client.sync_once()  # B sends its sales
    a.client.sync_once()  # and A learns them
    assert a.ledger.balance(m.id) == b.ledger.balance(m.id) == ok.balance
    with hub.engine.connect() as conn:
        assert conn.execute(select(balances.c.points).where(balances.c.member_id == m.id)).scalar_one() == ok.balance
    assert verify(a.ledger.engine).ok and verify(b.ledger.engine).ok


def test_two_offline_branches_spending_the_same_points_are_both_kept_and_reported(hub: Hub, terminals) -> None:  # type: ignore[no-untyped-def]
    a, b = terminals("TA"), terminals("TB")
    m = a.ledger.enrol_member(name="Sara", mobile="09120000001", actor="mgr")
    card = a.ledger.issue_card(member_id=m.id, number="6395000000000001", technology="magstripe", actor="mgr")
    a.ledger.adjust(member_id=m.id, points=900, reason="welcome gift", actor="mgr")  # 1,000 points
    a.client.sync_once()
    b.client.sync_once()
    assert b.ledger.balance(m.id) == 1000
    # the network is down; each branch lets the member spend 800 of the same 1,000 points
    ra = post_sale(a.ledger, sale("a", card.number, 2_000_000, redeem=800))
    rb = post_sale(b.ledger, sale("b", card.number, 2_000_000, redeem=800))
    assert ra.redeemed_points == rb.redeemed_points == 800
    a.client.sync_once()
    b.client.sync_once()
    a.client.sync_once()
    overdrawn = hub.reconcile()
    assert [r["member_id"] for r in overdrawn] == [m.id]
    assert sorted(d["terminal_code"] for d in overdrawn[0]["debits"] if d["kind"] == "redeem") == ["TA", "TB"]
    assert a.ledger.balance(m.id) == b.ledger.balance(m.id) == overdrawn[0]["balance"] < 0
    # the member is not locked out: a sale that redeems nothing goes through at both, and
    # what it earns pays the debt first (was: "the member has -N points; cannot redeem 0")
    for t, key in ((a, "after-a"), (b, "after-b")):
        after = post_sale(t.ledger, sale(key, card.number, 1_000_000))
        assert after.redeemed_points == 0 and after.debt_points == max(0, -after.balance)


def test_a_published_loyalty_table_reaches_the_terminal(hub: Hub, terminals) -> None:  # type: ignore[no-untyped-def]
    a = terminals("TA")
    text = open("ledger/rules/default.toml", encoding="utf-8").read()
    assert default_ruleset().earn.rial_per_point == 10_000
    text = text.replace("rial_per_point = 10000            # 1 point", "rial_per_point = 5000            # 1 point")
    version, digest = hub.publish_ruleset(text, "test.toml")
    assert a.ledger.ruleset.hash != digest
    a.client.sync_once()
    assert a.ledger.ruleset.hash == digest and a.client.status()["ruleset_hash"] == digest


def test_the_hubs_table_survives_a_restart_of_the_terminal(hub: Hub, terminals, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A restarted terminal used to go back to its configured table while `sync status`
    still named the hub's, so the hub never resent it: the till earned at the old rate."""
    from ledger.rules import load_ruleset
    from ledger.sales import post_sale
    from sync.client import SyncClient
    from tests.conftest import sale

    a = terminals("TA")
    text = open("ledger/rules/default.toml", encoding="utf-8").read().replace(
        "rial_per_point = 10000            # 1 point", "rial_per_point = 5000            # 1 point")
    _, digest = hub.publish_ruleset(text, "test.toml")
    a.client.sync_once()
    assert a.ledger.ruleset.hash == digest
    path = Path(str(a.ledger.engine.url.database))
    a.client.close()
    a.ledger.close()
    configured = load_ruleset("ledger/rules/default.toml")  # what the terminal's config names
    a.ledger = Ledger.open(path, store="S1", terminal="TA", clock=a.clock, ruleset=configured)
    a.client = SyncClient(a.ledger, a.creds, batch_size=50, transport=a.client.http._transport)
    assert a.ledger.ruleset.hash == digest and a.ledger.ruleset.earn.rial_per_point == 5000
    a.client.sync_once()
    assert a.ledger.ruleset.hash == digest and a.client.status()["ruleset_hash"] == digest
    m = a.ledger.enrol_member(name="Sara", mobile="09120000009", actor="mgr")
    a.ledger.issue_card(member_id=m.id, number="6395000000000009", technology="magstripe", actor="mgr")
    earned = post_sale(a.ledger, sale("k1", "6395000000000009", 1_000_000))
    assert earned.awards[0].points == 200 and earned.awards[0].rule_id == "earn"  # 1 per 5,000, not 10,000


def test_a_member_enrolled_after_the_clock_stepped_back_reaches_the_other_branches(  # type: ignore[no-untyped-def]
        hub: Hub, terminals) -> None:
    """Directory rows were picked for upload by their own timestamps: after NTP set a
    fast clock back, a member and card enrolled then never reached the hub, and the
    other branches, which did get the member's entries, failed `ledger verify`."""
    a, b = terminals("TA"), terminals("TB")
    a.ledger.enrol_member(name="Early", mobile="09120000101", actor="mgr")
    a.client.sync_once()
    a.clock.advance(hours=-2)  # the terminal's clock is corrected backwards
    m = a.ledger.enrol_member(name="After the step", mobile="09120000102", actor="mgr")
    a.ledger.issue_card(member_id=m.id, number="6395000000000102", technology="magstripe", actor="mgr")
    post_sale(a.ledger, sale("k1", "6395000000000102", 2_000_000))
    a.client.sync_once()
    b.client.sync_once()
    assert b.ledger.find_member("6395000000000102").id == m.id
    assert b.ledger.balance(m.id) == a.ledger.balance(m.id) > 0
    assert verify(b.ledger.engine).ok and verify(a.ledger.engine).ok


def test_one_mobile_enrolled_offline_at_two_branches_is_listed_for_a_merge(hub: Hub, terminals) -> None:  # type: ignore[no-untyped-def]
    a, b = terminals("TA"), terminals("TB")
    # both branches offline: the same customer is enrolled at each, with a card each
    ma = a.ledger.enrol_member(name="Sara", mobile="09120000001", actor="mgr-a")
    ca = a.ledger.issue_card(member_id=ma.id, number="6395000000000001", technology="magstripe", actor="mgr-a")
    mb = b.ledger.enrol_member(name="Sara A.", mobile="09120000001", actor="mgr-b")
    cb = b.ledger.issue_card(member_id=mb.id, number="6395000000000002", technology="magstripe", actor="mgr-b")
    post_sale(a.ledger, sale("a1", ca.number, 1_000_000))
    for _ in range(2):
        a.client.sync_once()
        b.client.sync_once()
    assert hub.reconcile() == []
    [shared] = hub.shared_mobiles()
    assert shared["mobile"] == "09120000001"
    listed = {m["member_id"]: m for m in shared["members"]}
    assert set(listed) == {ma.id, mb.id}
    assert (listed[ma.id]["enrolled_by"], listed[ma.id]["balance"]) == ("mgr-a", a.ledger.balance(ma.id))
    assert (listed[mb.id]["enrolled_by"], listed[mb.id]["balance"]) == ("mgr-b", b.ledger.balance(mb.id))
    # each branch took the other's member whole: both cards work at both, balances agree
    assert post_sale(b.ledger, sale("b1", cb.number, 1_000_000)).earned_points > 0
    assert post_sale(a.ledger, sale("a2", cb.number, 1_000_000)).earned_points > 0
    assert post_sale(b.ledger, sale("b2", ca.number, 1_000_000)).earned_points > 0
    for _ in range(2):
        a.client.sync_once()
        b.client.sync_once()
    for member in (ma.id, mb.id):
        assert a.ledger.balance(member) == b.ledger.balance(member) > 0
    # the mobile alone no longer says who: the cashier is told to use the card
    for t in (a, b):
        with pytest.raises(SharedMobile, match="use the member's card"):
            t.ledger.find_member("09120000001")
    assert verify(a.ledger.engine).ok and verify(b.ledger.engine).ok


def test_sync_status_is_read_while_a_sale_holds_the_write_lock(hub: Hub, terminals, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    from ledger.service import Ledger
    from sync.client import SyncClient

    a = terminals("TA")
    a.client.sync_once()
    path = tmp_path / "TA.sqlite3"
    # a reader that may not wait at all for the lock: any write would fail at once
    impatient = Ledger.open(path, store="S1", terminal="TA", busy_timeout_ms=0)
    client = SyncClient(impatient, a.creds)
    till = sqlite3.connect(path, isolation_level=None)
    try:
        till.execute("BEGIN IMMEDIATE")  # the daemon, mid-sale
        status = client.status()
        assert status["backlog"] == 0 and status["last_success_at"] and status["last_error"] is None
    finally:
        till.execute("ROLLBACK")
        till.close()
        client.close()
        impatient.close()


def test_the_loyalty_tables_text_travels_only_to_a_terminal_without_it(hub: Hub, terminals) -> None:  # type: ignore[no-untyped-def]
    a = terminals("TA")
    text = open("ledger/rules/default.toml", encoding="utf-8").read().replace(
        "rial_per_point = 10000            # 1 point", "rial_per_point = 5000            # 1 point")
    version, digest = hub.publish_ruleset(text, "test.toml")
    fresh = hub.sync("TA", {"ruleset_hash": None})["ruleset"]
    assert fresh == {"version": version, "hash": digest, "toml": text}
    assert hub.sync("TA", {"ruleset_hash": digest})["ruleset"] == {"version": version, "hash": digest}
    assert hub.sync("TA", {"ruleset_hash": "0" * 64})["ruleset"]["toml"] == text  # an older table: sent again
    a.client.sync_once()
    assert a.ledger.ruleset.hash == digest and a.ledger.ruleset.earn.rial_per_point == 5000
    a.client.sync_once()  # holding it now, the terminal keeps it (the answer had no text)
    assert a.ledger.ruleset.hash == digest and a.client.status()["ruleset_hash"] == digest
    with pytest.raises(HubRefused, match="ruleset_hash must be text"):
        hub.sync("TA", {"ruleset_hash": 5})
