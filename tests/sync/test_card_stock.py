"""Pre-printed card stock from head office to the till, on SQLite and PostgreSQL: a
batch is imported whole or not at all; cards are assigned to stores and counted; a
real terminal ledger receives its store's stock (and not another store's), issues and
replaces from it offline, and refuses a number outside it when the chain requires
stock; the hub records each issue against the stock, tells the store's other tills,
tells a card's whole story, and `verify` reports a card issued outside stock while
stock was required. Old terminals keep syncing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from ledger.db import Raw
from ledger.errors import CardNotInStock, DuplicateCard
from sync.errors import HubRefused
from sync.hub import scope
from sync.hub.cardranges import parse_ranges
from sync.hub.schema import audit, card_batches, card_stock
from sync.hub.service import Hub
from sync.hub.stock import assign, card_history, import_batch, stock_counts
from sync.hub.stockfile import check_digit, range_numbers
from sync.hub.verify import BadRow, verify_hub
from tests.attacks.forge import Forger, Till


def card(serial: int) -> str:
    body = "6395" + str(serial).zfill(11)
    return body + check_digit(body)


@pytest.fixture
def chain(hub: Hub, hub_http: TestClient, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Head office with Luhn card ranges, and tills of two stores (two tills at S1)."""
    hub.set_card_ranges(parse_ranges(["6395:16:luhn"]), by="ho")
    tills = {code: Till(tmp_path, hub, hub_http, code, store)
             for code, store in (("TA", "S1"), ("TA2", "S1"), ("TB", "S2"))}
    yield tills
    for t in tills.values():
        t.close()


def _stock(hub: Hub) -> dict[str, tuple[str, str | None]]:
    with hub.engine.connect() as conn:
        return {r.number: (r.status, r.store) for r in conn.execute(select(card_stock))}


def _till_stock(till: Till) -> dict[str, str]:
    with till.ledger.read() as conn:
        return dict(Raw(conn).all("SELECT number, status FROM card_stock"))


def _audited(hub: Hub, action: str) -> list[dict]:  # type: ignore[type-arg]
    with hub.engine.connect() as conn:
        return [{"actor": r.actor, "target": r.target, **json.loads(r.detail)}
                for r in conn.execute(select(audit).where(audit.c.action == action).order_by(audit.c.id))]


def _counts(hub: Hub, store: str | None = None) -> dict[str, dict[str, int]]:
    with hub.engine.connect() as conn:
        return {r.pop("where"): r for r in stock_counts(conn, store)}


def test_a_batch_is_imported_whole_or_not_at_all(hub: Hub, chain) -> None:  # type: ignore[no-untyped-def]
    bad = [("line 1", card(1)), ("line 2", "4111 1111 1111 1111"), ("line 3", "7700000000000000"),
           ("line 4", card(1)), ("line 5", card(2))]
    with pytest.raises(HubRefused) as refused:
        import_batch(hub, "B1", bad, "ho", "file cards.txt")
    text = str(refused.value)
    assert "3 of 5 number(s) refused, nothing was imported" in text and refused.value.problem == "stock_refused"
    assert "line 2: this is a bank card (Visa 411111******1111)" in text and "4111111111111111" not in text
    assert "line 3: card 770000******0000 is not a member card" in text and "line 4" in text
    assert _stock(hub) == {} and _audited(hub, "stock.import") == []
    with hub.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(card_batches)).scalar_one() == 0

    row = import_batch(hub, "B1", range_numbers(card(1), card(10), hub.card_policy()), "ho", "range of 10")
    assert row["cards"] == 10 and row["imported_by"] == "ho"
    with pytest.raises(HubRefused, match=rf"number 1 of the range: card 639500\*+{card(10)[-4:]} is already in "
                                         r"stock \(batch B1\)"):
        import_batch(hub, "B2", range_numbers(card(10), card(12), hub.card_policy()), "ho", "range of 3")
    with pytest.raises(HubRefused, match="already a batch B1"):
        import_batch(hub, "B1", [("line 1", card(50))], "ho", "file")
    ta = chain["TA"]  # a card issued at a till before it was ever printed in a batch
    m = ta.ledger.enrol_member(name="Sara", mobile="09120000001", actor="mgr")
    ta.ledger.issue_card(member_id=m.id, number=card(50), technology="manual", actor="mgr")
    ta.client.sync_once()
    with pytest.raises(HubRefused, match="line 2: card .* is already issued to a member"):
        import_batch(hub, "B2", [("line 1", card(51)), ("line 2", card(50))], "ho", "file")
    assert set(_stock(hub)) == {card(i) for i in range(1, 11)}
    assert [(a["target"], a["cards"], a["actor"]) for a in _audited(hub, "stock.import")] == [("B1", 10, "ho")]


