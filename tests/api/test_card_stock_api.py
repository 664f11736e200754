"""The local API's door to card stock: when the chain requires stock, issuing or
replacing with a number outside this store's stock is a 409 `card_not_in_stock`
problem that says why, and nothing is written; a card from the stock is issued."""

from __future__ import annotations

from fastapi.testclient import TestClient

from ledger import hubsync
from ledger.db import Raw
from terminal_agent.runtime import Runtime

IN_STOCK = ("6395000000000101", "6395000000000102")
NOT_IN_STOCK = "6395000000000999"


def _stock(runtime: Runtime) -> dict[str, str]:
    with runtime.ledger.read() as conn:
        return dict(Raw(conn).all("SELECT number, status FROM card_stock"))


def test_a_card_outside_the_stores_stock_is_refused_when_the_chain_requires_stock(
        client: TestClient, runtime: Runtime, manager_headers: dict[str, str]) -> None:
    with runtime.ledger.write("as a sync brings it") as conn:  # what the hub's answer would write
        raw = Raw(conn)
        hubsync.take_card_stock(raw, [{"number": n, "batch": "B1", "status": "assigned"} for n in IN_STOCK],
                                runtime.ledger.card_policy)
        hubsync.take_card_stock_required(raw, True)
    r = client.post("/v1/members", json={"name": "Leila", "mobile": "09121112233"}, headers=manager_headers)
    member_id = r.json()["id"]

    assert client.get("/v1/status").json()["card_stock"] == {"in_stock": 2, "required": True}
    r = client.post(f"/v1/members/{member_id}/cards", json={"number": NOT_IN_STOCK}, headers=manager_headers)
    assert r.status_code == 409 and r.json()["code"] == "card_not_in_stock"
    assert "not in this store's stock" in r.json()["detail"] and NOT_IN_STOCK not in r.json()["detail"]
    assert r.headers["content-type"].startswith("application/problem+json")
    with runtime.ledger.read() as conn:  # nothing written
        assert Raw(conn).scalar("SELECT count(*) FROM cards") == 0

    r = client.post(f"/v1/members/{member_id}/cards", json={"number": IN_STOCK[0]}, headers=manager_headers)
    assert r.status_code == 201, r.text
    r = client.post(f"/v1/cards/{IN_STOCK[0]}/replace", json={"new_number": NOT_IN_STOCK, "reason": "lost"},
                    headers=manager_headers)
    assert r.status_code == 409 and r.json()["code"] == "card_not_in_stock"
    r = client.post(f"/v1/cards/{IN_STOCK[0]}/replace", json={"new_number": IN_STOCK[1], "reason": "lost"},
                    headers=manager_headers)
    assert r.status_code == 200, r.text
    assert _stock(runtime) == dict.fromkeys(IN_STOCK, "issued")
    assert client.get("/v1/status").json()["card_stock"] == {"in_stock": 0, "required": True}  # none left to issue


def test_without_the_requirement_any_card_in_the_ranges_is_issued_as_before(
        client: TestClient, runtime: Runtime, manager_headers: dict[str, str]) -> None:
    member_id = client.post("/v1/members", json={"name": "Leila", "mobile": "09121112233"},
                            headers=manager_headers).json()["id"]
    r = client.post(f"/v1/members/{member_id}/cards", json={"number": NOT_IN_STOCK}, headers=manager_headers)
    assert r.status_code == 201, r.text
    assert _stock(runtime) == {}
    assert "card_stock" not in client.get("/v1/status").json()  # a chain without stock
