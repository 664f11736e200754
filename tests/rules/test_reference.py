"""The reference material's two members and its arithmetic, on the built-in table."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from ledger.rules import Basket, BasketLine, MemberSnapshot, default_ruleset, evaluate
from tests.rules.tables import table

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=timezone.utc)


def history(every_days: int, amount: int, visits: int = 10) -> MemberSnapshot:
    """A member who bought `amount` every `every_days` days; the last visit was one period ago."""
    return MemberSnapshot(member_id="m", tier="bronze", balance=0, purchase_count=visits,
                          total_spend=amount * visits,
                          first_visit_at=NOW - timedelta(days=every_days * visits),
                          last_visit_at=NOW - timedelta(days=every_days))


def one(amount: int) -> Basket:
    return Basket((BasketLine("sku", "goods", "grocery", 1, amount),))


def offer_points(plan: object, offer_id: str) -> int:
    return sum(x.points for x in plan.lines if x.rule_id == offer_id)  # type: ignore[attr-defined]


MEMBER_A = history(10, 500_000)
MEMBER_B = history(45, 5_000_000)


def test_member_a_is_offered_a_bigger_basket_and_gets_it_when_met() -> None:
    rules = default_ruleset()
    usual = evaluate(rules, MEMBER_A, one(500_000), NOW)
    assert [s.text_en for s in usual.suggestions] == ["A purchase of at least 2,000,000 Rial earns 20% credit"]
    assert offer_points(usual, "spend-up") == 0 and offer_points(usual, "come-back") == 0
    met = evaluate(rules, MEMBER_A, one(2_000_000), NOW)
    assert offer_points(met, "spend-up") == 400  # 20% of 2,000,000 = 400,000 Rial at 1,000 Rial a point
    assert next(x.rial for x in met.lines if x.rule_id == "spend-up") == 400_000
    assert evaluate(rules, MEMBER_A, one(1_999_999), NOW).suggestions  # not met: still offered


def test_member_b_is_offered_to_come_back_sooner_and_gets_it_when_met() -> None:
    rules = default_ruleset()
    usual = evaluate(rules, MEMBER_B, one(5_000_000), NOW)
    assert [s.text_en for s in usual.suggestions] == ["Come back within 20 days for 20% credit"]
    assert offer_points(usual, "come-back") == 0 and offer_points(usual, "spend-up") == 0
    back = MemberSnapshot(**{**MEMBER_B.__dict__, "last_visit_at": NOW - timedelta(days=19)})
    assert offer_points(evaluate(rules, back, one(5_000_000), NOW), "come-back") == 1_000
    late = MemberSnapshot(**{**MEMBER_B.__dict__, "last_visit_at": NOW - timedelta(days=21)})
    assert offer_points(evaluate(rules, late, one(5_000_000), NOW), "come-back") == 0


def test_one_offer_does_not_fit_both() -> None:
    rules = default_ruleset()
    a = {s.rule_id for s in evaluate(rules, MEMBER_A, one(500_000), NOW).suggestions}
    b = {s.rule_id for s in evaluate(rules, MEMBER_B, one(5_000_000), NOW).suggestions}
    assert a == {"spend-up"} and b == {"come-back"}


def test_reference_arithmetic_of_credits() -> None:
    ten = table(offers=[{"id": "ten", "kind": "spend_up", "minimum_amount": 1, "credit_percent": 10}],
                redemption={"rial_per_point": 1})
    plan = evaluate(ten, MemberSnapshot("m", "bronze", 0), one(3_000_000), NOW)
    assert next(x.rial for x in plan.lines if x.rule_id == "ten") == 300_000  # of 1,000,000 profit
    seventeen = table(offers=[{"id": "s", "kind": "spend_up", "minimum_amount": 1, "credit_percent": 17}],
                      redemption={"rial_per_point": 1})
    two = Basket((BasketLine("p", "product", "grocery", 2, 3_000_000),))
    plan = evaluate(seventeen, MemberSnapshot("m", "bronze", 0), two, NOW)
    assert next(x.rial for x in plan.lines if x.rule_id == "s") == 1_020_000
    assert offer_points(plan, "s") == 1_020_000