def test_cards_are_assigned_to_stores_and_counted(hub: Hub, chain) -> None:  # type: ignore[no-untyped-def]
    import_batch(hub, "B1", range_numbers(card(1), card(10), hub.card_policy()), "ho", "range")
    done = assign(hub, "B1", "S1", 3, "ho")
    assert (done["cards"], done["first"], done["last"]) == (3, card(1), card(3))
    with pytest.raises(HubRefused, match="has 7 card\\(s\\) left at head office, not 8; nothing was assigned"):
        assign(hub, "B1", "S2", 8, "ho")
    with pytest.raises(HubRefused, match="no store 'S9'") as unknown:
        assign(hub, "B1", "S9", 1, "ho")
    assert unknown.value.problem == "unknown_store"
    with pytest.raises(HubRefused, match="no batch 'B7'"):
        assign(hub, "B7", "S1", 1, "ho")
    assert assign(hub, "B1", "S2", None, "ho")["cards"] == 7
    with pytest.raises(HubRefused, match="no cards left"):
        assign(hub, "B1", "S2", None, "ho")
    counts = _counts(hub)
    assert counts["head office"]["in_stock"] == 0
    assert counts["S1"]["in_stock"] == 3 and counts["S2"]["in_stock"] == 7 and counts["S1"]["issued"] == 0
    assert list(_counts(hub, "S1")) == ["S1"]
    assert [(a["store"], a["cards"]) for a in _audited(hub, "stock.assign")] == [("S1", 3), ("S2", 7)]


def test_a_store_receives_its_stock_issues_and_replaces_from_it_offline(hub: Hub, chain) -> None:  # type: ignore[no-untyped-def]
    ta, ta2, tb = chain["TA"], chain["TA2"], chain["TB"]
    hub.card_stock_required = True
    import_batch(hub, "B1", range_numbers(card(1), card(6), hub.card_policy()), "ho", "range")
    assign(hub, "B1", "S1", 3, "ho")
    assign(hub, "B1", "S2", 3, "ho")
    for t in (ta, ta2, tb):
        t.client.sync_once()
    s1, s2 = [card(i) for i in (1, 2, 3)], [card(i) for i in (4, 5, 6)]
    assert _till_stock(ta) == _till_stock(ta2) == dict.fromkeys(s1, "in_stock")
    assert _till_stock(tb) == dict.fromkeys(s2, "in_stock")  # not another store's
    with ta.ledger.read() as conn:
        assert Raw(conn).scalar("SELECT card_stock_required FROM sync_state") == 1
        rev = Raw(conn).scalar("SELECT directory_rev FROM sync_state")
    with hub.engine.connect() as conn:  # incremental: nothing comes down again
        assert scope.downstream(conn, "TA", "S1", 0, rev)["card_stock"] == []

    # offline from here: the tills decide from what they hold
    m = ta.ledger.enrol_member(name="Sara", mobile="09120000001", actor="mgr")
    with ta.ledger.read() as conn:
        outbox = Raw(conn).scalar("SELECT count(*) FROM outbox")
    with pytest.raises(CardNotInStock, match="not in this store's stock"):
        ta.ledger.issue_card(member_id=m.id, number=s2[0], technology="manual", actor="mgr")  # S2's card
    with pytest.raises(CardNotInStock):
        ta.ledger.issue_card(member_id=m.id, number=card(99), technology="manual", actor="mgr")  # never printed
    with ta.ledger.read() as conn:  # nothing written
        assert Raw(conn).scalar("SELECT count(*) FROM cards") == 0
        assert Raw(conn).scalar("SELECT count(*) FROM outbox") == outbox
    assert _till_stock(ta) == dict.fromkeys(s1, "in_stock")
    ta.ledger.issue_card(member_id=m.id, number=s1[0], technology="magstripe", actor="mgr")
    with pytest.raises(CardNotInStock):  # a replacement too; the old card stays active
        ta.ledger.replace_card(old_number=s1[0], new_number=card(98), actor="mgr", reason="lost")
    assert ta.ledger.card(s1[0]).status == "active"
    ta.ledger.replace_card(old_number=s1[0], new_number=s1[1], actor="mgr", reason="lost")
    assert _till_stock(ta) == {s1[0]: "issued", s1[1]: "issued", s1[2]: "in_stock"}

    ta.client.sync_once()
    assert _stock(hub)[s1[0]] == ("issued", "S1") and _stock(hub)[s1[1]] == ("issued", "S1")
    assert _counts(hub)["S1"] == {"in_stock": 1, "issued": 1, "lost": 0, "blocked": 0, "replaced": 1,
                                        "outside_stock": 0}
    ta2.client.sync_once()  # the store's other till: those two are gone from its stock
    assert _till_stock(ta2) == {s1[0]: "issued", s1[1]: "issued", s1[2]: "in_stock"}
    m2 = ta2.ledger.enrol_member(name="Ali", mobile="09120000002", actor="mgr2")
    with pytest.raises(DuplicateCard):
        ta2.ledger.issue_card(member_id=m2.id, number=s1[1], technology="manual", actor="mgr2")
    ta2.ledger.issue_card(member_id=m2.id, number=s1[2], technology="manual", actor="mgr2")
    ta2.client.sync_once()
    assert _counts(hub, "S1")["S1"]["in_stock"] == 0 and _counts(hub, "S1")["S1"]["issued"] == 2
    assert [a["stock"] for a in _audited(hub, "card.issue")] == ["from_stock"] * 3
    verify_hub(hub.engine, hub.card_policy())  # nothing issued outside stock

    story = card_history_of(hub, s1[0])
    # replaced at the till before it first reached the hub: in the till's time, before the hub recorded it
    assert [r["event"] for r in story] == ["imported", "assigned", "issued", "replaced", "recorded against the stock"]
    assert story[0]["detail"] == "batch B1" and story[0]["by"] == "ho"
    assert story[1]["where"] == "S1" and story[2]["where"] == "terminal TA" and story[2]["by"] == "mgr"
    assert m.id in story[2]["detail"] and story[3]["detail"] == f"replaced by card 639500******{s1[1][-4:]}: lost"
    new = card_history_of(hub, s1[1])
    assert new[2]["event"] == "issued" and "replacing card" in new[2]["detail"]


