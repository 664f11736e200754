"""Every ledger operation and every error it promises, on a real SQLite file."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from ledger.errors import (
    CardBlocked,
    CardReplaced,
    DuplicateCard,
    DuplicateGiftCard,
    DuplicateMobile,
    IdempotencyConflict,
    InsufficientGiftBalance,
    InsufficientPoints,
    InvalidMobile,
    RefundExceedsSale,
    UnknownCard,
    UnknownGiftCard,
    UnknownMember,
    UnknownSale,
    ValidationFailed,
)
from ledger.sales import post_sale, quote, refund
from ledger.schema import audit_log, entries, members, sales
from ledger.service import Ledger
from ledger.types import RefundLine, RefundRequest, SaleLine, SaleRequest
from ledger.verify import verify
from tests.conftest import Clock, sale


def counts(ledger: Ledger) -> tuple[int, int, int, int]:
    with ledger.engine.connect() as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (entries, sales, members, audit_log)
        )


def earned_for(ledger: Ledger, card: str, *prices: int) -> int:
    return quote(ledger, card, sale("q", card, *prices).lines).earned_points


# -- members -------------------------------------------------------------------


def test_enrol_normalises_mobile_and_starts_in_the_first_tier(ledger: Ledger) -> None:
    m = ledger.enrol_member(name="  Ali Rezaei ", mobile="+98 935 111 2233", actor="mgr",
                            birth_date=date(1990, 5, 1))
    assert m.mobile == "09351112233"
    assert m.name == "Ali Rezaei"
    assert m.tier == ledger.ruleset.tiers[0].id
    assert m.balance == ledger.balance(m.id)
    assert ledger.find_member("0935 111 2233").id == m.id


def test_duplicate_mobile_is_refused_and_nothing_written(ledger: Ledger, member_card: tuple[str, str]) -> None:
    before = counts(ledger)
    with pytest.raises(DuplicateMobile, match="09123456789"):
        ledger.enrol_member(name="Someone Else", mobile="09123456789", actor="mgr")
    assert counts(ledger) == before


def test_malformed_mobile_is_refused(ledger: Ledger) -> None:
    before = counts(ledger)
    with pytest.raises(InvalidMobile):
        ledger.enrol_member(name="X", mobile="12345", actor="mgr")
    assert counts(ledger) == before


def test_empty_name_and_future_birth_date_are_refused(ledger: Ledger) -> None:
    with pytest.raises(ValidationFailed, match="member name"):
        ledger.enrol_member(name="   ", mobile="09120000001", actor="mgr")
    with pytest.raises(ValidationFailed, match="future"):
        ledger.enrol_member(name="Baby", mobile="09120000001", actor="mgr", birth_date=date(2999, 1, 1))


def test_unknown_member_and_unknown_referrer(ledger: Ledger) -> None:
    with pytest.raises(UnknownMember):
        ledger.member("no-such-id")
    with pytest.raises(UnknownMember, match="09129999999"):
        ledger.enrol_member(name="Referred", mobile="09120000002", actor="mgr", referrer="09129999999")
    with pytest.raises(UnknownMember):
        ledger.issue_card(member_id="no-such-id", number="6395000000000009", technology="magstripe", actor="m")


def test_enrol_and_card_issue_are_audited_with_the_actor(ledger: Ledger, member_card: tuple[str, str]) -> None:
    with ledger.engine.connect() as conn:
        rows = conn.execute(select(audit_log.c.actor, audit_log.c.action)).all()
    assert ("manager1", "member.enrol") in rows
    assert ("manager1", "card.issue") in rows


# -- cards -------------------------------------------------------------------


def test_duplicate_card_number_is_refused(ledger: Ledger, member_card: tuple[str, str]) -> None:
    member_id, card = member_card
    other = ledger.enrol_member(name="Other", mobile="09120000003", actor="mgr")
    before = counts(ledger)
    with pytest.raises(DuplicateCard, match="already issued"):
        ledger.issue_card(member_id=other.id, number=card, technology="magstripe", actor="mgr")
    assert counts(ledger) == before


def test_bad_card_number_and_technology(ledger: Ledger, member_card: tuple[str, str]) -> None:
    member_id, _ = member_card
    with pytest.raises(ValidationFailed, match="card number"):
        ledger.issue_card(member_id=member_id, number="12#34", technology="magstripe", actor="mgr")
    with pytest.raises(ValidationFailed, match="technology"):
        ledger.issue_card(member_id=member_id, number="6395000000000002", technology="floppy", actor="mgr")
    with pytest.raises(UnknownCard):
        ledger.card("6395999999999999")


def test_replacement_card_keeps_account_balance_and_tier(ledger: Ledger, clock: Clock,
                                                         member_card: tuple[str, str]) -> None:
    member_id, old = member_card
    post_sale(ledger, sale("s1", old, 3_000_000))
    before = ledger.member(member_id)
    clock.advance(days=3)
    new = ledger.replace_card(old_number=old, new_number="6395000000000077", actor="mgr", reason="lost")
    assert new.member_id == member_id and new.status == "active"
    after = ledger.member(member_id)
    assert (after.balance, after.tier) == (before.balance, before.tier)
    assert ledger.find_member(new.number).id == member_id
    with pytest.raises(CardReplaced) as err:
        ledger.find_member(old)
    assert "2026-03-04" in str(err.value) and "1404-12-13" in str(err.value)  # Gregorian and Jalali
    assert "0077" in str(err.value)
    with pytest.raises(CardReplaced):
        post_sale(ledger, sale("s2", old, 100_000))
    assert post_sale(ledger, sale("s3", new.number, 1_000_000)).member_id == member_id


def test_blocked_card_is_refused_with_why(ledger: Ledger, member_card: tuple[str, str]) -> None:
    _, card = member_card
    ledger.block_card(number=card, actor="mgr", reason="member called: stolen wallet")
    before = counts(ledger)
    with pytest.raises(CardBlocked, match="reported lost on .*stolen wallet"):
        post_sale(ledger, sale("s1", card, 500_000))
    assert counts(ledger)[:2] == before[:2]


def test_replacing_twice_is_refused(ledger: Ledger, member_card: tuple[str, str]) -> None:
    _, card = member_card
    ledger.replace_card(old_number=card, new_number="6395000000000055", actor="mgr")
    with pytest.raises(CardReplaced):
        ledger.replace_card(old_number=card, new_number="6395000000000066", actor="mgr")


# -- sales -------------------------------------------------------------------


def test_sale_earns_what_the_quote_said_and_balance_is_sum_of_entries(ledger: Ledger,
                                                                       member_card: tuple[str, str]) -> None:
    member_id, card = member_card
    start = ledger.balance(member_id)
    expected = earned_for(ledger, card, 2_000_000, 1_500_000)
    assert expected > 0
    result = post_sale(ledger, sale("s1", card, 2_000_000, 1_500_000))
    assert result.earned_points == expected
    assert result.amount == 3_500_000
    assert result.balance == start + expected == ledger.balance(member_id)
    assert verify(ledger.engine).ok


def test_same_key_same_body_returns_first_result_without_writing(ledger: Ledger,
                                                                 member_card: tuple[str, str]) -> None:
    _, card = member_card
    first = post_sale(ledger, sale("k1", card, 1_000_000))
    before = counts(ledger)
    again = post_sale(ledger, sale("k1", card, 1_000_000))
    assert again.replayed and not first.replayed
    assert again.to_json() == first.to_json()
    assert counts(ledger) == before


def test_same_key_other_body_is_refused(ledger: Ledger, member_card: tuple[str, str]) -> None:
    _, card = member_card
    post_sale(ledger, sale("k1", card, 1_000_000))
    before = counts(ledger)
    with pytest.raises(IdempotencyConflict, match="k1"):
        post_sale(ledger, sale("k1", card, 1_000_001))
    assert counts(ledger) == before


def test_redeeming_more_than_the_balance_is_refused(ledger: Ledger, member_card: tuple[str, str]) -> None:
    member_id, card = member_card
    balance = ledger.balance(member_id)
    before = counts(ledger)
    with pytest.raises(InsufficientPoints, match=f"has {balance} points"):
        post_sale(ledger, sale("k1", card, 9_000_000, redeem=balance + 1))
    assert counts(ledger) == before


def test_redeem_lowers_balance_and_is_capped_by_basket_share(ledger: Ledger, member_card: tuple[str, str]) -> None:
    member_id, card = member_card
    for i in range(5):
        post_sale(ledger, sale(f"earn{i}", card, 20_000_000))
    balance = ledger.balance(member_id)
    plan = quote(ledger, card, sale("q", card, 1_000_000).lines)
    assert 0 < plan.max_redeem_points <= balance
    with pytest.raises(ValidationFailed, match="at most"):
        post_sale(ledger, sale("r0", card, 1_000_000, redeem=plan.max_redeem_points + 1))
    r = post_sale(ledger, sale("r1", card, 1_000_000, redeem=plan.max_redeem_points))
    assert r.redeemed_points == plan.max_redeem_points and r.redeemed_rial > 0
    assert r.balance == balance - r.redeemed_points + r.earned_points == ledger.balance(member_id)


def test_sale_input_errors(ledger: Ledger, member_card: tuple[str, str]) -> None:
    _, card = member_card
    with pytest.raises(ValidationFailed, match="at least one line"):
        SaleRequest(idempotency_key="k", card_number=card, receipt_ref="r", lines=())
    with pytest.raises(ValidationFailed, match="quantity"):
        SaleLine(sku="a", name="b", category="c", quantity=0, unit_price=1)
    with pytest.raises(ValidationFailed, match="whole number"):
        SaleLine(sku="a", name="b", category="c", quantity=1, unit_price=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValidationFailed, match="unit_price"):
        SaleLine(sku="a", name="b", category="c", quantity=1, unit_price=-1)
    with pytest.raises(UnknownCard):
        post_sale(ledger, sale("k", "6395123412341234", 1000))


# -- refunds -------------------------------------------------------------------


def test_full_refund_restores_the_balance_exactly(ledger: Ledger, member_card: tuple[str, str]) -> None:
    member_id, card = member_card
    for i in range(3):
        post_sale(ledger, sale(f"e{i}", card, 10_000_000))
    before = ledger.balance(member_id)
    plan = quote(ledger, card, sale("q", card, 2_000_000, 700_000).lines)
    s = post_sale(ledger, sale("s", card, 2_000_000, 700_000, redeem=plan.max_redeem_points))
    r = refund(ledger, RefundRequest(idempotency_key="rf", sale_id=s.sale_id))
    assert r.amount == 2_700_000
    assert r.reversed_points == s.earned_points and r.returned_points == s.redeemed_points
    assert ledger.balance(member_id) == before == r.balance
    assert verify(ledger.engine).ok


def test_partial_refunds_settle_exactly_in_the_end(ledger: Ledger, member_card: tuple[str, str]) -> None:
    member_id, card = member_card
    before = ledger.balance(member_id)
    s = post_sale(ledger, sale("s", card, 3_330_000, 1_110_000, 2_220_000))
    r1 = refund(ledger, RefundRequest("r1", s.sale_id, (RefundLine(1, 1),)))
    assert r1.amount == 3_330_000 and 0 <= r1.reversed_points <= s.earned_points
    with pytest.raises(RefundExceedsSale, match="only 0 left"):
        refund(ledger, RefundRequest("r2", s.sale_id, (RefundLine(1, 1),)))
    refund(ledger, RefundRequest("r3", s.sale_id, (RefundLine(3, 1),)))
    refund(ledger, RefundRequest("r4", s.sale_id))
    assert ledger.balance(member_id) == before
    with pytest.raises(RefundExceedsSale, match="already fully refunded"):
        refund(ledger, RefundRequest("r5", s.sale_id))


def test_refund_is_idempotent_and_checks_its_input(ledger: Ledger, member_card: tuple[str, str]) -> None:
    _, card = member_card
    s = post_sale(ledger, sale("s", card, 5_000_000))
    a = refund(ledger, RefundRequest("rf", s.sale_id, (RefundLine(1, 1),)))
    b = refund(ledger, RefundRequest("rf", s.sale_id, (RefundLine(1, 1),)))
    assert b.replayed and a.to_json() == b.to_json()
    with pytest.raises(IdempotencyConflict):
        refund(ledger, RefundRequest("rf", s.sale_id))
    with pytest.raises(IdempotencyConflict):
        post_sale(ledger, sale("rf", card, 1))  # a refund's key cannot be reused for a sale
    with pytest.raises(UnknownSale):
        refund(ledger, RefundRequest("x1", "no-such-sale"))
    with pytest.raises(ValidationFailed, match="no line 9"):
        refund(ledger, RefundRequest("x2", s.sale_id, (RefundLine(9, 1),)))


# -- adjustments ---------------------------------------------------------------


def test_adjustment_needs_reason_and_actor_and_is_audited(ledger: Ledger, member_card: tuple[str, str]) -> None:
    member_id, _ = member_card
    start = ledger.balance(member_id)
    assert ledger.adjust(member_id=member_id, points=250, reason="goodwill: late delivery", actor="mgr2") == start + 250
    with pytest.raises(ValidationFailed, match="reason"):
        ledger.adjust(member_id=member_id, points=5, reason=" ", actor="mgr2")
    with pytest.raises(ValidationFailed, match="actor"):
        ledger.adjust(member_id=member_id, points=5, reason="x", actor="")
    with pytest.raises(ValidationFailed, match="below zero"):
        ledger.adjust(member_id=member_id, points=-(start + 251), reason="x", actor="mgr2")
    with pytest.raises(ValidationFailed, match="whole number"):
        ledger.adjust(member_id=member_id, points=1.0, reason="x", actor="mgr2")  # type: ignore[arg-type]
    with ledger.engine.connect() as conn:
        row = conn.execute(select(audit_log).where(audit_log.c.action == "points.adjust")).one()
    assert row.actor == "mgr2" and "late delivery" in row.detail


# -- gift cards ---------------------------------------------------------------


def test_gift_card_issue_load_spend(ledger: Ledger) -> None:
    assert ledger.gift_issue(number="GC1001", amount=1_000_000, actor="mgr") == 1_000_000
    assert ledger.gift_load(number="GC1001", amount=500_000, actor="mgr") == 1_500_000
    assert ledger.gift_spend(number="GC1001", amount=1_200_000, actor="cashier", receipt_ref="R9") == 300_000
    assert ledger.gift_balance("GC1001") == 300_000
    before = counts(ledger)
    with pytest.raises(InsufficientGiftBalance, match="holds 300000 Rial"):
        ledger.gift_spend(number="GC1001", amount=300_001, actor="cashier", receipt_ref="R10")
    with pytest.raises(DuplicateGiftCard):
        ledger.gift_issue(number="GC1001", amount=0, actor="mgr")
    with pytest.raises(UnknownGiftCard):
        ledger.gift_load(number="GC9999", amount=1, actor="mgr")
    with pytest.raises(ValidationFailed):
        ledger.gift_load(number="GC1001", amount=0, actor="mgr")
    assert counts(ledger) == before
    assert verify(ledger.engine).ok
