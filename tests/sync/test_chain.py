"""Sync a chain can run (protocol 2): sales and their lines reach the hub; a terminal
receives its store's scope as sums (points elsewhere, tiers, bonus uses), the whole
blocklist, and looks up a card from outside its scope while the customer waits; an
old terminal keeps syncing with the new hub; a ledger of the old protocol is
compacted without a point moving. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from ledger import hubsync
from ledger.db import Raw
from ledger.errors import CardBlocked, OtherStoreMember, UnknownCard
from ledger.sales import post_sale, refund
from ledger.types import RefundLine, RefundRequest
from ledger.verify import verify
from sync.hub.schema import member_stores, sale_lines, sales
from sync.hub.service import Hub
from terminal_agent.api.app import create_app
from terminal_agent.config import parse_config
from terminal_agent.runtime import Runtime
from tests.attacks.forge import Forger, Till
from tests.conftest import sale

TOKEN = "chain-token-0123456789abcdef"


@pytest.fixture
def two_stores(hub: Hub, hub_http: TestClient, tmp_path: Path):  # type: ignore[no-untyped-def]
    ta, tb = Till(tmp_path, hub, hub_http, "TA", "S1"), Till(tmp_path, hub, hub_http, "TB", "S2")
    yield ta, tb
    ta.close()
    tb.close()


def test_sales_and_their_lines_reach_the_hub_once(hub: Hub, two_stores) -> None:  # type: ignore[no-untyped-def]
    ta, _ = two_stores
    m = ta.ledger.enrol_member(name="Sara", mobile="09120000001", actor="mgr")
    ta.ledger.issue_card(member_id=m.id, number="6395000000000001", technology="magstripe", actor="mgr")
    sold = post_sale(ta.ledger, sale("s1", "6395000000000001", 1_000_000, 2_000_000))
    back = refund(ta.ledger, RefundRequest("r1", sold.sale_id, (RefundLine(2, 1),)))
    ta.client.sync_once()
    ta.client.sync_once()  # nothing new: nothing sent twice
    with hub.engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(sales))}
        lines = conn.execute(select(sale_lines.c.sale_id, sale_lines.c.line_no, sale_lines.c.unit_price)
                             .order_by(sale_lines.c.sale_id, sale_lines.c.line_no)).all()
    assert set(rows) == {sold.sale_id, back.refund_id}
    assert rows[sold.sale_id].amount == 3_000_000 and rows[sold.sale_id].store == "S1"
    assert rows[back.refund_id].kind == "refund" and rows[back.refund_id].original_sale_id == sold.sale_id
    assert json.loads(rows[sold.sale_id].result_json)["earned_points"] == sold.earned_points
    assert sorted((r.sale_id == sold.sale_id, r.line_no, r.unit_price) for r in lines) == \
        [(False, 1, 2_000_000), (True, 1, 1_000_000), (True, 2, 2_000_000)]


def test_a_terminal_cannot_send_another_terminals_sale(hub: Hub, hub_http: TestClient) -> None:
    mallory = Forger(hub, hub_http, "TM", "S1")
    r = mallory.send(sales=[{"id": "s-1", "kind": "sale", "original_sale_id": None, "terminal_code": "TA",
                             "member_id": "m1", "card_number": None, "receipt_ref": "R", "amount": 1,
                             "ruleset_hash": "x" * 64, "created_at": "2026-03-01T09:00:00.000000Z",
                             "actor": "pos", "result_json": "{}", "lines": []}], protocol=2)
    assert r.status_code == 403 and r.json()["code"] == "not_entitled"
    with hub.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(sales)).scalar_one() == 0


def test_a_terminal_gets_its_scope_as_sums_not_other_branches_entries(hub: Hub, two_stores) -> None:  # type: ignore[no-untyped-def]
    ta, tb = two_stores
    m = ta.ledger.enrol_member(name="Sara", mobile="09120000001", actor="mgr")
    ta.ledger.issue_card(member_id=m.id, number="6395000000000001", technology="magstripe", actor="mgr")
    other = ta.ledger.enrol_member(name="Ali", mobile="09120000002", actor="mgr")
    ta.ledger.issue_card(member_id=other.id, number="6395000000000002", technology="magstripe", actor="mgr")
    post_sale(ta.ledger, sale("s1", "6395000000000001", 3_000_000))
    ta.client.sync_once()
    tb.client.sync_once()
    with pytest.raises(UnknownCard):  # S1's members are not S2's scope: not sent to S2
        tb.ledger.card("6395000000000001")
    assert tb.client.lookup("6395000000000001") == m.id  # presented at S2: looked up, in scope from now
    assert tb.ledger.balance(m.id) == ta.ledger.balance(m.id)
    with pytest.raises(OtherStoreMember):  # the hub would refuse it, and TB's sync with it
        tb.ledger.issue_card(member_id=m.id, number="6395000000000009", technology="manual", actor="mgr-b")
    after = post_sale(ta.ledger, sale("s2", "6395000000000001", 2_000_000))
    ta.ledger.block_card(number="6395000000000002", reason="stolen", actor="mgr")
    ta.client.sync_once()
    tb.client.sync_once()
    assert tb.ledger.balance(m.id) == after.balance  # a sum, kept up to date
    with pytest.raises(CardBlocked, match="stolen"):  # the whole blocklist, member held or not
        post_sale(tb.ledger, sale("b1", "6395000000000002", 1_000_000))
    bought = post_sale(tb.ledger, sale("b2", "6395000000000001", 1_000_000))
    tb.client.sync_once()
    ta.client.sync_once()
    assert ta.ledger.balance(m.id) == tb.ledger.balance(m.id) == bought.balance
    with tb.ledger.read() as conn:
        assert conn.exec_driver_sql("SELECT DISTINCT terminal_code FROM entries").scalars().all() == ["TB"]
    with ta.ledger.read() as conn:
        assert conn.exec_driver_sql("SELECT DISTINCT terminal_code FROM entries").scalars().all() == ["TA"]
    with hub.engine.connect() as conn:
        scoped = set(conn.execute(select(member_stores.c.member_id).where(member_stores.c.store == "S2")).scalars())
    assert scoped == {m.id}
    assert verify(ta.ledger.engine).ok and verify(tb.ledger.engine).ok


def test_an_old_terminal_keeps_syncing_with_the_new_hub(hub: Hub, hub_http: TestClient) -> None:
    """A terminal of the old protocol sends no `protocol`: it is answered with every
    other terminal's entries, as before, until it is upgraded."""
    a, old = Forger(hub, hub_http, "TA", "S1"), Forger(hub, hub_http, "TO", "S2")
    from tests.attacks.forge import member_row

    assert a.send(members=[member_row("m1", "S1")],
                  entries=[a.entry(member_id="m1", kind="bonus", points=100, rule_id="signup")]).status_code == 200
    answer = old.send().json()
    assert [e["member_id"] for e in answer["entries"]] == ["m1"] and answer["balances"] == {}
    assert "member_states" not in answer
    chain = Forger(hub, hub_http, "TN", "S1").send(protocol=2).json()
    assert "entries" not in chain and [s["member_id"] for s in chain["member_states"]] == ["m1"]


