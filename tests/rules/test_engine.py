"""Table-driven examples: each kind of rule with the points it must give."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from ledger.rules import Basket, BasketLine, MemberSnapshot, evaluate
from tests.rules.tables import table

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=timezone.utc)  # 1405-03-11, outside the default seasons


def basket(*lines: tuple[str, int], redeem: int = 0) -> Basket:
    """Lines as (category, price); the SKU is the category with a number."""
    return Basket(tuple(BasketLine(f"{c}-{i}", f"item {i}", c, 1, p) for i, (c, p) in enumerate(lines)),
                  redeem_points=redeem)


def member(**kw: object) -> MemberSnapshot:
    base: dict[str, object] = {"member_id": "m1", "tier": "bronze", "balance": 0}
    base.update(kw)
    return MemberSnapshot(**base)  # type: ignore[arg-type]


def points(plan: object, rule_id: str) -> int:
    return sum(x.points for x in plan.lines if x.rule_id == rule_id)  # type: ignore[attr-defined]


BASE_EARN = [
    # (case, basket lines, expected base points)
    ("one point per 10,000 Rial, rounded down", [("grocery", 129_999)], 12),
    ("under the minimum purchase earns nothing", [("grocery", 99_999)], 0),
    ("exactly the minimum earns", [("grocery", 100_000)], 10),
    ("lines add up before rounding", [("grocery", 55_000), ("grocery", 55_000)], 11),
]


@pytest.mark.parametrize("case,lines,expected", BASE_EARN, ids=[c[0] for c in BASE_EARN])
def test_base_earning(case: str, lines: list[tuple[str, int]], expected: int) -> None:
    plan = evaluate(table(), member(), basket(*lines), NOW)
    assert points(plan, "earn") == expected == plan.total_points


MULTIPLIERS = [
    ("tobacco earns nothing", [("tobacco", 1_000_000), ("grocery", 1_000_000)], 100),
    ("dairy earns double", [("dairy", 1_000_000)], 200),
    ("a SKU multiplier beats its category's", [("dairy", 1_000_000), ("promo", 1_000_000)], 200 + 300),
]


@pytest.mark.parametrize("case,lines,expected", MULTIPLIERS, ids=[c[0] for c in MULTIPLIERS])
def test_category_and_sku_multipliers(case: str, lines: list[tuple[str, int]], expected: int) -> None:
    rules = table(earn={"categories": [{"category": "tobacco", "multiplier_percent": 0},
                                       {"category": "dairy", "multiplier_percent": 200},
                                       {"category": "promo", "multiplier_percent": 50}],
                        "skus": [{"sku": "promo-1", "multiplier_percent": 300}]})
    plan = evaluate(rules, member(), basket(*lines), NOW)
    assert plan.total_points == expected
    if "tobacco" in case:
        assert "tobacco earns nothing" in plan.lines[0].explanation_en
        assert "امتیازی ندارد" in plan.lines[0].explanation_fa


def test_tier_multiplier_and_discount() -> None:
    plan = evaluate(table(), member(tier="gold"), basket(("grocery", 1_000_000)), NOW)
    assert points(plan, "earn") == 100 and points(plan, "tier:gold") == 50
    assert plan.discount_rial == 50_000
    assert "Gold tier earns 150%" in " ".join(x.explanation_en for x in plan.lines)


def test_tier_upgrade_at_once_when_the_threshold_is_crossed() -> None:
    rules = table()
    below = evaluate(rules, member(tier_window_spend=49_000_000), basket(("grocery", 999_999)), NOW)
    crossed = evaluate(rules, member(tier_window_spend=49_000_000), basket(("grocery", 1_000_000)), NOW)
    assert below.new_tier is None and crossed.new_tier == "silver"
    # a gold member whose window no longer qualifies keeps gold at the till: downgrades wait
    assert evaluate(rules, member(tier="gold"), basket(("grocery", 1_000_000)), NOW).new_tier is None


def test_tiers_by_points() -> None:
    data_tiers = {"basis": "points", "levels": [
        {"id": "basic", "name_en": "Basic", "name_fa": "پایه", "threshold": 0},
        {"id": "plus", "name_en": "Plus", "name_fa": "پلاس", "threshold": 1_000}]}
    rules = table(tiers=data_tiers)
    plan = evaluate(rules, member(tier="basic", tier_window_points=950), basket(("grocery", 500_000)), NOW)
    assert plan.total_points == 50 and plan.new_tier == "plus"


def test_seasons_change_earn_rate_and_point_value_jalali_and_gregorian() -> None:
    rules = table(seasons=[
        {"id": "nowruz", "from": "1405-01-01", "to": "1405-01-13", "earn_rial_per_point": 5_000,
         "redeem_rial_per_point": 2_000},
        {"id": "summer", "from": "2026-07-01", "to": "2026-07-31", "earn_rial_per_point": 20_000},
    ])
    nowruz = datetime(2026, 3, 25, 9, tzinfo=timezone.utc)  # 1405-01-05
    summer = datetime(2026, 7, 10, 9, tzinfo=timezone.utc)
    rich = member(balance=10_000)
    b = basket(("grocery", 1_000_000), redeem=200)
    assert evaluate(rules, rich, b, nowruz).redeem_rial == 400_000
    assert evaluate(rules, rich, basket(("grocery", 1_000_000)), nowruz).total_points == 200
    assert evaluate(rules, rich, basket(("grocery", 1_000_000)), summer).total_points == 50
    assert evaluate(rules, rich, basket(("grocery", 1_000_000)), NOW).total_points == 100
    # the store's day: 21:00 UTC on 20 March 2026 is already 1 Farvardin 1405 in Tehran
    eve = datetime(2026, 3, 20, 21, 0, tzinfo=timezone.utc)
    assert evaluate(rules, rich, basket(("grocery", 1_000_000)), eve).total_points == 200


def test_birthday_once_a_year_within_the_window() -> None:
    rules = table(bonuses={"birthday_points": 200, "birthday_window_days": 7})
    born = date(1990, 6, 5)
    plan = evaluate(rules, member(birth_date=born), basket(("grocery", 500_000)), NOW)  # 4 days before
    assert points(plan, "birthday") == 200
    used = member(birth_date=born, rule_last_used=(("birthday", NOW - timedelta(days=1)),))
    assert points(evaluate(rules, used, basket(("grocery", 500_000)), NOW), "birthday") == 0
    last_year = member(birth_date=born, rule_last_used=(("birthday", NOW - timedelta(days=360)),))
    assert points(evaluate(rules, last_year, basket(("grocery", 500_000)), NOW), "birthday") == 200
    far = member(birth_date=date(1990, 9, 1))
    assert points(evaluate(rules, far, basket(("grocery", 500_000)), NOW), "birthday") == 0


def test_referral_pays_the_referrer_on_a_first_purchase_that_reaches_the_amount() -> None:
    rules = table(bonuses={"referral_points": 300, "referral_minimum_purchase": 1_000_000})
    assert evaluate(rules, member(has_referrer=True), basket(("grocery", 1_000_000)), NOW).referrer_points == 300
    assert evaluate(rules, member(has_referrer=True), basket(("grocery", 999_999)), NOW).referrer_points == 0
    second = member(has_referrer=True, purchase_count=1)
    assert evaluate(rules, second, basket(("grocery", 5_000_000)), NOW).referrer_points == 0
    assert evaluate(rules, member(), basket(("grocery", 5_000_000)), NOW).referrer_points == 0


def test_every_fifth_visit_within_30_days() -> None:
    rules = table(bonuses={"streak_points": 50, "streak_every": 5, "streak_within_days": 30})
    four = tuple(NOW - timedelta(days=d) for d in (2, 9, 16, 23))
    assert points(evaluate(rules, member(recent_visits=four), basket(("grocery", 500_000)), NOW), "streak") == 50
    stale = tuple(NOW - timedelta(days=d) for d in (2, 9, 16, 31))
    assert points(evaluate(rules, member(recent_visits=stale), basket(("grocery", 500_000)), NOW), "streak") == 0
    rewarded = member(recent_visits=four, rule_last_used=(("streak", NOW - timedelta(days=2)),))
    assert points(evaluate(rules, rewarded, basket(("grocery", 500_000)), NOW), "streak") == 0


def test_win_back_after_inactivity() -> None:
    rules = table(offers=[{"id": "wb", "kind": "win_back", "inactive_days": 120, "points": 300, "max_uses": 1}])
    gone = member(purchase_count=3, last_visit_at=NOW - timedelta(days=121))
    assert points(evaluate(rules, gone, basket(("grocery", 500_000)), NOW), "wb") == 300
    recent = member(purchase_count=3, last_visit_at=NOW - timedelta(days=100))
    assert points(evaluate(rules, recent, basket(("grocery", 500_000)), NOW), "wb") == 0
    used = member(purchase_count=3, last_visit_at=NOW - timedelta(days=200), rule_uses=(("wb", 1),))
    assert points(evaluate(rules, used, basket(("grocery", 500_000)), NOW), "wb") == 0


def test_offer_window_tier_and_segment_filters() -> None:
    offer = {"id": "o", "kind": "spend_up", "minimum_amount": 1_000_000, "credit_percent": 10,
             "valid_from": "1405-03-01", "valid_to": "1405-03-31", "tiers": ["silver"], "segments": ["vip"]}
    rules = table(offers=[offer])
    ok = member(tier="silver", segment="vip")
    assert points(evaluate(rules, ok, basket(("grocery", 1_000_000)), NOW), "o") == 100
    for who in (member(tier="bronze", segment="vip"), member(tier="silver", segment="new")):
        assert points(evaluate(rules, who, basket(("grocery", 1_000_000)), NOW), "o") == 0
    later = NOW + timedelta(days=30)  # 1405-04-10: after the window
    assert points(evaluate(rules, ok, basket(("grocery", 1_000_000)), later), "o") == 0


def test_redemption_rules() -> None:
    rules = table()
    rich = member(balance=100_000)
    b = basket(("grocery", 1_000_000))
    plan = evaluate(rules, rich, Basket(b.lines, redeem_points=0), NOW)
    assert plan.max_redeem_points == 500 and plan.max_redeem_rial == 500_000  # half the basket
    assert evaluate(rules, rich, Basket(b.lines, 90), NOW).redeem_problem.startswith("at least 100 points")
    assert "steps of 10" in evaluate(rules, rich, Basket(b.lines, 105), NOW).redeem_problem
    assert "at most 500" in evaluate(rules, rich, Basket(b.lines, 510), NOW).redeem_problem
    paid = evaluate(rules, rich, Basket(b.lines, 500), NOW)
    assert (paid.redeem_points, paid.redeem_rial, paid.redeem_problem) == (500, 500_000, None)
    assert paid.total_points == 50  # points do not earn points: 500,000 Rial paid in money
    poor = member(balance=95)
    assert evaluate(rules, poor, b, NOW).max_redeem_points == 0  # below the minimum


def test_caps_per_sale_and_per_day_are_explained() -> None:
    rules = table(caps={"points_per_sale": 1_000, "points_per_member_per_day": 1_500})
    plan = evaluate(rules, member(), basket(("grocery", 50_000_000)), NOW)
    assert plan.total_points == 1_000 and points(plan, "earn") == 1_000
    assert any(x.kind == "cap" and "per sale" in x.explanation_en for x in plan.lines)
    late = evaluate(rules, member(points_today=1_200), basket(("grocery", 50_000_000)), NOW)
    assert late.total_points == 300 and any("per day" in x.explanation_en for x in late.lines)


def test_every_line_explains_itself_in_both_languages() -> None:
    from ledger.rules import default_ruleset

    snap = member(tier="silver", birth_date=date(1990, 6, 1), purchase_count=4, total_spend=2_000_000,
                  first_visit_at=NOW - timedelta(days=40), last_visit_at=NOW - timedelta(days=10))
    plan = evaluate(default_ruleset(), snap, basket(("grocery", 3_000_000)), NOW)
    assert len(plan.lines) >= 4
    for line in plan.lines:
        assert line.explanation_en.isascii() and line.explanation_en
        assert any("\u0600" <= ch <= "\u06ff" for ch in line.explanation_fa)


def test_explanations_word_for_word_in_both_languages() -> None:
    """The texts are assembled from parts cached per table and numbers of the sale:
    the whole sentence, its order and its Persian digits are checked here."""
    rules = table(earn={"categories": [{"category": "tobacco", "multiplier_percent": 0},
                                       {"category": "dairy", "multiplier_percent": 200}],
                        "skus": [{"sku": "promo-2", "multiplier_percent": 300}]},
                  offers=[{"id": "up", "kind": "spend_up", "minimum_amount": 1_000_000, "credit_percent": 10}])
    plan = evaluate(rules, member(tier="gold", balance=5_000),
                    basket(("dairy", 1_000_000), ("tobacco", 500_000), ("promo", 2_000_000), redeem=1_000), NOW)
    texts = {x.rule_id: (x.explanation_en, x.explanation_fa) for x in plan.lines}
    assert texts["earn"] == (
        "1 point per 10,000 Rial (category dairy earns 200%; category tobacco earns nothing; SKU promo-2 earns 300%),"
        " 1,000,000 Rial paid with points earns nothing: 571 points",
        "هر ۱۰٬۰۰۰ ریال یک امتیاز (دسته dairy ۲۰۰٪ امتیاز دارد؛ دسته tobacco امتیازی ندارد؛ کالای promo-۲ ۳۰۰٪ امتیاز"
        " دارد)، ۱٬۰۰۰٬۰۰۰ ریال پرداخت با امتیاز امتیازی ندارد: ۵۷۱ امتیاز")
    assert texts["tier:gold"] == ("Gold tier earns 150%: 286 more points", "سطح طلایی: ۱۵۰٪ امتیاز: ۲۸۶ امتیاز بیشتر")
    assert texts["up"] == (
        "Offer up: a purchase of at least 1,000,000 Rial earns 10% credit: 250,000 Rial = 250 points",
        "پیشنهاد up: خرید دست\u200cکم ۱٬۰۰۰٬۰۰۰ ریال، ۱۰٪ اعتبار: ۲۵۰٬۰۰۰ ریال = ۲۵۰ امتیاز")
    assert texts["discount:gold"] == ("Gold tier discount 5%: 125,000 Rial", "تخفیف سطح طلایی ۵٪: ۱۲۵٬۰۰۰ ریال")
    # a basket at the base rate carries no notes
    plain = evaluate(rules, member(), basket(("grocery", 200_000)), NOW)
    assert plain.lines[0].explanation_en == "1 point per 10,000 Rial: 20 points"
    assert plain.lines[0].explanation_fa == "هر ۱۰٬۰۰۰ ریال یک امتیاز: ۲۰ امتیاز"
