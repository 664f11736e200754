"""Point expiry (first in, first out) and the tier review, on a real ledger file."""

from __future__ import annotations

from sqlalchemy import select

from ledger.lifecycle import expire_points, expiring_soon, review_tiers
from ledger.sales import post_sale
from ledger.schema import entries
from ledger.service import Ledger
from ledger.verify import verify
from tests.conftest import Clock, sale


def test_points_expire_oldest_first_after_twelve_months(ledger: Ledger, clock: Clock,
                                                        member_card: tuple[str, str]) -> None:
    member_id, card = member_card  # 100 sign-up points on day 0
    clock.advance(days=200)
    post_sale(ledger, sale("s1", card, 3_000_000))  # +300 on day 200
    clock.advance(days=100)
    post_sale(ledger, sale("s2", card, 1_000_000, redeem=150))  # -150 taken from the oldest lot first
    balance = ledger.balance(member_id)
    assert expire_points(ledger, "test") == []  # nothing is a year old yet
    clock.advance(days=50)  # day 350: the sign-up lot (already spent) expires in 15 days
    assert expiring_soon(ledger) == []  # the sign-up points were all redeemed: nothing left to expire
    clock.advance(days=250)  # day 600: the day-200 lot is past 12 months; the day-300 one is not
    done = expire_points(ledger, "test")
    assert done == [(member_id, 250)]  # 300 earned on day 200, 50 of them redeemed on day 300
    assert ledger.balance(member_id) == balance - 250
    assert expire_points(ledger, "test") == []  # a second run expires nothing more
    with ledger.read() as conn:
        row = conn.execute(select(entries).where(entries.c.kind == "expire")).one()
    assert row.points == -250 and row.rule_id == "expiry"
    assert verify(ledger.engine).ok


def test_expiring_soon_lists_members_within_the_warning_window(ledger: Ledger, clock: Clock,
                                                               member_card: tuple[str, str]) -> None:
    member_id, _ = member_card
    clock.advance(days=340)
    soon = expiring_soon(ledger)
    assert [(x.member_id, x.points) for x in soon] == [(member_id, 100)]
    clock.advance(days=30)
    assert expire_points(ledger, "test") == [(member_id, 100)]
    assert ledger.balance(member_id) == 0 and expiring_soon(ledger) == []


def test_tier_review_downgrades_and_records_the_change(ledger: Ledger, clock: Clock,
                                                       member_card: tuple[str, str]) -> None:
    member_id, card = member_card
    result = post_sale(ledger, sale("big", card, 60_000_000))
    assert result.tier == "silver"  # upgraded at once when the threshold was crossed
    assert review_tiers(ledger, "mgr") == []  # still earned
    clock.advance(days=400)
    assert review_tiers(ledger, "mgr") == [(member_id, "silver", "bronze")]
    assert ledger.member(member_id).tier == "bronze"
    with ledger.read() as conn:
        kinds = [r.reason for r in conn.execute(select(entries).where(entries.c.kind == "tier"))]
    assert kinds == ["bronze -> silver", "silver -> bronze"]
    assert verify(ledger.engine).ok
