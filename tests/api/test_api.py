"""The local POS API through httpx (Starlette's TestClient) on the real app and a real SQLite file."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from ledger.schema import audit_log
from ledger.users import AUTH_FAILED_MESSAGE, AuthError, authenticate
from terminal_agent.api.limits import ClientFailureLimiter
from terminal_agent.runtime import Runtime


def _enrol(client: TestClient, headers: dict[str, str], mobile: str = "09121112233",
           card: str = "6395000000000101") -> str:
    r = client.post("/v1/members", json={"name": "Leila", "mobile": mobile}, headers=headers)
    assert r.status_code == 201, r.text
    member_id = r.json()["id"]
    r = client.post(f"/v1/members/{member_id}/cards", json={"number": card}, headers=headers)
    assert r.status_code == 201, r.text
    return str(member_id)


def _sale(key: str, card: str = "6395000000000101", price: int = 2_500_000, **extra: Any) -> dict[str, Any]:
    return {"idempotency_key": key, "card_number": card, "receipt_ref": f"R-{key}",
            "lines": [{"sku": "A1", "name": "Rice", "category": "grocery", "quantity": 2, "unit_price": price}],
            **extra}


def _audited(runtime: Runtime, action: str) -> list[Any]:
    with runtime.ledger.engine.connect() as conn:
        return conn.execute(select(audit_log).where(audit_log.c.action == action)).all()


def test_health_needs_no_token_but_everything_else_does(client: TestClient, runtime: Runtime) -> None:
    assert client.get("/v1/health", headers={"Authorization": ""}).json()["status"] == "ok"
    r = client.get("/v1/cards/last", headers={"Authorization": ""})
    assert r.status_code == 401 and r.json()["code"] == "missing_token"
    assert r.headers["content-type"].startswith("application/problem+json")
    r = client.get("/v1/cards/last", headers={"Authorization": "Bearer wrong-token-wrong-token"})
    assert r.status_code == 401 and r.json()["code"] == "bad_token"
    assert _audited(runtime, "api.no_token") and _audited(runtime, "api.bad_token")


def test_openapi_is_published(client: TestClient) -> None:
    spec = client.get("/v1/openapi.json").json()
    assert "/v1/sales" in spec["paths"] and "/v1/members" in spec["paths"]


def test_cashier_cannot_call_manager_operations(client: TestClient, runtime: Runtime) -> None:
    s = client.post("/v1/sessions", json={"username": "reza", "pin": "1111"}).json()["session"]
    r = client.post("/v1/members", json={"name": "X", "mobile": "09120000000"}, headers={"X-Session": s})
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    assert [row.actor for row in _audited(runtime, "api.forbidden")] == ["reza"]
    r = client.post("/v1/members", json={"name": "X", "mobile": "09120000000"})
    assert r.status_code == 401 and r.json()["code"] == "session_required"


def test_five_wrong_pins_lock_the_user(client: TestClient, runtime: Runtime) -> None:
    for _ in range(4):
        r = client.post("/v1/sessions", json={"username": "mina", "pin": "000000"})
        assert r.status_code == 401 and r.json()["code"] == "auth_failed"
    runtime.ledger.clock.advance(minutes=1)  # type: ignore[attr-defined]
    client.app.state.pin_limiter = ClientFailureLimiter()  # a minute later for this client too  # type: ignore[attr-defined]
    r = client.post("/v1/sessions", json={"username": "mina", "pin": "000000"})
    assert r.status_code == 401 and r.json()["code"] == "auth_failed"
    r = client.post("/v1/sessions", json={"username": "mina", "pin": "654321"})  # right PIN, still locked
    assert r.status_code == 401 and r.json()["detail"] == AUTH_FAILED_MESSAGE
    assert any('"locked": true' in row.detail for row in _audited(runtime, "user.pin_failed"))
    assert _audited(runtime, "user.login_locked")


def test_lock_expires_after_five_minutes(client: TestClient, runtime: Runtime) -> None:
    for _ in range(5):
        authenticate_quietly(runtime, "mina", "000000")
    runtime.ledger.clock.advance(minutes=5, seconds=1)  # type: ignore[attr-defined]
    assert client.post("/v1/sessions", json={"username": "mina", "pin": "654321"}).status_code == 200


def authenticate_quietly(runtime: Runtime, username: str, pin: str) -> None:
    try:
        authenticate(runtime.ledger, username=username, pin=pin, pin_key=runtime.pin_key)  # type: ignore[arg-type]
    except AuthError:
        pass


def test_sale_flow_with_receipt_and_idempotency(client: TestClient, manager_headers: dict[str, str]) -> None:
    member_id = _enrol(client, manager_headers)
    q = client.post("/v1/quote", json={"card_number": "6395000000000101", "lines": _sale("q")["lines"]})
    assert q.status_code == 200, q.text
    r = client.post("/v1/sales", json=_sale("k1"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["earned_points"] == q.json()["earned_points"] and body["member_id"] == member_id
    assert body["replayed"] is False and any("Points earned" in x for x in body["receipt"])
    again = client.post("/v1/sales", json=_sale("k1"))
    assert again.json()["replayed"] is True and again.json()["sale_id"] == body["sale_id"]
    conflict = client.post("/v1/sales", json=_sale("k1", price=2_600_000))
    assert conflict.status_code == 409 and conflict.json()["code"] == "idempotency_conflict"
    fa = client.post("/v1/sales", json=_sale("k2", locale="fa")).json()
    assert any("امتیاز" in x for x in fa["receipt"])
    # the receipt names the tier as the loyalty table does, not by its id
    assert "Tier: Bronze" in body["receipt"] and "سطح: برنزی" in fa["receipt"], (body["receipt"], fa["receipt"])
    lookup = client.get("/v1/members/lookup", params={"q": "0912 111 2233"}).json()
    assert lookup["balance"] == fa["balance"]


def test_bad_input_is_a_4xx_problem_never_500(client: TestClient, manager_headers: dict[str, str]) -> None:
    _enrol(client, manager_headers)
    bad = _sale("k1")
    bad["lines"][0]["unit_price"] = 2.5
    r = client.post("/v1/sales", json=bad)
    assert r.status_code == 422 and r.json()["code"] == "invalid_input" and "unit_price" in r.json()["detail"]
    r = client.post("/v1/sales", json={**_sale("k2"), "extra": 1})
    assert r.status_code == 422
    r = client.post("/v1/sales", json=_sale("k3", card="6395999999999999"))
    assert r.status_code == 404 and r.json()["code"] == "unknown_card"
    r = client.post("/v1/sales", json=_sale("k4", redeem_points=10**9))
    assert r.status_code == 409 and r.json()["code"] == "insufficient_points"
    r = client.post("/v1/members", json={"name": "Y", "mobile": "12"}, headers=manager_headers)
    assert r.status_code == 422 and r.json()["code"] == "invalid_mobile"
    r = client.post("/v1/sales", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 422


def test_manager_operations_replace_block_adjust_gift(client: TestClient, manager_headers: dict[str, str],
                                                      runtime: Runtime) -> None:
    member_id = _enrol(client, manager_headers)
    client.post("/v1/sales", json=_sale("k1"))
    r = client.post("/v1/cards/6395000000000101/replace", json={"new_number": "6395000000000202"},
                    headers=manager_headers)
    assert r.status_code == 200, r.text
    refused = client.post("/v1/sales", json=_sale("k2"))
    assert refused.status_code == 409 and refused.json()["code"] == "card_replaced"
    assert "replaced on" in refused.json()["detail"]
    r = client.post(f"/v1/members/{member_id}/adjustments", json={"points": 40, "reason": "goodwill"},
                    headers=manager_headers)
    assert r.status_code == 200 and r.json()["balance"] == runtime.ledger.balance(member_id)
    r = client.post("/v1/cards/6395000000000202/block", json={"reason": "stolen"}, headers=manager_headers)
    assert r.json()["status"] == "lost"
    r = client.post("/v1/gift-cards", json={"number": "GC77", "amount": 1_000_000}, headers=manager_headers)
    assert r.status_code == 201
    r = client.post("/v1/gift-cards/GC77/spend", json={"amount": 400_000, "receipt_ref": "R1"},
                    headers=manager_headers)
    assert r.json()["balance"] == 600_000
    assert [row.actor for row in _audited(runtime, "gift.spend")] == ["mina"]
    actions = {row.action for row in _audited(runtime, "points.adjust")} | {
        row.action for row in _audited(runtime, "card.replace")}
    assert actions == {"points.adjust", "card.replace"}
    assert all(row.actor == "mina" for row in _audited(runtime, "card.replace"))


def test_refund_through_the_api(client: TestClient, manager_headers: dict[str, str], runtime: Runtime) -> None:
    member_id = _enrol(client, manager_headers)
    before = runtime.ledger.balance(member_id)
    sale = client.post("/v1/sales", json=_sale("k1")).json()
    r = client.post("/v1/refunds", json={"sale_id": sale["sale_id"], "idempotency_key": "rf1"})
    assert r.status_code == 200, r.text
    assert r.json()["balance"] == before
    r = client.post("/v1/refunds", json={"sale_id": sale["sale_id"], "idempotency_key": "rf2"})
    assert r.status_code == 409 and r.json()["code"] == "refund_exceeds_sale"


def test_refusals_never_log_or_audit_a_full_card_number(client, runtime, caplog) -> None:  # type: ignore[no-untyped-def]
    from terminal_agent.api.auth import redact_path

    assert redact_path("/v1/cards/4111111111111111/block") == "/v1/cards/************1111/block"
    with caplog.at_level("WARNING"):
        r = client.post("/v1/cards/4111111111111111/block", json={"reason": "x"},
                        headers={"Authorization": "Bearer wrong-token-000000"})
    assert r.status_code == 401
    assert "4111111111111111" not in caplog.text and "1111" in caplog.text
    with runtime.ledger.read() as conn:
        targets = [row.target for row in conn.execute(select(audit_log))]
    assert targets and all("4111111111111111" not in (t or "") for t in targets)


def test_the_till_spends_a_gift_card_with_the_pos_token_alone(client: TestClient, manager_headers: dict[str, str],
                                                              runtime: Runtime) -> None:
    assert client.post("/v1/gift-cards", json={"number": "GC88", "amount": 1_000_000}).status_code == 401
    r = client.post("/v1/gift-cards", json={"number": "GC88", "amount": 1_000_000}, headers=manager_headers)
    assert r.status_code == 201
    assert client.post("/v1/gift-cards/GC88/load", json={"amount": 5}).json()["code"] == "session_required"
    assert client.get("/v1/gift-cards/GC88").json() == {"number": "GC88", "balance": 1_000_000}
    r = client.post("/v1/gift-cards/GC88/spend", json={"amount": 300_000, "receipt_ref": "R-9"})
    assert r.status_code == 200 and r.json()["balance"] == 700_000
    cashier = client.post("/v1/sessions", json={"username": "reza", "pin": "1111"}).json()["session"]
    r = client.post("/v1/gift-cards/GC88/spend", json={"amount": 100_000, "receipt_ref": "R-10"},
                    headers={"X-Session": cashier})
    assert r.json()["balance"] == 600_000
    assert [row.actor for row in _audited(runtime, "gift.spend")] == ["pos", "reza"]
    r = client.post("/v1/gift-cards/GC88/spend", json={"amount": 100_000})
    assert r.status_code == 422  # a spend names the receipt it pays for
    spec = client.get("/v1/openapi.json").json()
    assert "/v1/gift-cards/{number}" in spec["paths"] and "HTTPBearer" in spec["components"]["securitySchemes"]
