"""The loyalty table as plain frozen data, and what the engine reads and returns.

Money is integer Rial and points are integers; every rate is an integer (Rial per
point, percent), so the engine never rounds a float.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import NamedTuple


@dataclass(frozen=True)
class Multiplier:
    """Earn multiplier for a category or a SKU, in percent: 0 excludes, 200 doubles."""

    key: str
    percent: int


@dataclass(frozen=True)
class Earn:
    rial_per_point: int
    minimum_purchase: int
    categories: tuple[Multiplier, ...] = ()
    skus: tuple[Multiplier, ...] = ()


@dataclass(frozen=True)
class Tier:
    id: str
    name_en: str
    name_fa: str
    threshold: int  # Rial spent (basis "spend") or points earned (basis "points") in the window
    earn_percent: int  # 100 = the base rate
    discount_percent: int


@dataclass(frozen=True)
class Tiers:
    basis: str  # "spend" or "points"
    window_days: int
    review_days: tuple[tuple[int, int], ...]  # Jalali (month, day) on which downgrades take effect
    levels: tuple[Tier, ...]


@dataclass(frozen=True)
class Season:
    id: str
    name_en: str
    name_fa: str
    start: date  # inclusive, local date
    end: date  # inclusive, local date
    earn_rial_per_point: int
    redeem_rial_per_point: int


@dataclass(frozen=True)
class Redemption:
    rial_per_point: int
    minimum_points: int
    step: int
    max_share_percent: int


@dataclass(frozen=True)
class Bonuses:
    signup_points: int = 0
    birthday_points: int = 0
    birthday_window_days: int = 7
    referral_points: int = 0
    referral_minimum_purchase: int = 0
    streak_points: int = 0
    streak_every: int = 5
    streak_within_days: int = 30


@dataclass(frozen=True)
class Offer:
    """A targeted offer. `kind` is spend_up, come_back or win_back."""

    id: str
    kind: str
    valid_from: date | None
    valid_to: date | None
    max_uses: int  # per member; 0 = unlimited
    tiers: tuple[str, ...]  # empty = every tier
    segments: tuple[str, ...]  # empty = every segment
    credit_percent: int = 0  # spend_up, come_back: credit this share of the purchase, as points
    basket_ratio_percent: int = 0  # spend_up: at least this percent of the member's average basket
    minimum_amount: int = 0  # spend_up: and at least this many Rial
    within_days: int = 0  # come_back
    inactive_days: int = 0  # win_back
    points: int = 0  # win_back
    # whom the offer is for, from the member's own history (0 = no bound)
    min_history_visits: int = 0
    min_average_gap_days: int = 0
    max_average_gap_days: int = 0


@dataclass(frozen=True)
class Caps:
    points_per_sale: int = 0  # 0 = no cap
    points_per_member_per_day: int = 0


@dataclass(frozen=True)
class Expiry:
    months: int = 0  # 0 = points never expire
    warn_days: int = 30


SPENT_POINTS_POLICIES = ("debt", "deduct")


@dataclass(frozen=True)
class Refunds:
    """When a refunded sale's earned points were already spent: "debt" takes the
    balance below zero (later purchases pay it first), "deduct" keeps the balance at
    zero and takes the spent points' value off the cash refunded."""

    spent_points: str = "debt"


@dataclass(frozen=True)
class Ruleset:
    name: str
    utc_offset_minutes: int
    earn: Earn
    tiers: tuple[Tier, ...]
    tier_policy: Tiers
    seasons: tuple[Season, ...]
    redemption: Redemption
    bonuses: Bonuses
    offers: tuple[Offer, ...]
    caps: Caps
    expiry: Expiry
    refunds: Refunds = Refunds()
    hash: str = ""

    def tier(self, tier_id: str) -> Tier:
        for t in self.tiers:
            if t.id == tier_id:
                return t
        return self.tiers[0]  # a tier the table no longer has: treat as the entry tier

    def rank(self, tier_id: str) -> int:
        for i, t in enumerate(self.tiers):
            if t.id == tier_id:
                return i
        return 0


@dataclass(frozen=True)
class MemberSnapshot:
    """What the engine knows of a member: their state and history aggregates, all
    read from the ledger before the sale. Times are aware UTC datetimes."""

    member_id: str
    tier: str
    balance: int
    segment: str | None = None
    birth_date: date | None = None
    has_referrer: bool = False
    purchase_count: int = 0  # sales before this one
    total_spend: int = 0  # Rial, net of refunds
    first_visit_at: datetime | None = None
    last_visit_at: datetime | None = None
    recent_visits: tuple[datetime, ...] = ()  # visits within the table's look-back
    tier_window_spend: int = 0
    tier_window_points: int = 0
    points_today: int = 0  # earned today (local day), for the daily cap
    rule_uses: tuple[tuple[str, int], ...] = ()  # (rule id, times it awarded this member)
    rule_last_used: tuple[tuple[str, datetime], ...] = ()

    @property
    def average_basket(self) -> int:
        return self.total_spend // self.purchase_count if self.purchase_count else 0

    @property
    def average_gap_days(self) -> int:
        if self.purchase_count < 2 or self.first_visit_at is None or self.last_visit_at is None:
            return 0
        return (self.last_visit_at - self.first_visit_at).days // (self.purchase_count - 1)

    def uses(self, rule_id: str) -> int:
        return dict(self.rule_uses).get(rule_id, 0)

    def last_used(self, rule_id: str) -> datetime | None:
        return dict(self.rule_last_used).get(rule_id)


@dataclass(frozen=True)
class BasketLine:
    sku: str
    name: str
    category: str
    quantity: int
    unit_price: int

    @property
    def total(self) -> int:
        return self.quantity * self.unit_price


@dataclass(frozen=True)
class Basket:
    lines: tuple[BasketLine, ...]
    redeem_points: int = 0

    @property
    def total(self) -> int:
        return sum(line.total for line in self.lines)


class PlanLine(NamedTuple):
    """One rule that fired (a named tuple: plans are built on the till's hot path). kind: earn, bonus, offer, discount (Rial off, no points), cap
    (points withheld, explained; never negative)."""

    rule_id: str
    kind: str
    points: int
    explanation_en: str
    explanation_fa: str
    rial: int = 0


class Suggestion(NamedTuple):
    """An offer the member could still meet: shown to the cashier and on the receipt."""

    rule_id: str
    text_en: str
    text_fa: str


class Plan(NamedTuple):
    lines: tuple[PlanLine, ...]
    total_points: int
    redeem_points: int
    redeem_rial: int
    max_redeem_points: int
    max_redeem_rial: int
    redeem_problem: str | None
    discount_rial: int
    point_value_rial: int
    new_tier: str | None
    referrer_points: int
    referrer_rule_id: str
    suggestions: tuple[Suggestion, ...] = ()
    ruleset_hash: str = ""
