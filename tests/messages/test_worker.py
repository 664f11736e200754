"""The worker on SQLite and PostgreSQL against real loopback gateways: a sale synced
through the real hub gives exactly one receipt; retries with backoff; bounded tries;
quiet hours, opt-out and the daily limit hold; delivery reports and replies by webhook."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select

from ledger.sales import post_sale
from ledger.timefmt import format_utc, parse_utc
from sync.hub.app import create_hub_app
from sync.hub.config import HubConfig
from sync.hub.messages import queue
from sync.hub.messages.messaging import Messaging
from sync.hub.messages.triggers import Planned
from sync.hub.messages.worker import Worker
from sync.hub.schema import message_events, messages
from sync.hub.service import Hub
from tests.conftest import sale
from tests.messages.conftest import Clock, gateway_section, sent_file
from tests.messages.fakegateway import Fake

MOBILE = "09120000001"


def drain(worker: Worker, rounds: int = 20) -> None:
    for _ in range(rounds):
        if worker.step() == 0:
            return
    raise AssertionError("the worker never went idle")


def rows(hub: Hub, **where: Any) -> list[Any]:
    query = select(messages).order_by(messages.c.id)
    for k, v in where.items():
        query = query.where(messages.c[k] == v)
    with hub.engine.connect() as conn:
        return list(conn.execute(query).all())


def put(hub: Hub, cfg: HubConfig, at: datetime, kind: str = "campaign", key: str = "k1", mobile: str = MOBILE,
        store: str | None = None) -> int:
    """A message queued as a trigger would, about something that happened `at`."""
    template = "campaign" if kind == "campaign" else kind
    values = {"name": "Sara", "balance": 10, "code": "123456", "minutes": 5, "amount": 1000, "earned": 1}
    with hub.engine.begin() as conn:
        (mid,) = queue.enqueue(conn, cfg, [Planned(key, kind, template, mobile, at, store, None, values)], at)
    return mid


def test_a_sale_synced_through_the_real_hub_gives_exactly_one_receipt(
        hub: Hub, terminals: Any, make_config: Callable[..., HubConfig],
        fake_gateway: Callable[..., tuple[Fake, str]], clock: Clock) -> None:
    fake, url = fake_gateway("kavenegar")
    cfg = make_config({"messages": {"gateway": "kave", "locale": "en", "currency": "rial"},
                       "gateways": {"kave": gateway_section("kavenegar", url)}})
    hub.clock = clock  # the hub's and the worker's clock are one
    a = terminals("TA")
    m = a.ledger.enrol_member(name="Sara", mobile=MOBILE, actor="mgr")
    card = a.ledger.issue_card(member_id=m.id, number="6395000000000001", technology="magstripe", actor="mgr")
    result = post_sale(a.ledger, sale("k1", card.number, 1_000_000))
    payload, _ = a.client._payload()
    a.client._send(payload)
    a.client._send(payload)  # the answer was lost: the same batch again
    a.client.sync_once()
    with Worker(hub.engine, cfg, clock=clock) as worker:
        drain(worker)
        a.client.sync_once()  # nothing new
        drain(worker)
    receipts = [d for d in fake.delivered if "purchase" in d["text"]]
    assert len(receipts) == 1, fake.delivered
    assert receipts[0]["mobile"] == MOBILE
    assert receipts[0]["text"] == (f"Dear Sara, purchase 1,000,000 Rial: +{result.earned_points} points, balance "
                                   f"{result.balance}")
    assert [r.kind for r in rows(hub)] == ["welcome", "receipt"] and all(r.status == "sent" for r in rows(hub))
    with hub.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(message_events)).scalar_one() == 0


def test_the_same_event_twice_and_two_producers_make_one_message(
        hub: Hub, terminals: Any, make_config: Callable[..., HubConfig], clock: Clock, tmp_path: Path) -> None:
    cfg = make_config({"triggers": {"welcome": False}})
    hub.clock = clock  # the hub's and the worker's clock are one
    a = terminals("TA")
    m = a.ledger.enrol_member(name="Sara", mobile=MOBILE, actor="mgr")
    card = a.ledger.issue_card(member_id=m.id, number="6395000000000001", technology="magstripe", actor="mgr")
    post_sale(a.ledger, sale("k1", card.number, 1_000_000, 2_000_000), )
    post_sale(a.ledger, sale("k2", card.number, 500_000, redeem=100))
    a.client.sync_once()
    with hub.engine.begin() as conn:  # as if the sync had written every event twice
        again = [dict(r._mapping) for r in conn.execute(select(message_events))]
        conn.execute(insert(message_events), [{k: v for k, v in r.items() if k != "id"} for r in again])
    with Worker(hub.engine, cfg, clock=clock) as one, Worker(hub.engine, cfg, clock=clock) as two:
        one.producer.produce(clock())
        two.producer.produce(clock())
        drain(one)
        drain(two)
    receipts = rows(hub, kind="receipt")
    assert len(receipts) == 2 and len({r.key for r in receipts}) == 2
    assert len(sent_file(tmp_path)) == 2


def test_a_sale_split_between_batches_waits_for_the_rest(
        hub: Hub, terminals: Any, make_config: Callable[..., HubConfig], clock: Clock, tmp_path: Path) -> None:
    """A batch may end inside a sale: its receipt waits for a later entry of that
    terminal (or receipt_settle_s), so it counts the redemption sent after it."""
    (tmp_path / "t.toml").write_text('[receipt]\nen = "+{earned} -{redeemed}"\n')
    cfg = make_config({"triggers": {"welcome": False}, "worker": {"receipt_settle_s": 60},
                       "messages": {"templates": "t.toml", "locale": "en"}})
    hub.clock = clock
    a = terminals("TA")
    m = a.ledger.enrol_member(name="Sara", mobile=MOBILE, actor="mgr")
    card = a.ledger.issue_card(member_id=m.id, number="6395000000000001", technology="magstripe", actor="mgr")
    a.ledger.adjust(member_id=m.id, points=500, reason="start", actor="mgr")
    a.client.sync_once()
    post_sale(a.ledger, sale("k1", card.number, 3_000_000, redeem=200))  # earn, then redeem
    a.client.batch_size = 1
    payload, end = a.client._payload()
    a.client._apply(a.client._send(payload), end)  # the earn entry alone
    with Worker(hub.engine, cfg, clock=clock) as worker:
        drain(worker)
        assert rows(hub, kind="receipt") == []  # the sale may go on in the next batch
        a.client.sync_once()  # the redemption
        drain(worker)
        assert rows(hub, kind="receipt") == []  # and it may still go on
        a.ledger.adjust(member_id=m.id, points=1, reason="later", actor="mgr")
        a.client.batch_size = 50
        a.client.sync_once()  # a later entry: the sale is whole
        drain(worker)
        (receipt,) = rows(hub, kind="receipt")
        assert receipt.status == "sent" and receipt.body.endswith(" -200")
        post_sale(a.ledger, sale("k2", card.number, 1_000_000))
        a.client.sync_once()
        drain(worker)
        assert len(rows(hub, kind="receipt")) == 1  # ended its batch: waits receipt_settle_s ...
        clock.advance(seconds=61)
        drain(worker)
    assert len(rows(hub, kind="receipt")) == 2  # ... then goes


def test_retries_back_off_honour_retry_after_and_send_once(
        hub: Hub, make_config: Callable[..., HubConfig], fake_gateway: Callable[..., tuple[Fake, str]],
        clock: Clock) -> None:
    fake, url = fake_gateway("kavenegar", retry_after="30", hang_s=2.0)
    fake.script = ["500", "429", "timeout", "malformed"]
    cfg = make_config({"messages": {"gateway": "kave"},
                       "gateways": {"kave": gateway_section("kavenegar", url, timeout_s=0.5)}})
    put(hub, cfg, clock())
    with Worker(hub.engine, cfg, clock=clock) as worker:
        worker.send_due()
        assert rows(hub)[0].status == "queued" and "500" in rows(hub)[0].reason
        clock.advance(seconds=1)
        worker.send_due()  # 429, Retry-After 30
        (r,) = rows(hub)
        assert r.status == "queued" and parse_utc(r.due_at) >= clock() + timedelta(seconds=30)
        clock.advance(seconds=10)
        assert worker.send_due() == 0  # not before Retry-After
        clock.advance(seconds=21)
        worker.send_due()  # a timeout: the message may have been taken
        clock.advance(seconds=1)
        worker.send_due()  # taken, but the answer is cut off
        clock.advance(seconds=1)
        worker.send_due()  # sent again with the same localid: Kavenegar drops the repeat
    (r,) = rows(hub)
    assert (r.status, r.attempts) == ("sent", 5)
    assert len(fake.delivered) == 1 and len(fake.requests) == 5


def test_tries_are_bounded_and_a_refusal_is_final(
        hub: Hub, make_config: Callable[..., HubConfig], fake_gateway: Callable[..., tuple[Fake, str]],
        clock: Clock) -> None:
    fake, url = fake_gateway("smsir", "500")
    cfg = make_config({"messages": {"gateway": "ir"}, "worker": {"attempts_max": 3},
                       "gateways": {"ir": gateway_section("smsir", url)}})
    put(hub, cfg, clock(), key="a")
    with Worker(hub.engine, cfg, clock=clock) as worker:
        for _ in range(5):
            worker.send_due()
            clock.advance(seconds=1)
        (r,) = rows(hub)
        assert (r.status, r.attempts) == ("failed", 3) and r.reason == "3 tries; last: ir: answered 500"
        fake.default = "refuse"
        put(hub, cfg, clock(), key="b")
        worker.send_due()
    refused = rows(hub, key="b")[0]
    assert (refused.status, refused.attempts) == ("failed", 1) and refused.reason.startswith("refused: ir: 0 ")


def test_quiet_hours_hold_until_morning_but_not_codes(
        hub: Hub, make_config: Callable[..., HubConfig], tmp_path: Path) -> None:
    cfg = make_config({"messages": {"max_age_minutes": {"receipt": 180}}})
    night = datetime(2026, 3, 1, 22, 30, tzinfo=timezone.utc) - timedelta(minutes=210)  # 22:30 in Tehran
    clock = Clock(night)
    put(hub, cfg, night, "campaign", "c")
    put(hub, cfg, night, "receipt", "r")
    put(hub, cfg, night, "code", "code:1")
    with Worker(hub.engine, cfg, clock=clock) as worker:
        worker.send_due()
        assert [d["kind"] for d in sent_file(tmp_path)] == ["code"]
        (held,) = rows(hub, key="c")
        assert held.status == "queued" and held.reason == "quiet hours"
        assert held.due_at == format_utc(datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc) - timedelta(minutes=210))
        (receipt,) = rows(hub, key="r")
        assert receipt.status == "suppressed" and "max age" in receipt.reason  # useless by the morning
        clock.advance(hours=9)  # 07:30
        assert worker.send_due() == 0
        clock.advance(minutes=31)
        worker.send_due()
    assert [d["kind"] for d in sent_file(tmp_path)] == ["code", "campaign"]


def test_opt_out_by_kind_and_by_reply_holds_and_codes_still_go(
        hub: Hub, make_config: Callable[..., HubConfig], clock: Clock, tmp_path: Path) -> None:
    cfg = make_config()
    Messaging(hub.engine, cfg).choose(MOBILE, "receipt", "out")
    put(hub, cfg, clock(), "receipt", "r1")
    put(hub, cfg, clock(), "campaign", "c1")
    with TestClient(create_hub_app(hub, cfg)) as http:
        token = "t" * 24
        assert http.post("/v1/messages/out/inbound", json={"from": MOBILE, "message": "stop"}).status_code == 401
        assert http.post("/v1/messages/console/inbound?token=x", json={}).status_code == 404
        other = "09120000002"
        r = http.post(f"/v1/messages/out/inbound?token={token}", data={"from": "+98 912 000 0002", "message": " ۱۱ "})
        assert r.status_code == 200 and r.json()["action"] == "opted out"
    put(hub, cfg, clock(), "campaign", "c2", mobile=other)
    put(hub, cfg, clock(), "code", "code:9", mobile=other)
    with Worker(hub.engine, cfg, clock=clock) as worker:
        drain(worker)
    state = {r.key: (r.status, r.reason) for r in rows(hub)}
    assert state == {"r1": ("suppressed", "opted out"), "c1": ("sent", None), "c2": ("suppressed", "opted out"),
                     "code:9": ("sent", None)}
    Messaging(hub.engine, cfg).choose(other, "all", None)  # --undo
    put(hub, cfg, clock(), "campaign", "c3", mobile=other)
    with Worker(hub.engine, cfg, clock=clock) as worker:
        drain(worker)
    assert rows(hub, key="c3")[0].status == "sent"


def test_the_daily_limit_holds_the_rest_for_tomorrow(
        hub: Hub, make_config: Callable[..., HubConfig], clock: Clock) -> None:
    cfg = make_config({"messages": {"daily_limit": 2}})
    for i in range(3):
        put(hub, cfg, clock(), "campaign", f"c{i}")
    put(hub, cfg, clock(), "code", "code:1")  # codes are not counted, nor held
    with Worker(hub.engine, cfg, clock=clock) as worker:
        drain(worker)
    state = [(r.key, r.status) for r in rows(hub)]
    assert state == [("c0", "sent"), ("c1", "sent"), ("c2", "queued"), ("code:1", "sent")]
    assert rows(hub, key="c2")[0].reason == "daily limit of 2 reached"


def test_delivery_reports_by_webhook_even_before_the_send_is_recorded(
        hub: Hub, make_config: Callable[..., HubConfig], fake_gateway: Callable[..., tuple[Fake, str]],
        clock: Clock) -> None:
    fake, url = fake_gateway("kavenegar")
    token = "w" * 32
    cfg = make_config({"messages": {"gateway": "kave"},
                       "gateways": {"kave": gateway_section("kavenegar", url, webhook_token=token)}})
    put(hub, cfg, clock(), key="a")
    put(hub, cfg, clock(), key="b")
    with Worker(hub.engine, cfg, clock=clock) as worker, TestClient(create_hub_app(hub, cfg)) as http:
        worker.send_due()
        a, b = rows(hub)
        r = http.post("/v1/messages/kave/reports", data={"messageid": a.provider_id, "status": "10"},
                      headers={"X-Webhook-Token": token})
        assert r.status_code == 200 and r.json()["applied"] == 1
        http.get(f"/v1/messages/kave/reports?token={token}&messageid={b.provider_id}&status=11")
        # a report for a message the worker has not recorded yet: kept, applied when it is
        fake.next_id += 100
        early = str(fake.next_id + 1)
        assert http.post(f"/v1/messages/kave/reports?token={token}", json={"messageid": early, "status": 10}) \
            .json()["applied"] == 0
        put(hub, cfg, clock(), key="c")
        worker.send_due()
        assert http.post("/v1/messages/kave/reports?token=wrong", data={}).status_code == 401
    assert [(r.key, r.status) for r in rows(hub)] == [("a", "delivered"), ("b", "undelivered"), ("c", "delivered")]
