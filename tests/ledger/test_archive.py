"""A terminal's ledger stays bounded (ledger.archive): what the hub acknowledged and
the retention no longer needs is folded into sums and deleted, and nothing a member,
a cashier or `ledger verify` sees changes for it.

The hub's acknowledgement is `ledger.hubsync.acknowledged`, the call sync.client makes
with the hub's answer; the histories are real ledger files written sale by sale.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import hubsync, lifecycle
from ledger.archive import KEY_RETENTION_DAYS, RETENTION_DAYS_MIN, archived_sale, retention_in_force
from ledger.backup import backup_now, restore
from ledger.db import Raw, create_ledger_engine
from ledger.errors import IdempotencyConflict, SaleArchived, ValidationFailed
from ledger.history import sales_by_receipt
from ledger.rules import default_ruleset
from ledger.sales import post_sale, quote, refund, sale_result
from ledger.service import Ledger
from ledger.snapshots import snapshot_from_db
from ledger.types import RefundLine, RefundRequest, SaleLine, SaleRequest
from ledger.verify import verify
from tests.conftest import Clock, sale

ROOT = Path(__file__).resolve().parents[2]
RETENTION = 400
DAYS = 700
NOW = datetime.now(timezone.utc).replace(hour=9, minute=0, second=0, microsecond=0)
START = NOW - timedelta(days=DAYS)
CARDS = {"regular": "6395000000000001", "seldom": "6395000000000002", "big": "6395000000000003",
         "referred": "6395000000000004"}
GIFT = "7000000000000001"


def day(n: int) -> datetime:
    return START + timedelta(days=n)


def ack_all(led: Ledger) -> None:
    """The hub took everything in the outbox (what sync.client does with its answer)."""
    with led.write("the hub's acknowledgement") as conn:
        raw = Raw(conn)
        end = raw.scalar("SELECT max(id) FROM outbox")
        if end is not None:
            hubsync.acknowledged(raw, raw.column("SELECT entry_id FROM outbox WHERE entry_id IS NOT NULL"), end)


def sql(led: Ledger, query: str, params: tuple[Any, ...] = ()) -> Any:
    with led.read() as conn:
        return Raw(conn).scalar(query, params)


def balances(led: Ledger) -> dict[str, int]:
    with led.read() as conn:
        rows = Raw(conn).all("SELECT member_id, points FROM balances ORDER BY member_id")
        gifts = Raw(conn).all("SELECT number, balance FROM gift_cards ORDER BY number")
    return {**dict(rows), **{f"gift {n}": b for n, b in gifts}}


def enrol(led: Ledger, name: str, mobile: str, card: str, referrer: str | None = None,
          born: date | None = None) -> str:
    m = led.enrol_member(name=name, mobile=mobile, actor="manager1", referrer=referrer, birth_date=born)
    led.issue_card(member_id=m.id, number=card, technology="magstripe", actor="manager1")
    return m.id


@dataclass(frozen=True)
class History:
    path: Path
    members: dict[str, str]
    old_sale: tuple[str, SaleRequest]  # a sale of day 4 (archived at NOW), partly refunded on day 6
    refunded_late: str  # a sale of day 60 refunded on day 380: kept whole until the refund is old too


def _build(path: Path) -> History:
    clock = Clock(START)
    led = Ledger.open(path, store="S1", terminal="T1", clock=clock)
    members = {"regular": enrol(led, "Regular Buyer", "09120000001", CARDS["regular"]),
               "seldom": enrol(led, "Seldom Buyer", "09120000002", CARDS["seldom"]),
               "big": enrol(led, "Big Spender", "09120000003", CARDS["big"])}
    members["referred"] = enrol(led, "Referred Friend", "09120000004", CARDS["referred"], referrer=CARDS["regular"])
    led.gift_issue(number=GIFT, amount=5_000_000, actor="manager1")
    old_sale: tuple[str, SaleRequest] | None = None
    refunded_late = ""
    previous = ""
    for n in range(DAYS):
        clock.now = day(n)
        if n % 2 == 0:
            redeem = 100 if n % 18 == 0 and led.balance(members["regular"]) >= 100 else 0
            req = sale(f"reg-{n}", CARDS["regular"], 1_200_000, 300_000, redeem=redeem)
            result = post_sale(led, req)
            if n == 4:
                old_sale = (result.sale_id, req)
            if n == 60:
                refunded_late = result.sale_id
            previous = result.sale_id
        if n % 30 == 15:  # the whole of yesterday's sale comes back
            refund(led, RefundRequest(idempotency_key=f"ret-{n}", sale_id=previous, actor="cashier1"))
        if n == 6 and old_sale:
            refund(led, RefundRequest(idempotency_key="ret-old", sale_id=old_sale[0],
                                      lines=(RefundLine(line_no=2, quantity=1),), actor="cashier1"))
        if n == 380:
            refund(led, RefundRequest(idempotency_key="ret-late", sale_id=refunded_late, actor="cashier1"))
        if n in (0, 10, 20, 200):  # away 180 days before day 200: the win-back offer, once
            post_sale(led, sale(f"sel-{n}", CARDS["seldom"], 3_000_000))
        if n in (50, 500):
            post_sale(led, sale(f"big-{n}", CARDS["big"], 60_000_000))
        if n in (30, 400):  # the first earns the referrer a bonus
            post_sale(led, sale(f"ref-{n}", CARDS["referred"], 2_000_000))
        if n == 100:
            led.gift_load(number=GIFT, amount=2_000_000, actor="manager1")
        if n in (150, 600):
            led.gift_spend(number=GIFT, amount=1_000_000, actor="cashier1", receipt_ref=f"G-{n}")
        if n == 120:
            led.adjust(member_id=members["regular"], points=500, reason="complaint settled", actor="manager1")
        if n == 365:
            lifecycle.expire_points(led, "system")
        if n % 7 == 0 and n < DAYS - 3:  # the last days are not at the hub yet
            ack_all(led)
    led.close()
    con = sqlite3.connect(path)  # the whole ledger in the one file, to be copied
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    assert old_sale is not None
    return History(path, members, old_sale, refunded_late)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    return _build(tmp_path_factory.mktemp("history") / "ledger.sqlite3")


def open_copy(history: History, folder: Path, name: str = "ledger.sqlite3") -> tuple[Ledger, Clock]:
    target = folder / name
    shutil.copy(history.path, target)
    clock = Clock(NOW)
    return Ledger.open(target, store="S1", terminal="T1", clock=clock), clock


def baskets() -> list[tuple[SaleLine, ...]]:
    return [(SaleLine(sku="A", name="tea", category="grocery", quantity=1, unit_price=1_200_000),),
            (SaleLine(sku="B", name="rug", category="home", quantity=1, unit_price=30_000_000),
             SaleLine(sku="C", name="cigarettes", category="tobacco", quantity=2, unit_price=400_000))]


def quotes(led: Ledger) -> dict[tuple[str, int], Any]:
    return {(who, i): quote(led, card, lines) for who, card in CARDS.items() for i, lines in enumerate(baskets())}


# -- the archive itself ------------------------------------------------------------------------

def test_archiving_moves_no_balance_and_verify_passes_from_the_checkpoint(history: History,
                                                                          tmp_path: Path) -> None:
    led, _ = open_copy(history, tmp_path)
    before = balances(led)
    entries_before = sql(led, "SELECT count(*) FROM entries")
    head = (sql(led, "SELECT next_seq FROM terminals WHERE code = 'T1'"),
            sql(led, "SELECT last_hash FROM terminals WHERE code = 'T1'"))
    dry = led.archive(NOW, RETENTION, dry_run=True)
    assert sql(led, "SELECT count(*) FROM entries") == entries_before  # a dry run changes nothing
    report = led.archive(NOW, RETENTION, batch=100)
    assert (report.entries, report.sales, report.lines) == (dry.entries, dry.sales, dry.lines)
    assert report.entries > 300 and report.sales > 150 and report.batches > 3
    assert balances(led) == before
    assert sql(led, "SELECT count(*) FROM entries") == entries_before - report.entries
    # the checkpoint is where the kept chain begins, and the head did not move
    cp_seq, cp_hash = sql(led, "SELECT seq FROM checkpoints"), sql(led, "SELECT hash FROM checkpoints")
    assert sql(led, "SELECT min(seq) FROM entries") == cp_seq + 1
    assert sql(led, "SELECT prev_hash FROM entries WHERE seq = ?", (cp_seq + 1,)) == cp_hash
    assert (sql(led, "SELECT next_seq FROM terminals"), sql(led, "SELECT last_hash FROM terminals")) == head
    # of the sales past the retention only one is kept: its refund is not past it yet
    assert sql(led, "SELECT group_concat(id) FROM sales WHERE created_at < ? AND kind = 'sale'",
               (report.cutoff,)) == history.refunded_late
    result = verify(led.engine)
    assert result.ok, result.problems
    # every batch is in the audit log, with what it moved
    with led.read() as conn:
        audited = [json.loads(d) for d in Raw(conn).column(
            "SELECT detail FROM audit_log WHERE action = 'ledger.archive'")]
    assert sum(d.get("entries", 0) for d in audited) == report.entries
    assert sum(d.get("sales", 0) for d in audited) == report.sales
    again = led.archive(NOW, RETENTION)  # nothing more is due
    assert (again.entries, again.sales) == (0, 0)
    led.close()


def test_a_sale_is_archived_only_with_its_refunds(history: History, tmp_path: Path) -> None:
    """A refund is checked against what its sale's earlier refunds returned, so one is
    never kept without the other."""
    led, _ = open_copy(history, tmp_path)
    led.archive(NOW, RETENTION)
    late = history.refunded_late  # sold on day 60 (past the retention), refunded on day 380 (not)
    assert sql(led, "SELECT count(*) FROM sales WHERE id = ? OR original_sale_id = ?", (late, late)) == 2
    old_id = history.old_sale[0]  # sold on day 4, partly refunded on day 6: both archived
    assert sql(led, "SELECT count(*) FROM sales WHERE id = ? OR original_sale_id = ?", (old_id, old_id)) == 0
    assert sql(led, "SELECT count(*) FROM archived_sales WHERE id = ? OR idempotency_key = 'ret-old'",
               (old_id,)) == 2
    assert sql(led, "SELECT count(*) FROM sale_lines WHERE sale_id NOT IN (SELECT id FROM sales)") == 0
    led.close()


@pytest.mark.parametrize(("what", "tamper"), [
    ("the checkpoint's hash", "UPDATE checkpoints SET hash = 'x' || substr(hash, 2)"),
    ("the checkpoint's seq", "UPDATE checkpoints SET seq = seq - 1"),
    ("the first entry kept, deleted", "DELETE FROM entries WHERE seq = (SELECT seq + 1 FROM checkpoints)"),
    ("the last entry, deleted", "DELETE FROM entries WHERE seq = (SELECT max(seq) FROM entries)"),
    ("a member's archived credit and balance, together",
     "UPDATE balances SET archived_credit = archived_credit + 1000, points = points + 1000 "
     "WHERE member_id = (SELECT member_id FROM balances WHERE archived_credit > 0 LIMIT 1)"),
    ("a gift card's archived Rial and balance, together",
     "UPDATE gift_cards SET archived = archived + 5, balance = balance + 5"),
    ("an archived bonus use, forgotten", "UPDATE member_rule_uses SET archived = archived - 1 WHERE archived > 0"),
    ("an archived sale's spend", "UPDATE member_stats SET spend = spend - 1"),
])
def test_verify_after_archival_still_catches_tampering(history: History, tmp_path: Path, what: str,
                                                       tamper: str) -> None:
    led, _ = open_copy(history, tmp_path)
    led.archive(NOW, RETENTION)
    led.close()
    con = sqlite3.connect(tmp_path / "ledger.sqlite3")
    with con:
        assert con.execute(tamper).rowcount > 0
    con.close()
    engine = create_ledger_engine(tmp_path / "ledger.sqlite3", read_only=True)
    result = verify(engine)
    engine.dispose()
    assert not result.ok, f"{what} was not caught"


def test_archiving_refuses_a_broken_chain_and_archives_nothing(history: History, tmp_path: Path) -> None:
    led, _ = open_copy(history, tmp_path)
    with led.write("an edit behind the ledger's back") as conn:
        Raw(conn).run("UPDATE entries SET points = points + 1 WHERE seq = 10")
    with pytest.raises(Exception) as refused:
        led.archive(NOW, RETENTION)
    assert "seq 10" in str(refused.value) and "nothing was archived" in str(refused.value)
    assert sql(led, "SELECT count(*) FROM checkpoints") == 0
    led.close()


# -- rules, expiry and refunds after archival ---------------------------------------------------

def test_the_same_basket_earns_the_same_before_and_after_archival(history: History, tmp_path: Path) -> None:
    led, _ = open_copy(history, tmp_path)
    before = quotes(led)
    report = led.archive(NOW, RETENTION)
    assert report.sales > 0
    assert quotes(led) == before
    # the seldom buyer's win-back offer (max_uses 1, used on day 200) and all their sales
    # are archived; away for 500 days, the offer must still not come back
    seldom = history.members["seldom"]
    assert sql(led, "SELECT count(*) FROM sales WHERE member_id = ?", (seldom,)) == 0
    assert sql(led, "SELECT archived FROM member_rule_uses WHERE member_id = ? AND rule_id = 'win-back'",
               (seldom,)) == 1
    with led.read() as conn:
        member = conn.exec_driver_sql("SELECT id, tier, segment, birth_date, referrer_id FROM members "
                                      "WHERE id = ?", (seldom,)).one()
        snap = snapshot_from_db(conn, member, NOW, led.ruleset)
    assert snap.purchase_count == 4 and snap.uses("win-back") == 1 and snap.last_visit_at.date() == day(200).date()
    assert all(a.rule_id != "win-back" for p in (before[("seldom", 0)], before[("seldom", 1)]) for a in p.awards)
    led.close()


def test_a_real_sale_after_archival_earns_what_it_earns_without_it(history: History, tmp_path: Path) -> None:
    kept, _ = open_copy(history, tmp_path, "kept.sqlite3")
    archived, _ = open_copy(history, tmp_path, "archived.sqlite3")
    archived.archive(NOW, RETENTION)
    for who, card in CARDS.items():
        for i, lines in enumerate(baskets()):
            req = SaleRequest(idempotency_key=f"after-{who}-{i}", card_number=card, receipt_ref=f"A-{who}-{i}",
                              lines=lines)
            a, b = post_sale(kept, req), post_sale(archived, req)
            assert (a.earned_points, a.balance, a.tier, a.awards) == (b.earned_points, b.balance, b.tier, b.awards)
    assert verify(archived.engine).ok
    kept.close()
    archived.close()


def test_points_expire_the_same_after_archival(history: History, tmp_path: Path) -> None:
    kept, _ = open_copy(history, tmp_path, "kept.sqlite3")
    archived, _ = open_copy(history, tmp_path, "archived.sqlite3")
    archived.archive(NOW, RETENTION)
    assert lifecycle.expiring_soon(archived) == lifecycle.expiring_soon(kept)
    expired = lifecycle.expire_points(kept, "system")
    assert expired and lifecycle.expire_points(archived, "system") == expired
    assert balances(archived) == balances(kept)
    kept.close()
    archived.close()


def test_a_refund_of_an_archived_sale_is_refused_for_head_office(history: History, tmp_path: Path) -> None:
    led, _ = open_copy(history, tmp_path)
    led.archive(NOW, RETENTION)
    sale_id, req = history.old_sale
    with pytest.raises(SaleArchived) as refused:
        refund(led, RefundRequest(idempotency_key="late-return", sale_id=sale_id, actor="cashier1"))
    assert refused.value.code == "sale_archived" and "head office" in str(refused.value)
    assert req.receipt_ref in str(refused.value)
    with pytest.raises(SaleArchived):
        sales_by_receipt(led, req.receipt_ref)
    with pytest.raises(SaleArchived):  # a reprint of its slip
        sale_result(led, sale_id)
    # the POS sends the archived sale again with its key: not posted twice
    count = sql(led, "SELECT count(*) FROM sales")
    with pytest.raises(SaleArchived, match="not posted again"):
        post_sale(led, req)
    with pytest.raises(IdempotencyConflict):  # the key with another basket: the usual refusal
        post_sale(led, sale(req.idempotency_key, CARDS["regular"], 999_000))
    assert sql(led, "SELECT count(*) FROM sales") == count
    led.close()
    # the API answers 409 with the code, and the console has its words in both languages
    from terminal_agent.api.problems import status_for
    from terminal_agent.tui.texts import TEXTS

    assert status_for(SaleArchived("x")) == 409
    assert TEXTS["err.sale_archived"]["fa"] and "head office" in TEXTS["err.sale_archived"]["en"]


def test_archived_sales_keys_are_dropped_after_their_own_retention(history: History, tmp_path: Path) -> None:
    led, _ = open_copy(history, tmp_path)
    first = led.archive(NOW, RETENTION)
    assert first.keys_dropped == 0
    later = NOW + timedelta(days=580)  # the keys of the first 150 days are due
    key_cutoff = (later - timedelta(days=RETENTION + KEY_RETENTION_DAYS)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    due = sql(led, "SELECT count(*) FROM archived_sales WHERE created_at < ?", (key_cutoff,))
    assert 0 < due < first.sales
    ack_all(led)
    second = led.archive(later, RETENTION)
    # those, and the sale of day 60 archived in this run with its refund of day 380 (its key
    # is past its own retention already; the refund's is not)
    assert second.keys_dropped == due + 1
    assert sql(led, "SELECT min(created_at) FROM archived_sales") >= key_cutoff
    assert sql(led, "SELECT count(*) FROM sales WHERE created_at < ?",
               ((later - timedelta(days=RETENTION)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),)) == 0
    result = verify(led.engine)
    assert result.ok, result.problems
    led.close()


# -- never what the hub does not hold ------------------------------------------------------------

def test_nothing_the_hub_has_not_acknowledged_is_archived(tmp_path: Path) -> None:
    clock = Clock(START)
    led = Ledger.open(tmp_path / "ledger.sqlite3", store="S1", terminal="T1", clock=clock)
    enrol(led, "Only Member", "09120000009", CARDS["regular"])
    ids: dict[int, str] = {}
    for n in range(0, 500, 10):
        clock.now = day(n)
        ids[n] = post_sale(led, sale(f"k-{n}", CARDS["regular"], 1_500_000)).sale_id
        if n == 90:
            # the hub took the first 100 days, except the sale of day 30 (its entries it took)
            with led.write("the hub's acknowledgement") as conn:
                raw = Raw(conn)
                hubsync.acknowledged(raw, raw.column("SELECT entry_id FROM outbox WHERE entry_id IS NOT NULL"), 0)
                raw.run("DELETE FROM outbox WHERE kind <> 'entry' AND NOT (kind = 'sale' AND ref = ?)", (ids[30],))
    before = balances(led)
    report = led.archive(NOW - timedelta(days=200), RETENTION)  # cutoff: day 100
    assert report.sales == 9  # days 0..90, not day 30
    with led.read() as conn:
        raw = Raw(conn)
        assert raw.scalar("SELECT count(*) FROM outbox o LEFT JOIN entries e ON e.id = o.entry_id "
                          "WHERE o.kind = 'entry' AND e.id IS NULL") == 0
        assert raw.scalar("SELECT count(*) FROM outbox o LEFT JOIN sales s ON s.id = o.ref "
                          "WHERE o.kind = 'sale' AND s.id IS NULL") == 0
        assert raw.scalar("SELECT count(*) FROM sales WHERE created_at >= ?", (day(100).isoformat()[:10],)) == 40
        first_unsent = raw.scalar("SELECT min(e.seq) FROM outbox o JOIN entries e ON e.id = o.entry_id")
        assert raw.scalar("SELECT seq FROM checkpoints") < first_unsent
    assert sql(led, "SELECT count(*) FROM sales WHERE id = ?", (ids[30],)) == 1
    assert balances(led) == before and verify(led.engine).ok
    # later everything reaches the hub: the sale of day 30 goes too, and nothing newer
    ack_all(led)
    again = led.archive(NOW - timedelta(days=200), RETENTION)
    assert again.sales == 1 and sql(led, "SELECT count(*) FROM sales") == 40
    assert verify(led.engine).ok
    led.close()


@pytest.fixture(scope="module")
def unsent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sales, refunds, gift cards and adjustments over 500 days, none of them at the hub yet."""
    path = tmp_path_factory.mktemp("unsent") / "ledger.sqlite3"
    clock = Clock(START)
    led = Ledger.open(path, store="S1", terminal="T1", clock=clock)
    enrol(led, "First Member", "09120000011", CARDS["regular"])
    enrol(led, "Second Member", "09120000012", CARDS["seldom"])
    led.gift_issue(number=GIFT, amount=1_000_000, actor="manager1")
    for n in range(0, 500, 4):
        clock.now = day(n)
        done = post_sale(led, sale(f"u-{n}", CARDS["regular" if n % 8 else "seldom"], 2_500_000))
        if n % 40 == 0:
            refund(led, RefundRequest(idempotency_key=f"ur-{n}", sale_id=done.sale_id, actor="cashier1"))
        if n % 100 == 0:
            led.gift_spend(number=GIFT, amount=10_000, actor="cashier1", receipt_ref=f"UG-{n}")
    led.close()
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return path


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(acked=st.floats(min_value=0.0, max_value=1.0), back=st.integers(min_value=0, max_value=300),
       batch=st.integers(min_value=1, max_value=60))
