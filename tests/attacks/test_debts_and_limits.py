"""A member is never locked out, a debt is explicit (invariant 13), a sale is refunded
where it was made, and money has bounds end to end (invariant 12)."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ledger import limits
from ledger.errors import InsufficientPoints, LimitExceeded, RefundElsewhere
from ledger.reports.excel import export
from ledger.rules import default_ruleset
from ledger.rules.model import Refunds
from ledger.sales import post_sale, refund
from ledger.service import Ledger
from ledger.types import RefundRequest, SaleLine, SaleRequest
from ledger.verify import verify
from terminal_agent.receipt import refund_lines, sale_lines
from tests.conftest import Clock, sale


def _spend_all(ledger: Ledger, card: str) -> tuple[str, int]:
    """A sale that earns, then a sale that redeems every point: (earning sale id, points earned)."""
    earned = post_sale(ledger, sale("earn", card, 30_000_000))
    assert earned.earned_points > 100
    redeem = (earned.balance // 10) * 10
    post_sale(ledger, sale("spend", card, 30_000_000, redeem=redeem))
    return earned.sale_id, earned.earned_points


def test_a_member_in_debt_still_buys_and_what_they_earn_pays_the_debt(
        ledger: Ledger, member_card: tuple[str, str]) -> None:
    member_id, card = member_card
    sale_id, _ = _spend_all(ledger, card)
    back = refund(ledger, RefundRequest("r1", sale_id))  # the points it earned were spent
    assert back.balance < 0 and back.debt_points == -back.balance
    assert any("owed" in line for line in refund_lines(back, "en"))
    assert any("بدهی" in line for line in refund_lines(back, "fa"))
    # was: "the member has -N points; cannot redeem 0"
    bought = post_sale(ledger, sale("after", card, 2_000_000))
    assert bought.balance == back.balance + bought.earned_points and bought.debt_points == max(0, -bought.balance)
    assert any("owed" in line for line in sale_lines(bought, "en"))
    with pytest.raises(InsufficientPoints):
        post_sale(ledger, sale("redeem-in-debt", card, 2_000_000, redeem=100))
    assert verify(ledger.engine).ok


def test_under_the_deduct_policy_spent_points_come_off_the_cash_refund(
        ledger_path: Path, clock: Clock, tmp_path: Path) -> None:
    table = dataclasses.replace(default_ruleset(), refunds=Refunds("deduct"))
    led = Ledger.open(ledger_path, store="S1", terminal="T1", clock=clock, ruleset=table)
    try:
        m = led.enrol_member(name="Sara", mobile="09120000001", actor="mgr")
        card = led.issue_card(member_id=m.id, number="6395000000000001", technology="magstripe", actor="mgr").number
        sale_id, earned = _spend_all(led, card)
        before = led.balance(m.id)  # what the spending sale earned: less than the points refunded
        assert 0 <= before < earned
        half = refund(led, RefundRequest("r1", sale_id))
        assert half.balance == 0 and half.debt_points == 0
        assert half.reversed_points == before and half.settled_points == earned - before
        assert half.deducted_rial == half.settled_points * table.redemption.rial_per_point
        assert half.cash_refund_rial == 30_000_000 - half.deducted_rial
        assert any("To pay back" in line for line in refund_lines(half, "en"))
        assert led.balance(m.id) == 0 and verify(led.engine).ok
        # the answer is the same on a retry of the same request
        assert refund(led, RefundRequest("r1", sale_id)).deducted_rial == half.deducted_rial
    finally:
        led.close()


def test_partial_refunds_under_deduct_take_back_each_point_once(ledger_path: Path, clock: Clock) -> None:
    from ledger.types import RefundLine

    table = dataclasses.replace(default_ruleset(), refunds=Refunds("deduct"))
    led = Ledger.open(ledger_path, store="S1", terminal="T1", clock=clock, ruleset=table)
    try:
        m = led.enrol_member(name="Sara", mobile="09120000001", actor="mgr")
        card = led.issue_card(member_id=m.id, number="6395000000000001", technology="magstripe", actor="mgr").number
        earned = post_sale(led, SaleRequest("earn", card, "R1", tuple(
            SaleLine(f"S{i}", "item", "grocery", 1, 10_000_000) for i in range(3))))
        post_sale(led, sale("spend", card, 30_000_000, redeem=(earned.balance // 10) * 10))
        first = refund(led, RefundRequest("r1", earned.sale_id, (RefundLine(1, 1),)))
        led.adjust(member_id=m.id, points=50, reason="goodwill", actor="mgr")
        rest = refund(led, RefundRequest("r2", earned.sale_id))
        taken = first.reversed_points + first.settled_points + rest.reversed_points + rest.settled_points
        assert taken == earned.earned_points
        assert verify(led.engine).ok
    finally:
        led.close()


def test_a_sale_is_refunded_on_the_till_that_made_it(ledger_path: Path, clock: Clock,
                                                     member_card: tuple[str, str], ledger: Ledger) -> None:
    done = post_sale(ledger, sale("s1", member_card[1], 2_000_000))
    ledger.close()
    as_t2 = Ledger.open(ledger_path, store="S1", terminal="T2", clock=clock)
    try:
        with pytest.raises(RefundElsewhere, match="refund it on T1"):
            refund(as_t2, RefundRequest("r1", done.sale_id))
    finally:
        as_t2.close()


def test_an_overflowing_line_is_a_clear_422_not_a_500(client: TestClient, manager_headers: dict[str, str]) -> None:
    member = client.post("/v1/members", json={"name": "Big", "mobile": "09121112233"}, headers=manager_headers).json()
    client.post(f"/v1/members/{member['id']}/cards", json={"number": "6395000000000101"}, headers=manager_headers)
    line = {"sku": "A1", "name": "Gold", "category": "grocery", "quantity": 922_338, "unit_price": 10**13}
    r = client.post("/v1/sales", json={"idempotency_key": "k1", "card_number": "6395000000000101",
                                       "receipt_ref": "R1", "lines": [line]})
    assert r.status_code == 422 and r.json()["code"] == "limit_exceeded", r.text
    assert f"{limits.LINE_TOTAL_RIAL_MAX:,}" in r.json()["detail"]
    many = [{**line, "quantity": 1, "unit_price": limits.LINE_TOTAL_RIAL_MAX}] * 11
    r = client.post("/v1/quote", json={"card_number": "6395000000000101", "lines": many})
    assert r.status_code == 422 and r.json()["code"] == "limit_exceeded"


def test_a_members_lifetime_purchases_and_balance_are_bounded(ledger: Ledger, member_card: tuple[str, str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    member_id, card = member_card
    monkeypatch.setattr(limits, "MEMBER_SPEND_RIAL_MAX", 25_000_000)
    post_sale(ledger, sale("s1", card, 20_000_000))
    with pytest.raises(LimitExceeded, match="over their life"):
        post_sale(ledger, sale("s2", card, 6_000_000))
    monkeypatch.setattr(limits, "BALANCE_POINTS_MAX", ledger.balance(member_id) + 10)
    with pytest.raises(LimitExceeded, match="balance"):
        ledger.adjust(member_id=member_id, points=11, reason="too much", actor="mgr")
    assert ledger.balance(member_id) == limits.BALANCE_POINTS_MAX - 10  # nothing half written
    assert verify(ledger.engine).ok


def test_the_report_adds_the_ledgers_totals_beyond_int64(tmp_path: Path, ledger: Ledger, ledger_path: Path) -> None:
    """Per-member sums are bounded; a ledger's total is not: the export used to fail
    for the whole ledger with SQLite's 'integer overflow'."""
    raw = sqlite3.connect(ledger_path)
    for i in range(100):
        mid = f"m-{i:03d}"
        raw.execute("INSERT INTO members (id, name, mobile, tier, enrolled_at, enrolled_by, store_code) "
                    "VALUES (?, 'M', ?, 'bronze', '2026-03-01T09:00:00.000000Z', 't', 'S1')",
                    (mid, f"0912{i:07d}"))
        raw.execute("INSERT INTO balances (member_id, points) VALUES (?, 0)", (mid,))
        raw.execute("INSERT INTO sales (id, idempotency_key, request_hash, kind, terminal_code, member_id, "
                    "receipt_ref, amount, ruleset_hash, created_at, actor, result_json) VALUES "
                    "(?, ?, 'h', 'sale', 'T1', ?, 'R', ?, 'x', '2026-03-01T09:00:00.000000Z', 't', '{}')",
                    (f"s-{i}", f"k-{i}", mid, limits.MEMBER_SPEND_RIAL_MAX))
    raw.commit()
    raw.close()
    written = export(ledger_path, tmp_path / "r.xlsx", sheets=["kpis"], locale="en")
    assert written["kpis"] > 0
    from openpyxl import load_workbook

    kpis = {r[0]: r[1] for r in load_workbook(tmp_path / "r.xlsx").worksheets[0].iter_rows(values_only=True)}
    assert kpis["Revenue (Rial)"] == 100 * limits.MEMBER_SPEND_RIAL_MAX
