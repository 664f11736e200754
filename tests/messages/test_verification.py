"""Verification codes: asked for and checked by a till over signed requests (stored
hashed, expiring, tries limited, a bounded number an hour), sent by the worker at
once even at night, confirmed by reply too; a member reaching the hub unconfirmed
when verification is required gets a code and nothing else until confirmed. The
terminal's client answers `offline` clearly, and the agent's manager routes use it."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import select

from ledger.service import Ledger
from ledger.users import add_user
from sync import verification
from sync.client import Credentials, enroll
from sync.hub.app import create_hub_app
from sync.hub.config import HubConfig
from sync.hub.messages.worker import Worker
from sync.hub.schema import verifications
from sync.hub.service import Hub
from terminal_agent.api.app import create_app
from terminal_agent.config import parse_config
from terminal_agent.runtime import Runtime, pin_key
from tests.messages.conftest import Clock, sent_file

MOBILE = "09121112233"


@pytest.fixture
def linked(hub: Hub, make_config: Callable[..., HubConfig], clock: Clock) -> Iterator[tuple[Credentials, Any]]:
    """(a terminal's credentials, the transport to the hub app with the messages config)."""
    hub.clock = clock
    cfg = make_config({"verification": {"ttl_s": 300, "attempts_max": 3, "per_mobile_per_hour": 3}})
    with TestClient(create_hub_app(hub, cfg), base_url="http://hub.test") as http:
        secret = http.post("/v1/enroll", json={"code": hub.new_enrolment_code("S1"), "terminal": "T1"}).json()["secret"]
        yield Credentials("http://hub.test", "T1", "S1", secret), http._transport


def the_code(tmp_path: Path, hub: Hub, cfg: HubConfig, clock: Clock) -> str:
    with Worker(hub.engine, cfg, clock=clock) as worker:
        worker.step()
    (sms,) = [m for m in sent_file(tmp_path) if m["kind"] == "code"][-1:]
    return next(w for w in sms["text"].split() if w.isdigit() and len(w) == 6)


def test_a_code_is_sent_checked_and_confirms_the_mobile(
        hub: Hub, linked: tuple[Credentials, Any], make_config: Callable[..., HubConfig], clock: Clock,
        tmp_path: Path) -> None:
    creds, transport = linked
    cfg = make_config()
    clock.now = clock.now.replace(hour=21, minute=30)  # 01:00 in Tehran: codes go anyway
    started = verification.start(creds, "+98 912 111 2233", transport=transport)
    assert started.status == "sent" and started.mobile == MOBILE and started.verification_id
    code = the_code(tmp_path, hub, cfg, clock)
    with hub.engine.connect() as conn:
        stored = conn.execute(select(verifications.c.code_hash)).scalar_one()
    assert code not in stored and len(stored) == 64  # hashed
    wrong = verification.check(creds, MOBILE, "000000" if code != "000000" else "111111", transport=transport)
    assert (wrong.status, wrong.problem, wrong.attempts_left, wrong.http_status) == ("refused", "wrong_code", 2, 422)
    right = verification.check(creds, MOBILE, code.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")),
                               transport=transport)  # as typed on a Persian keyboard
    assert right.status == "verified" and right.verified
    again = verification.start(creds, MOBILE, transport=transport)
    assert again.status == "verified" and again.verification_id is None


def test_codes_expire_take_few_tries_and_few_are_sent_an_hour(
        hub: Hub, linked: tuple[Credentials, Any], clock: Clock) -> None:
    creds, transport = linked
    assert verification.start(creds, MOBILE, transport=transport).status == "sent"
    clock.advance(seconds=301)
    expired = verification.check(creds, MOBILE, "123456", transport=transport)
    assert (expired.problem, expired.http_status) == ("code_expired", 410)
    verification.start(creds, MOBILE, transport=transport)
    for _ in range(3):
        verification.check(creds, MOBILE, "999999x", transport=transport)
    void = verification.check(creds, MOBILE, "123456", transport=transport)
    assert (void.problem, void.http_status) == ("too_many_attempts", 429)
    verification.start(creds, MOBILE, transport=transport)
    fourth = verification.start(creds, MOBILE, transport=transport)
    assert (fourth.problem, fourth.http_status) == ("too_many_codes", 429)
    assert verification.check(creds, "09120000000", "123456", transport=transport).problem == "no_code"
    bad = verification.start(creds, "12345", transport=transport)
    assert bad.problem == "invalid_mobile"
    forged = verification.start(Credentials(creds.hub_url, "T1", "S1", "not-the-secret"), MOBILE, transport=transport)
    assert forged.problem == "bad_signature" and forged.http_status == 401


def test_offline_is_a_clear_answer() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    creds = Credentials(f"http://127.0.0.1:{port}", "T1", "S1", "x" * 43)
    t0 = time.monotonic()
    answer = verification.start(creds, MOBILE)
    assert answer.status == "offline" and not answer.verified and "stays unverified" in answer.detail
    assert verification.check(creds, MOBILE, "123456").status == "offline"
    assert time.monotonic() - t0 < 2 * verification.VERIFY_TIMEOUT_S


def test_a_member_reaching_the_hub_unconfirmed_gets_a_code_then_the_welcome(
        hub: Hub, terminals: Any, make_config: Callable[..., HubConfig], clock: Clock, tmp_path: Path) -> None:
    cfg = make_config({"verification": {"required": True}, "messages": {"locale": "en"}})
    hub.clock = clock
    a = terminals("TA")
    m = a.ledger.enrol_member(name="Sara", mobile=MOBILE, actor="mgr")
    card = a.ledger.issue_card(member_id=m.id, number="6395000000000001", technology="magstripe", actor="mgr")
    from ledger.sales import post_sale
    from tests.conftest import sale

    post_sale(a.ledger, sale("k1", card.number, 1_000_000))
    a.client.sync_once()
    code = the_code(tmp_path, hub, cfg, clock)
    kinds = [s["kind"] for s in sent_file(tmp_path)]
    assert kinds == ["code"]  # no welcome and no receipt to an unconfirmed number
    from sync.hub.messages.messaging import Messaging

    answer = Messaging(hub.engine, cfg, clock).take_inbound("out", {"from": MOBILE, "message": f" {code} "})
    assert answer["action"] == "verified"
    with Worker(hub.engine, cfg, clock=clock) as worker:
        worker.step()
    assert [s["kind"] for s in sent_file(tmp_path)] == ["code", "welcome"]
    with hub.engine.connect() as conn:
        assert conn.execute(select(verifications.c.terminal)).scalar_one() is None  # sent by the hub itself


@pytest.fixture
def served_hub(hub: Hub, make_config: Callable[..., HubConfig], clock: Clock) -> Iterator[str]:
    """The hub app on a loopback port (uvicorn in a thread)."""
    hub.clock = clock
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_hub_app(hub, make_config()), host="127.0.0.1", port=port,
                                           log_config=None, lifespan="off"))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def _agent(tmp_path: Path, ledger: Ledger, hub_url: str) -> tuple[TestClient, dict[str, str]]:
    cfg = parse_config({"agent": {"data_dir": str(tmp_path / "agent"), "locale": "en"},
                        "sync": {"hub_url": hub_url}}, "test.toml", tmp_path)
    rt = Runtime(config=cfg, ledger=ledger, token="test-token-0123456789abcdef", pin_key=pin_key(cfg))
    add_user(ledger, username="mina", role="manager", pin="654321", actor="test", pin_key=rt.pin_key)
    add_user(ledger, username="reza", role="cashier", pin="1111", actor="test", pin_key=rt.pin_key)
    client = TestClient(create_app(rt), headers={"Authorization": "Bearer test-token-0123456789abcdef"})
    session = client.post("/v1/sessions", json={"username": "mina", "pin": "654321"}).json()["session"]
    return client, {"X-Session": session}


