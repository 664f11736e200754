"""Triggers through the real hub: a tier change, a birthday and an expiry warning
(once a day, after the quiet hours), a gift card load to its contact, an offer met;
each trigger off for a store while on for the chain."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from ledger.sales import post_sale
from sync.hub.config import HubConfig
from sync.hub.messages.messaging import Messaging
from sync.hub.messages.worker import Worker
from sync.hub.service import Hub
from tests.conftest import START, sale
from tests.messages.conftest import Clock, sent_file

MOBILE = "09120000001"


def _member(a: Any, **extra: Any) -> tuple[Any, str]:
    m = a.ledger.enrol_member(name="Sara", mobile=MOBILE, actor="mgr", **extra)
    card = a.ledger.issue_card(member_id=m.id, number="6395000000000001", technology="magstripe", actor="mgr")
    return m, card.number


def _kinds(tmp_path: Path) -> list[str]:
    return [s["kind"] for s in sent_file(tmp_path)]


def test_a_tier_change_is_named_as_the_loyalty_table_names_it(
        hub: Hub, terminals: Any, make_config: Callable[..., HubConfig], clock: Clock, tmp_path: Path) -> None:
    cfg = make_config({"messages": {"locale": "en"}, "triggers": {"receipt": "off", "welcome": False}})
    hub.clock = clock
    a = terminals("TA")
    _, card = _member(a)
    post_sale(a.ledger, sale("k1", card, 30_000_000, 30_000_000))  # over 50,000,000 Rial: silver
    a.client.sync_once()
    with Worker(hub.engine, cfg, clock=clock) as worker:
        worker.step()
    (tier,) = sent_file(tmp_path)
    assert tier["kind"] == "tier" and "from Bronze to Silver" in tier["text"]


def test_birthdays_and_expiry_warnings_once_a_day_after_the_quiet_hours(
        hub: Hub, terminals: Any, make_config: Callable[..., HubConfig], tmp_path: Path) -> None:
    cfg = make_config({"messages": {"locale": "en", "calendar": "gregorian"},
                       "triggers": {"receipt": "off", "welcome": False, "expiry_days": 14}})
    a = terminals("TA")
    a.clock.now = START
    _, card = _member(a, birth_date=date(1990, 3, 5))
    post_sale(a.ledger, sale("k1", card, 2_000_000))  # 200 points, expiring 12 months on
    a.client.sync_once()
    night = datetime(2027, 2, 25, 3, 0, tzinfo=timezone.utc)  # 06:30 in Tehran: quiet
    clock = Clock(night)
    with Worker(hub.engine, cfg, clock=clock) as worker:
        worker.step()
        assert _kinds(tmp_path) == []
        clock.advance(hours=2)  # 08:30: the day's jobs run
        worker.step()
        worker.step()  # and not twice
        assert _kinds(tmp_path) == ["expiry"]
        assert "expire by 2027-03-01" in sent_file(tmp_path)[0]["text"]
        clock.advance(days=8)  # 5 March: her birthday; the expiry warning was for that date already
        worker.step()
    assert _kinds(tmp_path) == ["expiry", "birthday"]
    assert sent_file(tmp_path)[1]["text"].startswith("Happy birthday, Sara!")


def test_gift_card_loads_go_to_its_contact_and_a_store_may_turn_a_trigger_off(
        hub: Hub, terminals: Any, make_config: Callable[..., HubConfig], clock: Clock, tmp_path: Path) -> None:
    cfg = make_config({"messages": {"locale": "en", "currency": "rial"}, "triggers": {"welcome": True},
                       "stores": {"S1": {"name": "Tehran One", "triggers": {"welcome": False}}}})
    hub.clock = clock
    a = terminals("TA")
    _member(a)
    Messaging(hub.engine, cfg).gift_contact("7777 0000 1234", "09129998877")
    a.ledger.gift_issue(number="777700001234", amount=500_000, actor="mgr")
    a.ledger.gift_load(number="777700001234", amount=250_000, actor="mgr")
    a.client.sync_once()
    with Worker(hub.engine, cfg, clock=clock) as worker:
        worker.step()
    loads = sent_file(tmp_path)
    assert [s["kind"] for s in loads] == ["gift_load", "gift_load"]  # no welcome: S1 has them off
    assert loads[1]["mobile"] == "09129998877"
    assert loads[1]["text"] == "Gift card *1234: 250,000 Rial loaded.\nBalance: 750,000 Rial\nTehran One"


def test_an_offer_met_in_a_sale_is_told_with_its_own_template(
        hub: Hub, terminals: Any, make_config: Callable[..., HubConfig], tmp_path: Path) -> None:
    (tmp_path / "t.toml").write_text('[offer-win-back]\nkind = "offer"\nen = "{name}: +{points} ({offer})"\n')
    cfg = make_config({"messages": {"locale": "en", "templates": "t.toml"},
                       "triggers": {"receipt": "off", "welcome": False, "offer": True}})  # the table's offers
    a = terminals("TA")
    _, card = _member(a)  # (its sign-up bonus is no sale's: no offer message)
    post_sale(a.ledger, sale("k1", card, 2_000_000))
    a.clock.advance(days=130)  # away 120 days and more: the built-in table's win-back offer
    post_sale(a.ledger, sale("k2", card, 2_000_000))
    clock = Clock(a.clock.now + timedelta(minutes=5))
    hub.clock = clock
    a.client.sync_once()
    with Worker(hub.engine, cfg, clock=clock) as worker:
        worker.step()
    assert [(s["kind"], s["text"]) for s in sent_file(tmp_path)] == [("offer", "Sara: +300 (win-back)\nStop: 11")]