def test_a_ledger_of_the_old_protocol_is_compacted_without_a_point_moving(hub: Hub, two_stores) -> None:  # type: ignore[no-untyped-def]
    ta, tb = two_stores
    m = ta.ledger.enrol_member(name="Sara", mobile="09120000001", actor="mgr")
    ta.ledger.issue_card(member_id=m.id, number="6395000000000001", technology="magstripe", actor="mgr")
    post_sale(ta.ledger, sale("s1", "6395000000000001", 3_000_000))
    ta.client.sync_once()
    # TB as the old protocol left it: TA's member and entries held here, whole
    v1 = hub.sync("TB", {"cursor": 0, "directory_rev": 0})
    with tb.ledger.write("as the old protocol") as conn:
        raw = Raw(conn)
        hubsync.take_members(raw, v1["members"])
        hubsync.take_cards(raw, v1["cards"], tb.ledger.card_policy)
        hubsync.take_entries(raw, v1["entries"], "TB", tb.ledger.card_policy)
        raw.run("UPDATE sync_state SET protocol = 1, hub_cursor = ?, directory_rev = ? WHERE id = 1",
                (v1["cursor"], v1["directory_rev"]))
    before = tb.ledger.balance(m.id)
    assert before == ta.ledger.balance(m.id) > 0
    tb.client.sync_once()
    assert tb.ledger.balance(m.id) == before
    with tb.ledger.read() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM entries").scalar() == 0
        assert conn.exec_driver_sql("SELECT stale FROM members WHERE id = ?", (m.id,)).scalar() == 1
        assert conn.exec_driver_sql("SELECT protocol FROM sync_state").scalar() == 2
    assert verify(tb.ledger.engine).ok
    assert tb.ledger.holding("6395000000000001") == "stale"
    tb.client.lookup("6395000000000001")  # confirmed by the hub
    assert tb.ledger.holding("6395000000000001") == "held" and tb.ledger.balance(m.id) == before