def test_whatever_the_hub_holds_only_that_is_archived(unsent: Path, tmp_path: Path, acked: float, back: int,
                                                      batch: int) -> None:
    """The hub acknowledges its outbox in order, as far as it got; whatever that is and
    whatever the day, archiving leaves every row not acknowledged, and every row not
    past the retention, where it was, and moves no balance."""
    path = tmp_path / f"ledger-{acked}-{back}-{batch}.sqlite3"
    shutil.copy(unsent, path)
    led = Ledger.open(path, store="S1", terminal="T1", clock=Clock(NOW))
    with led.write("the hub's acknowledgement, as far as it got") as conn:
        raw = Raw(conn)
        ids = raw.column("SELECT id FROM outbox ORDER BY id")
        upto = ids[int(acked * (len(ids) - 1))] if acked > 0 else 0
        hubsync.acknowledged(raw, raw.column("SELECT entry_id FROM outbox WHERE entry_id IS NOT NULL AND id <= ?",
                                             (upto,)), upto)
    at = day(499) + timedelta(days=RETENTION - back)
    cutoff = (at - timedelta(days=RETENTION)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    with led.read() as conn:
        raw = Raw(conn)
        waiting = set(raw.column("SELECT entry_id FROM outbox WHERE kind = 'entry' UNION ALL "
                                 "SELECT ref FROM outbox WHERE kind = 'sale'"))
        recent = set(raw.column("SELECT id FROM entries WHERE created_at >= ? UNION ALL "
                                "SELECT id FROM sales WHERE created_at >= ?", (cutoff, cutoff)))
    before = balances(led)
    led.archive(at, RETENTION, batch=batch)
    with led.read() as conn:
        raw = Raw(conn)
        held = set(raw.column("SELECT id FROM entries UNION ALL SELECT id FROM sales"))
    assert waiting <= held
    assert recent <= held
    assert balances(led) == before
    result = verify(led.engine)
    assert result.ok, result.problems
    led.close()


def test_a_ledger_stays_bounded_through_two_years_of_daily_sales(tmp_path: Path) -> None:
    clock = Clock(START)
    led = Ledger.open(tmp_path / "ledger.sqlite3", store="S1", terminal="T1", clock=clock)
    enrol(led, "Daily Buyer", "09120000008", CARDS["regular"])
    kept: list[tuple[int, int, int]] = []
    for n in range(0, DAYS, 2):
        clock.now = day(n)
        post_sale(led, sale(f"d-{n}", CARDS["regular"], 1_500_000))
        if n % 30 == 0:
            ack_all(led)
            led.archive(day(n), RETENTION)
            kept.append((n, sql(led, "SELECT count(*) FROM sales"), sql(led, "SELECT count(*) FROM entries")))
    posted = len(range(0, DAYS, 2))
    # after the first retention, the sales and entries held stop growing: one sale every
    # second day for the retention and the month between runs, whatever was posted
    late = [(s, e) for n, s, e in kept if n > RETENTION + 30]
    most_sales = (RETENTION + 31) // 2 + 1
    assert len(late) >= 5 and max(s for s, _ in late) <= most_sales
    # a sale makes at most three entries here (earn, the tier's bonus, a streak's)
    assert max(e for _, e in late) <= 3 * most_sales
    assert sql(led, "SELECT next_seq - 1 FROM terminals") > 1.4 * late[-1][1]  # far more were written
    assert sql(led, "SELECT count(*) FROM archived_sales") + sql(led, "SELECT count(*) FROM sales") == posted
    assert verify(led.engine).ok
    led.close()


# -- kill -9, backup and restore ----------------------------------------------------------------

def _state(path: Path) -> dict[str, Any]:
    con = sqlite3.connect(path)
    try:
        one = lambda q: con.execute(q).fetchone()[0]  # noqa: E731
        return {"archived_seq": one("SELECT coalesce(max(seq), 0) FROM checkpoints"),
                "entries": one("SELECT count(*) FROM entries"),
                "sales": one("SELECT count(*) FROM sales"), "archived_sales": one("SELECT count(*) FROM archived_sales"),
                "lines": one("SELECT count(*) FROM sale_lines"),
                "stats": one("SELECT coalesce(sum(sales), 0) FROM member_stats"),
                "balances": con.execute("SELECT member_id, points, archived_credit - archived_debit FROM balances "
                                        "ORDER BY member_id").fetchall()}
    finally:
        con.close()


def test_kill_9_mid_archive_leaves_every_batch_whole_or_not_at_all(history: History, tmp_path: Path) -> None:
    reference, _ = open_copy(history, tmp_path, "reference.sqlite3")
    reference.archive(NOW, RETENTION)
    reference.close()
    done = _state(tmp_path / "reference.sqlite3")
    original = _state(history.path)
    total_entries = original["entries"]
    points = {m: p for m, p, _ in original["balances"]}
    partial = 0
    for attempt, delay in enumerate((0.3, 0.8, 1.3, 0.1, 0.5, 1.0, 1.6, 2.0)):
        path = tmp_path / f"killed-{attempt}.sqlite3"
        shutil.copy(history.path, path)
        proc = subprocess.Popen([sys.executable, "-m", "tests.ledger.archiver", str(path), NOW.isoformat(),
                                 str(RETENTION), "5"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "start"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
        state = _state(path)
        # whatever the moment: each row is either kept or archived, balances never moved
        assert state["entries"] + state["archived_seq"] == total_entries
        assert state["sales"] + state["archived_sales"] == original["sales"]
        assert {m: p for m, p, _ in state["balances"]} == points
        led = Ledger.open(path, store="S1", terminal="T1", clock=Clock(NOW))
        result = verify(led.engine)
        assert result.ok, result.problems
        if 0 < state["archived_seq"] < done["archived_seq"] or 0 < state["archived_sales"] < done["archived_sales"]:
            partial += 1
        led.archive(NOW, RETENTION)  # the next run finishes the work
        led.close()
        assert {k: v for k, v in _state(path).items()} == done
        if partial >= 2:
            break
    assert partial, "no kill landed in the middle of an archive run"


def test_an_archived_ledger_backs_up_and_restores_whole(history: History, tmp_path: Path) -> None:
    led, clock = open_copy(history, tmp_path)
    led.archive(NOW, RETENTION)
    info = backup_now(tmp_path / "ledger.sqlite3", tmp_path / "backups", keep=3)  # checks verify on the copy
    led.close()
    restore(info.path, tmp_path / "restored.sqlite3")
    back = Ledger.open(tmp_path / "restored.sqlite3", store="S1", terminal="T1", clock=Clock(NOW))
    assert verify(back.engine).ok
    assert archived_sale(Raw(back.engine.connect()), sale_id=history.old_sale[0]) is not None
    post_sale(back, sale("after-restore", CARDS["big"], 5_000_000))
    result = verify(back.engine)
    assert result.ok, result.problems
    back.close()


# -- the retention -----------------------------------------------------------------------------

def test_the_retention_is_at_least_a_year_and_what_the_table_looks_back_on(tmp_path: Path) -> None:
    from terminal_agent.config import load_config
    from terminal_agent.errors import ConfigError

    cfg = tmp_path / "config.toml"
    cfg.write_text("[ledger]\nretention_days = 200\n")
    with pytest.raises(ConfigError) as bad:
        load_config(cfg)
    assert "ledger.retention_days" in str(bad.value) and str(cfg) in str(bad.value)
    assert str(RETENTION_DAYS_MIN) in str(bad.value)
    ruleset = default_ruleset()
    assert retention_in_force(ruleset, 400) == 400
    longer = dataclasses.replace(ruleset, tier_policy=dataclasses.replace(ruleset.tier_policy, window_days=730))
    assert retention_in_force(longer, 400) == 730
    with pytest.raises(ValidationFailed):
        retention_in_force(ruleset, 30)


def test_loyalty_agent_ledger_archive_counts_then_archives(history: History, tmp_path: Path) -> None:
    from terminal_agent.cli import cli

    shutil.copy(history.path, tmp_path / "ledger.sqlite3")
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[agent]\ndata_dir = "{tmp_path / "data"}"\nstore = "S1"\nterminal = "T1"\n'
                   f'[ledger]\npath = "{tmp_path / "ledger.sqlite3"}"\nretention_days = {RETENTION}\n')
    runner = CliRunner()
    dry = runner.invoke(cli, ["--config", str(cfg), "ledger", "archive", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would archive" in dry.output and " 0 entries" not in dry.output
    assert _state(tmp_path / "ledger.sqlite3")["archived_seq"] == 0
    run = runner.invoke(cli, ["--config", str(cfg), "ledger", "archive", "--actor", "manager1"])
    assert run.exit_code == 0, run.output
    assert "archived" in run.output and "terminal T1: archived up to seq" in run.output
    state = _state(tmp_path / "ledger.sqlite3")
    assert state["archived_seq"] > 0
    con = sqlite3.connect(tmp_path / "ledger.sqlite3")
    assert con.execute("SELECT count(*) FROM audit_log WHERE action = 'ledger.archive' AND actor = 'manager1'"
                       ).fetchone()[0] > 0
    con.close()
    check = runner.invoke(cli, ["--config", str(cfg), "ledger", "verify"])
    assert check.exit_code == 0, check.output
    assert f"and {state['archived_seq']} archived" in check.output


def test_the_daemon_archives_off_the_sale_path_and_says_so_in_its_status(history: History,
                                                                         tmp_path: Path) -> None:
    from terminal_agent.config import AgentConfig
    from terminal_agent.daemon import _archive_loop

    led, _ = open_copy(history, tmp_path)
    rt = SimpleNamespace(config=AgentConfig(), ledger=led, status_sources={})

    async def run() -> dict[str, Any]:
        stop = asyncio.Event()
        task = asyncio.create_task(_archive_loop(rt, stop, first_delay_s=0.01, interval_s=3600))  # type: ignore[arg-type]
        for _ in range(600):
            status = rt.status_sources["archive"]() if "archive" in rt.status_sources else {}
            if status.get("last_archive") or status.get("last_error"):
                break
            await asyncio.sleep(0.05)
        stop.set()
        await task
        return status

    status = asyncio.run(run())
    assert status["last_error"] is None and status["last_archive"]["entries"] > 0
    assert sql(led, "SELECT seq FROM checkpoints") > 0
    led.close()