def card_history_of(hub: Hub, number: str) -> list[dict]:  # type: ignore[type-arg]
    with hub.engine.connect() as conn:
        return card_history(conn, number)


def test_verify_reports_a_card_issued_outside_stock_while_stock_was_required(hub: Hub, chain) -> None:  # type: ignore[no-untyped-def]
    ta = chain["TA"]
    import_batch(hub, "B1", range_numbers(card(1), card(4), hub.card_policy()), "ho", "range")
    assign(hub, "B1", "S2", 2, "ho")
    ta.client.sync_once()  # the chain does not require stock: any card in the ranges is issued
    m = ta.ledger.enrol_member(name="Sara", mobile="09120000001", actor="mgr")
    ta.ledger.issue_card(member_id=m.id, number=card(70), technology="manual", actor="mgr")
    ta.client.sync_once()
    verify_hub(hub.engine, hub.card_policy())
    assert "S1" not in _counts(hub)  # never in stock, not required: how a chain without stock issues cards
    ta.ledger.issue_card(member_id=m.id, number=card(3), technology="manual", actor="mgr")  # at head office
    ta.client.sync_once()
    verify_hub(hub.engine, hub.card_policy())  # recorded, but stock was not required
    assert _stock(hub)[card(3)] == ("issued", "S1")  # counted where it was issued
    assert _counts(hub)["S1"] == {"in_stock": 0, "issued": 1, "lost": 0, "blocked": 0, "replaced": 0,
                                  "outside_stock": 1}

    hub.card_stock_required = True  # head office turns it on; TA has not heard yet (offline)
    ta.ledger.replace_card(old_number=card(70), new_number=card(2), actor="mgr", reason="lost")  # S2's stock
    ta.client.sync_once()  # taken all the same: the card is already in the member's hand
    assert ta.ledger.card(card(2)).status == "active" and _stock(hub)[card(2)] == ("issued", "S2")
    with pytest.raises(BadRow, match=r"1 card\(s\) were issued outside their store's stock while the chain "
                                     r"required it; the first: card 639500\*+\d{4} at terminal TA \(store S1\)"):
        verify_hub(hub.engine, hub.card_policy())
    story = card_history_of(hub, card(2))
    assert ("issued outside stock", "terminal TA") in [(r["event"], r["where"]) for r in story]
    assert any("a card of another store's stock, issued at store S1; the chain required stock" == r["detail"]
               for r in story)
    with ta.ledger.read() as conn:  # the till now knows
        assert Raw(conn).scalar("SELECT card_stock_required FROM sync_state") == 1


