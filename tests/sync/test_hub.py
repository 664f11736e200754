"""The hub on SQLite and PostgreSQL: enrolment, refusals of bad requests, exactly-once
ingest, metrics."""

from __future__ import annotations

import json
import re
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from ledger.sales import post_sale
from sync import signing
from sync.errors import HubRefused
from sync.hub.schema import entries
from sync.hub.service import Hub
from tests.conftest import sale


def _signed(http: TestClient, terminal: str, secret: str, payload: dict, **override: str):  # type: ignore[no-untyped-def]
    body = json.dumps(payload).encode()
    headers = signing.signed_headers(terminal, secret, "POST", "/v1/sync", body)
    headers.update(override)
    return http.post("/v1/sync", content=body, headers=headers), headers, body


def test_enrolment_codes_are_one_time(hub: Hub, hub_http: TestClient) -> None:
    code = hub.new_enrolment_code("S1")
    first = hub_http.post("/v1/enroll", json={"code": code, "terminal": "T9"})
    assert first.status_code == 200 and len(first.json()["secret"]) >= 32
    again = hub_http.post("/v1/enroll", json={"code": code, "terminal": "T10"})
    assert again.status_code == 403 and again.json()["code"] == "bad_enrolment_code"
    taken = hub_http.post("/v1/enroll", json={"code": hub.new_enrolment_code("S1"), "terminal": "T9"})
    assert taken.status_code == 409 and taken.json()["code"] == "terminal_exists"


def test_forged_replayed_stale_unsigned_and_revoked_requests_are_refused(hub: Hub, hub_http: TestClient) -> None:
    secret = hub_http.post("/v1/enroll", json={"code": hub.new_enrolment_code("S1"), "terminal": "T1"}).json()["secret"]
    ok, headers, body = _signed(hub_http, "T1", secret, {"entries": []})
    assert ok.status_code == 200
    replay = hub_http.post("/v1/sync", content=body, headers=headers)
    assert replay.status_code == 401 and replay.json()["code"] == "replayed"
    forged, _, _ = _signed(hub_http, "T1", "not-the-secret-at-all", {"entries": []})
    assert forged.status_code == 401 and forged.json()["code"] == "bad_signature"
    stale_headers = signing.signed_headers("T1", secret, "POST", "/v1/sync", body, now=time.time() - 360)
    stale = hub_http.post("/v1/sync", content=body, headers=stale_headers)
    assert stale.status_code == 401 and stale.json()["code"] == "stale"
    unsigned = hub_http.post("/v1/sync", content=body)
    assert unsigned.status_code == 401 and unsigned.json()["code"] == "unsigned"
    tampered, _, _ = _signed(hub_http, "T1", secret, {"entries": []})
    hub.revoke("T1")
    revoked, _, _ = _signed(hub_http, "T1", secret, {"entries": []})
    assert revoked.status_code == 403 and revoked.json()["code"] == "revoked"
    metrics = hub_http.get("/metrics").text
    for reason in ("replayed", "bad_signature", "stale", "unsigned", "revoked"):
        assert f'loyalty_hub_refused_requests_total{{reason="{reason}"}} 1' in metrics


def test_a_resent_batch_is_acknowledged_and_stored_once(hub: Hub, terminals) -> None:  # type: ignore[no-untyped-def]
    a = terminals("TA")
    m = a.ledger.enrol_member(name="Sara", mobile="09120000001", actor="mgr")
    card = a.ledger.issue_card(member_id=m.id, number="6395000000000001", technology="magstripe", actor="mgr")
    for i in range(3):
        post_sale(a.ledger, sale(f"k{i}", card.number, 1_000_000))
    payload, _ = a.client._payload()
    first = a.client._send(payload)
    second = a.client._send(payload)  # the answer was lost; the terminal sends again
    assert first["acked"] == second["acked"] and len(first["acked"]) == len(payload["entries"]) == 4
    with hub.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(entries)).scalar_one() == 4
    assert hub.metrics.ingested == 4
    report = a.client.sync_once()
    assert report.backlog == 0
    status = a.client.status()
    assert status["backlog"] == 0 and status["last_error"] is None and status["last_success_at"]