def test_the_agents_manager_routes_start_and_check_a_code(
        hub: Hub, served_hub: str, ledger: Ledger, tmp_path: Path, make_config: Callable[..., HubConfig],
        clock: Clock) -> None:
    client, manager = _agent(tmp_path, ledger, served_hub)
    with client:
        r = client.post("/v1/members/verification", json={"mobile": MOBILE}, headers=manager)
        assert r.status_code == 409 and r.json()["code"] == "not_enrolled"
        enroll(served_hub, hub.new_enrolment_code("S1"), "T-agent", tmp_path / "agent")
        cashier = client.post("/v1/sessions", json={"username": "reza", "pin": "1111"}).json()["session"]
        assert client.post("/v1/members/verification", json={"mobile": MOBILE},
                           headers={"X-Session": cashier}).status_code == 403
        r = client.post("/v1/members/verification", json={"mobile": MOBILE}, headers=manager)
        assert r.status_code == 200 and r.json()["status"] == "sent", r.text
        code = the_code(tmp_path, hub, make_config(), clock)
        wrong = client.post("/v1/members/verification/check", json={"mobile": MOBILE, "code": "12x45"},
                            headers=manager)
        assert wrong.status_code == 422 and wrong.json()["code"] == "wrong_code"
        ok = client.post("/v1/members/verification/check", json={"mobile": MOBILE, "code": code}, headers=manager)
        assert ok.status_code == 200 and ok.json()["verified"] is True


def test_the_agents_route_answers_offline_when_the_hub_does_not(ledger: Ledger, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    (tmp_path / "agent").mkdir()
    (tmp_path / "agent" / "hub.json").write_text(json.dumps({"hub_url": url, "terminal": "T1", "store": "S1",
                                                             "secret": "x" * 43}))
    client, manager = _agent(tmp_path, ledger, url)
    with client:
        r = client.post("/v1/members/verification", json={"mobile": MOBILE}, headers=manager)
    assert r.status_code == 200 and r.json()["status"] == "offline" and r.json()["verified"] is False


def test_webhooks_refuse_what_is_not_a_report(hub: Hub, make_config: Callable[..., HubConfig]) -> None:
    cfg = make_config()
    with TestClient(create_hub_app(hub, cfg)) as http:
        token = "t" * 24
        deep = b"[" * 30_000 + b"]" * 30_000  # under the 64 KB bound, deeper than json reads
        r = http.post(f"/v1/messages/out/inbound?token={token}", content=deep,
                      headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and r.json()["code"] == "invalid_json"
        assert http.post(f"/v1/messages/out/inbound?token={token}", json={"x": 1}).status_code == 422
        big = http.post(f"/v1/messages/out/reports?token={token}", content=b"a=" + b"x" * 70_000)
        assert big.status_code == 413
        assert http.post(f"/v1/messages/out/reports?token={token}", data={"id": "1", "status": "delivered"}) \
            .json() == {"ok": True, "applied": 0}