def test_an_old_terminal_gets_no_stock_and_keeps_syncing(hub: Hub, hub_http: TestClient) -> None:
    new, old, other = Forger(hub, hub_http, "TN", "S1"), Forger(hub, hub_http, "TO", "S1"), \
        Forger(hub, hub_http, "TX", "S2")
    import_batch(hub, "B1", [("line 1", "6395000000000001"), ("line 2", "6395000000000002")], "ho", "file")
    assign(hub, "B1", "S1", 1, "ho")
    assign(hub, "B1", "S2", 1, "ho")
    answer = old.send()  # no `protocol`: the old answer, without the new field
    assert answer.status_code == 200 and "card_stock" not in answer.json()
    chain_answer = new.send(protocol=2).json()
    assert [(r["number"], r["status"], r["batch"]) for r in chain_answer["card_stock"]] == \
        [("6395000000000001", "assigned", "B1")]
    assert chain_answer["card_stock_required"] is False
    assert [r["number"] for r in other.send(protocol=2).json()["card_stock"]] == ["6395000000000002"]
    again = new.send(protocol=2, directory_rev=chain_answer["directory_rev"]).json()
    assert again.get("card_stock", []) == []  # an empty list is left out of a protocol-2 answer


def test_a_stock_larger_than_one_answer_arrives_whole_over_several(hub: Hub, chain,  # type: ignore[no-untyped-def]
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scope, "SCOPE_ROWS_MAX", 3)
    import_batch(hub, "B1", range_numbers(card(1), card(8), hub.card_policy()), "ho", "range")
    assign(hub, "B1", "S1", 8, "ho")
    report = chain["TA"].client.sync_once()
    assert report.requests >= 3 and _till_stock(chain["TA"]) == {card(i): "in_stock" for i in range(1, 9)}


def test_cards_a_member_import_brings_are_recorded_against_the_stock(hub: Hub, chain,  # type: ignore[no-untyped-def]
                                                                     tmp_path: Path) -> None:
    from sync.hub.memberimport.hubside import import_members
    from tests.sync.test_member_import import EN, workbook

    ta = chain["TA"]
    import_batch(hub, "B1", range_numbers(card(1), card(6), hub.card_policy()), "ho", "range")
    assign(hub, "B1", "S1", 3, "ho")  # 1-3 at S1; 4-6 still at head office
    ta.client.sync_once()
    assert _till_stock(ta) == dict.fromkeys([card(1), card(2), card(3)], "in_stock")

    # existing members brought in from Excel: one with a card of S1's drawer, one with a card
    # still at head office, one with an old card never in stock
    path = workbook(tmp_path / "m.xlsx", EN, [
        ["Sara", "09120000001", None, card(2), None, None, None, "S1"],
        ["Reza", "09120000002", None, card(5), None, None, None, "S2"],
        ["Mina", "09120000003", None, card(900), None, None, None, "S1"]])
    assert import_members(hub, path, by="hq").members == 3
    assert {n: s for n, s in _stock(hub).items() if s[0] == "issued"} == {card(2): ("issued", "S1"),
                                                                         card(5): ("issued", "S2")}
    assert _audited(hub, "members.import")[0]["cards_from_stock"] == 2
    counts = _counts(hub)
    assert (counts["S1"]["in_stock"], counts["S1"]["issued"], counts["S2"]["issued"]) == (2, 1, 1)
    assert counts["head office"]["in_stock"] == 2
    assert "S1" not in counts or counts["S1"]["outside_stock"] == 0  # an old card is not an issue outside stock

    ta.client.sync_once()  # S1's till no longer offers the card: it is Sara's
    assert _till_stock(ta)[card(2)] == "issued"
    with pytest.raises(DuplicateCard):
        m = ta.ledger.enrol_member(name="Ali", mobile="09120000009", actor="mgr")
        ta.ledger.issue_card(member_id=m.id, number=card(2), technology="magstripe", actor="mgr")
    with hub.engine.connect() as conn:
        story = [(r["event"], r["where"], r["detail"]) for r in card_history(conn, card(2))]
    assert ("recorded against the stock", "head office", "imported with its member") in story