def test_the_till_looks_a_card_up_at_the_hub_before_a_sale(hub: Hub, two_stores, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ta, tb = two_stores
    m = ta.ledger.enrol_member(name="Sara", mobile="09120000001", actor="mgr")
    ta.ledger.issue_card(member_id=m.id, number="6395000000000001", technology="magstripe", actor="mgr")
    ta.client.sync_once()
    cfg = parse_config({"agent": {"data_dir": str(tmp_path / "tb"), "locale": "en", "store": "S2"}}, "t.toml",
                       tmp_path)
    rt = Runtime(config=cfg, ledger=tb.ledger, token=TOKEN)
    rt.hub = tb.client
    line = {"sku": "A1", "name": "Rice", "category": "grocery", "quantity": 1, "unit_price": 2_000_000}
    with TestClient(create_app(rt), headers={"Authorization": f"Bearer {TOKEN}"}) as api:
        r = api.post("/v1/sales", json={"idempotency_key": "k1", "card_number": "6395000000000001",
                                        "receipt_ref": "R1", "lines": [line]})
        assert r.status_code == 200, r.text
        assert r.json()["member_id"] == m.id and r.json()["balance"] == ta.ledger.balance(m.id) + 200
        tb.client.http = httpx.Client(base_url="http://hub.test", transport=httpx.MockTransport(
            lambda request: (_ for _ in ()).throw(httpx.ConnectError("hub down"))))
        r = api.post("/v1/sales", json={"idempotency_key": "k2", "card_number": "6395000000000077",
                                        "receipt_ref": "R2", "lines": [line]})
        assert r.status_code == 404 and r.json()["code"] == "unknown_offline", r.text
        r = api.get("/v1/members/lookup", params={"q": "6395000000000001"})  # held now: no hub needed
        assert r.status_code == 200 and r.json()["id"] == m.id


def test_a_visiting_members_card_replaced_travels_whole_in_any_batch(hub: Hub, two_stores) -> None:  # type: ignore[no-untyped-def]
    """The hub takes another store's member's new card only beside the old one it
    replaces; with the two outbox rows in different batches (one row a batch here) the
    replacement used to be refused, and the till's sync with it (found by the
    simulation, seed 46)."""
    ta, tb = two_stores
    m = ta.ledger.enrol_member(name="Sara", mobile="09120000001", actor="mgr")
    ta.ledger.issue_card(member_id=m.id, number="6395000000000001", technology="magstripe", actor="mgr")
    ta.client.sync_once()
    tb.client.lookup("6395000000000001")
    tb.ledger.replace_card(old_number="6395000000000001", new_number="6395000000000003", actor="mgr-b")
    tb.client.batch_size = 1
    assert tb.client.sync_once().backlog == 0
    ta.client.sync_once()
    assert ta.ledger.card("6395000000000001").status == "replaced"
    assert ta.ledger.find_member("6395000000000003").id == m.id


@pytest.mark.parametrize("batch_size", [1, 50])
def test_a_visiting_members_card_replaced_twice_before_a_sync_reaches_the_hub(hub: Hub, two_stores,  # type: ignore[no-untyped-def]
                                                                               batch_size: int) -> None:
    """A card lost, its replacement lost too, before the branch synced: the hub takes
    the second new card beside the first, which this request also brings (it used to
    refuse it, 403 not_entitled, and the till's every sync after; found by the
    simulation, seed 23)."""
    ta, tb = two_stores
    m = ta.ledger.enrol_member(name="Sara", mobile="09120000001", actor="mgr")
    ta.ledger.issue_card(member_id=m.id, number="6395000000000001", technology="magstripe", actor="mgr")
    ta.client.sync_once()
    tb.client.lookup("6395000000000001")
    tb.ledger.replace_card(old_number="6395000000000001", new_number="6395000000000003", actor="mgr-b")
    tb.ledger.replace_card(old_number="6395000000000003", new_number="6395000000000005", actor="mgr-b")
    tb.client.batch_size = batch_size
    assert tb.client.sync_once().backlog == 0
    ta.client.sync_once()
    assert ta.ledger.card("6395000000000001").status == "replaced"
    assert ta.ledger.card("6395000000000003").status == "replaced"
    assert ta.ledger.find_member("6395000000000005").id == m.id