def test_a_broken_chain_or_a_gap_is_refused(hub: Hub, terminals) -> None:  # type: ignore[no-untyped-def]
    a = terminals("TA")
    a.ledger.enrol_member(name="Sara", mobile="09120000001", actor="mgr")
    payload, _ = a.client._payload()
    payload["entries"][0]["points"] += 1000  # tampered on the way
    with pytest.raises(HubRefused, match="hash chain"):
        a.client._send(payload)
    payload, _ = a.client._payload()
    payload["entries"][0]["seq"] = 5
    with pytest.raises(HubRefused, match="does not follow"):
        a.client._send(payload)


BAD_BODIES = [
    {"cursor": "abc"},
    {"cursor": -1},
    {"directory_rev": 1.5},
    {"entries": "nope"},
    {"entries": [1, 2]},
    {"entries": [{"id": "x"}]},
    {"members": [{"id": "m"}]},
    {"cards": [{"number": ["a"], "member_id": 1, "technology": "x", "status": "active", "replaced_by": None,
                "issued_at": "t", "issued_by": "u", "status_changed_at": None, "status_reason": None}]},
    {"members": [{"id": "m" * 400, "name": "n", "mobile": "0" * 50, "birth_date": None, "referrer_id": None,
                  "tier": "bronze", "segment": None, "enrolled_at": "t", "enrolled_by": "u", "store_code": "S"}]},    # a number where text is expected (text columns have a length limit)
    {"members": [{"id": "m1", "name": "n", "mobile": 9123456789, "birth_date": None, "referrer_id": None,
                  "tier": "bronze", "segment": None, "enrolled_at": "t", "enrolled_by": "u", "store_code": "S"}]},
]


def test_malformed_batches_are_refused_with_422_never_500(hub: Hub, hub_http: TestClient) -> None:
    secret = hub_http.post("/v1/enroll", json={"code": hub.new_enrolment_code("S1"), "terminal": "T1"}).json()["secret"]
    for body in BAD_BODIES:
        r, _, _ = _signed(hub_http, "T1", secret, body)
        assert r.status_code in (400, 422), (body, r.status_code, r.text)
        assert r.json()["code"] == "bad_payload"
    unsigned_junk = hub_http.post("/v1/sync", content=b"{oops", headers={"content-type": "application/json"})
    assert unsigned_junk.status_code == 401  # nothing unsigned is even parsed
    signed_junk = hub_http.post("/v1/sync", content=b"{oops", headers=signing.signed_headers(
        "T1", secret, "POST", "/v1/sync", b"{oops"))
    assert signed_junk.status_code == 400 and signed_junk.json()["code"] == "invalid_json"
    assert hub_http.post("/v1/enroll", content=b"[]").status_code == 400


def test_every_answer_of_every_route_and_status_carries_the_hubs_time(hub: Hub, hub_http: TestClient) -> None:
    from sync.hub.app import create_hub_app

    secret = hub_http.post("/v1/enroll", json={"code": hub.new_enrolment_code("S1"), "terminal": "T1"}).json()["secret"]
    answers = [hub_http.get("/v1/health"), hub_http.get("/metrics"), hub_http.get("/v1/openapi.json"),
               hub_http.get("/nowhere"), hub_http.get("/v1/sync"),
               hub_http.post("/v1/enroll", json={"code": "nope", "terminal": "T2"}),
               hub_http.post("/v1/enroll", content=b"{oops"),
               hub_http.post("/v1/enroll", content=b"x" * 10_000),
               hub_http.post("/v1/sync", content=b"{}"),
               _signed(hub_http, "T1", secret, {"cursor": -1})[0],
               _signed(hub_http, "T1", secret, {})[0]]
    assert sorted({r.status_code for r in answers}) == [200, 400, 401, 403, 404, 405, 413, 422]
    hub.sync_body = lambda *a: 1 / 0  # type: ignore[method-assign]  # a bug: the 500 carries it too
    with TestClient(create_hub_app(hub), base_url="http://hub.test", raise_server_exceptions=False) as client:
        answers.append(_signed(client, "T1", secret, {})[0])
    assert answers[-1].status_code == 500 and answers[-1].json()["code"] == "internal_error"
    for r in answers:
        stamp = r.headers.get("x-hub-time", "")
        assert re.fullmatch(r"\d+\.\d{3}", stamp), (r.request.url, r.status_code, r.headers)
        assert abs(float(stamp) - time.time()) < 60
