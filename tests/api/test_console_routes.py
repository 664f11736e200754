"""The routes the console added: a member's history with its tier progress, a sale by
its receipt, the audit log with filters, and till users run by an admin while the
agent runs (audited; a disabled user cannot log in and their sessions end)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from ledger.schema import audit_log
from ledger.users import add_user
from terminal_agent.runtime import Runtime
from tests.api.conftest import MANAGER_PIN
from tests.api.test_api import _enrol, _sale


def _login(client: TestClient, username: str, pin: str) -> dict[str, str]:
    r = client.post("/v1/sessions", json={"username": username, "pin": pin})
    assert r.status_code == 200, r.text
    return {"X-Session": r.json()["session"]}


def _admin(client: TestClient, runtime: Runtime) -> dict[str, str]:
    assert runtime.pin_key is not None
    add_user(runtime.ledger, username="azadeh", role="admin", pin="246810", actor="test", pin_key=runtime.pin_key)
    return _login(client, "azadeh", "246810")


def test_history_is_newest_first_with_balances_and_both_explanations(
        client: TestClient, manager_headers: dict[str, str]) -> None:
    member_id = _enrol(client, manager_headers)
    assert client.post("/v1/sales", json=_sale("h1")).status_code == 200
    assert client.post("/v1/sales", json=_sale("h2", price=1, redeem_points=0)).status_code == 200
    r = client.post(f"/v1/members/{member_id}/adjustments", json={"points": 7, "reason": "fix"},
                    headers=manager_headers)
    balance = r.json()["balance"]
    r = client.get(f"/v1/members/{member_id}/history", headers=manager_headers)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    assert items[0]["kind"] == "adjust" and items[0]["balance_after"] == balance
    for newer, older in zip(items, items[1:]):
        assert newer["at"] >= older["at"]
        assert older["balance_after"] == newer["balance_after"] - newer["points"]
    earn = next(i for i in items if i["kind"] == "earn")
    assert earn["explanation_en"] and earn["explanation_fa"] and earn["receipt_ref"] == "R-h1"
    assert any(i["kind"] == "sale" and i["points"] == 0 and i["receipt_ref"] == "R-h2" for i in items)
    progress = r.json()["progress"]
    assert progress["tier"] == "bronze" and progress["next_tier"] == "silver"
    assert progress["needed"] == 50_000_000 - progress["window_value"] > 0
    cashier = _login(client, "reza", "1111")
    assert client.get(f"/v1/members/{member_id}/history", headers=cashier).status_code == 403


def test_a_sale_is_found_by_its_receipt_with_what_is_left_to_refund(
        client: TestClient, manager_headers: dict[str, str]) -> None:
    _enrol(client, manager_headers)
    sale_id = client.post("/v1/sales", json=_sale("r1")).json()["sale_id"]
    client.post("/v1/refunds", json={"sale_id": sale_id, "idempotency_key": "rf1",
                                     "lines": [{"line_no": 1, "quantity": 1}]})
    r = client.get("/v1/sales/by-receipt/R-r1")
    assert r.status_code == 200, r.text
    [found] = r.json()["sales"]
    assert found["sale_id"] == sale_id and found["lines"][0]["refundable"] == 1 and found["card"] == "…0101"
    r = client.get("/v1/sales/by-receipt/nothing")
    assert r.status_code == 404 and r.json()["code"] == "unknown_sale"


def test_the_audit_log_reads_back_with_filters(client: TestClient, manager_headers: dict[str, str]) -> None:
    _enrol(client, manager_headers)
    rows = client.get("/v1/audit", params={"actor": "mina"}, headers=manager_headers).json()["rows"]
    assert {r["action"] for r in rows} >= {"member.enrol", "card.issue"}
    assert [r["id"] for r in rows] == sorted((r["id"] for r in rows), reverse=True)
    rows = client.get("/v1/audit", params={"action": "card"}, headers=manager_headers).json()["rows"]
    assert {r["action"] for r in rows} == {"card.issue"}
    r = client.get("/v1/audit", params={"since": "2026-03-01T00:00:00"}, headers=manager_headers)
    assert r.status_code == 422 and r.json()["code"] == "invalid_input"
    assert client.get("/v1/audit", params={"since": "2100-01-01T00:00:00+03:30"},
                      headers=manager_headers).json()["rows"] == []
    assert client.get("/v1/audit", headers=_login(client, "reza", "1111")).status_code == 403


def test_an_admin_adds_disables_and_resets_users_while_the_agent_runs(
        client: TestClient, runtime: Runtime, manager_headers: dict[str, str]) -> None:
    r = client.get("/v1/users", headers=manager_headers)
    assert r.status_code == 403 and r.json()["code"] == "forbidden"  # a manager is not an admin
    admin = _admin(client, runtime)
    r = client.post("/v1/users", json={"username": "sara", "role": "manager", "pin": "1234"}, headers=admin)
    assert r.status_code == 422  # managers need 6 digits
    r = client.post("/v1/users", json={"username": "sara", "role": "cashier", "pin": "1234"}, headers=admin)
    assert r.status_code == 201 and r.json()["role"] == "cashier" and "pin" not in str(r.json()).lower()
    assert client.post("/v1/users", json={"username": "sara", "role": "cashier", "pin": "1234"},
                       headers=admin).json()["code"] == "duplicate_user"
    sara = _login(client, "sara", "1234")
    r = client.post("/v1/users/sara/disable", headers=admin)
    assert r.status_code == 200 and r.json()["disabled"] and r.json()["sessions_closed"] == 1
    assert client.post("/v1/sales", json=_sale("x"), headers=sara).json()["code"] == "bad_session"
    r = client.post("/v1/sessions", json={"username": "sara", "pin": "1234"})
    assert r.status_code == 401 and r.json()["code"] == "auth_failed"
    assert client.post("/v1/users/azadeh/disable", headers=admin).status_code == 422  # not yourself
    assert client.put("/v1/users/sara/pin", json={"pin": "4321"}, headers=admin).status_code == 200
    assert client.post("/v1/users/sara/enable", headers=admin).json()["disabled"] is False
    _login(client, "sara", "4321")
    listed = {u["username"]: u for u in client.get("/v1/users", headers=admin).json()["users"]}
    assert set(listed) == {"azadeh", "mina", "reza", "sara"} and not any("pin" in k for u in listed.values()
                                                                         for k in u)
    assert client.put("/v1/users/nobody/pin", json={"pin": "4321"}, headers=admin).json()["code"] == "unknown_user"
    with runtime.ledger.engine.connect() as conn:
        done = conn.execute(select(audit_log.c.action, audit_log.c.actor, audit_log.c.detail)
                            .where(audit_log.c.target == "sara")).all()
    assert {(a, actor) for a, actor, _ in done} >= {("user.add", "azadeh"), ("user.disable", "azadeh"),
                                                    ("user.set_pin", "azadeh"), ("user.enable", "azadeh"),
                                                    ("user.login_disabled", "sara")}
    assert not any("1234" in detail or "4321" in detail for _, _, detail in done)
    _ = MANAGER_PIN


def test_history_keeps_the_words_a_sale_had_under_an_older_table(
        client: TestClient, runtime: Runtime, manager_headers: dict[str, str]) -> None:
    """A sale's explanation is the one it had at the till, in both languages, also
    after the loyalty table changed (it is kept with the sale, never worked out again)."""
    from tests.rules.tables import table

    member_id = _enrol(client, manager_headers)
    sale = client.post("/v1/sales", json=_sale("old")).json()
    said = {(a["explanation_en"], a["explanation_fa"]) for a in sale["awards"] if a["points"]}
    runtime.ledger.ruleset = table(earn={"rial_per_point": 1_000, "minimum_purchase": 1})  # ten times the points
    items = client.get(f"/v1/members/{member_id}/history", headers=manager_headers).json()["items"]
    assert {(i["explanation_en"], i["explanation_fa"]) for i in items if i["kind"] == "earn"} == said
