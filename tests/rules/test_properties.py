"""Properties of the evaluation over random members, baskets and instants."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.rules import Basket, BasketLine, MemberSnapshot, default_ruleset, evaluate

RULES = default_ruleset()
START = datetime(2025, 1, 1, tzinfo=timezone.utc)

instants = st.integers(0, 3 * 365 * 24 * 60).map(lambda m: START + timedelta(minutes=m))
lines = st.builds(
    BasketLine,
    sku=st.sampled_from(["a", "b", "c"]),
    name=st.just("item"),
    category=st.sampled_from(["grocery", "tobacco", "dairy"]),
    quantity=st.integers(1, 20),
    unit_price=st.integers(0, 20_000_000),
)


@st.composite
def members(draw: st.DrawFn) -> MemberSnapshot:
    at = draw(instants)
    count = draw(st.integers(0, 50))
    first = at - timedelta(days=draw(st.integers(0, 900))) if count else None
    last = (first + timedelta(days=draw(st.integers(0, (at - first).days)))) if first else None
    return MemberSnapshot(
        member_id="m", tier=draw(st.sampled_from([t.id for t in RULES.tiers])),
        balance=draw(st.integers(0, 10**7)), segment=draw(st.sampled_from([None, "vip"])),
        birth_date=draw(st.none() | st.dates(date(1940, 1, 1), date(2010, 12, 31))),
        has_referrer=draw(st.booleans()), purchase_count=count,
        total_spend=draw(st.integers(0, 10**10)) if count else 0,
        first_visit_at=first, last_visit_at=last,
        recent_visits=tuple(at - timedelta(days=d) for d in draw(st.lists(st.integers(0, 40), max_size=8))),
        tier_window_spend=draw(st.integers(0, 10**9)), tier_window_points=draw(st.integers(0, 10**6)),
        points_today=draw(st.integers(0, 50_000)),
        rule_uses=tuple((r, draw(st.integers(0, 2))) for r in ("spend-up", "come-back", "win-back")),
    )


@settings(max_examples=300, deadline=None)
@given(members(), st.lists(lines, min_size=1, max_size=8), lines, instants)
def test_a_larger_basket_never_earns_fewer_points(snap: MemberSnapshot, base: list[BasketLine],
                                                   extra: BasketLine, at: datetime) -> None:
    small = evaluate(RULES, snap, Basket(tuple(base)), at)
    large = evaluate(RULES, snap, Basket(tuple(base) + (extra,)), at)
    assert large.total_points >= small.total_points


@settings(max_examples=300, deadline=None)
@given(members(), st.lists(lines, min_size=1, max_size=8), st.integers(0, 10**6), instants)
def test_no_award_is_negative_and_redemption_stays_within_balance_and_share(
        snap: MemberSnapshot, items: list[BasketLine], redeem: int, at: datetime) -> None:
    basket = Basket(tuple(items), redeem_points=redeem)
    plan = evaluate(RULES, snap, basket, at)
    assert all(x.points >= 0 and x.rial >= 0 for x in plan.lines)
    assert plan.referrer_points >= 0 and plan.discount_rial >= 0
    assert plan.redeem_points <= snap.balance and plan.max_redeem_points <= snap.balance
    assert plan.redeem_rial <= basket.total * RULES.redemption.max_share_percent // 100
    assert plan.max_redeem_rial <= basket.total * RULES.redemption.max_share_percent // 100
    assert (plan.redeem_problem is None) == (redeem == 0 or plan.redeem_points == redeem)
    assert plan.total_points == sum(x.points for x in plan.lines)


@settings(max_examples=100, deadline=None)
@given(members(), st.lists(lines, min_size=1, max_size=8), instants)
def test_the_same_inputs_always_give_the_same_plan(snap: MemberSnapshot, items: list[BasketLine],
                                                    at: datetime) -> None:
    basket = Basket(tuple(items))
    assert evaluate(RULES, snap, basket, at) == evaluate(RULES, snap, basket, at)
    assert evaluate(RULES, snap, basket, at).ruleset_hash == RULES.hash
