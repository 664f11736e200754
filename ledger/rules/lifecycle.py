"""Rules outside a sale: the sign-up bonus, point expiry (first in, first out) and the
tier review. Pure like the engine: the ledger supplies the history, these decide."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from ledger.rules.dates import is_review_day, local_date
from ledger.rules.engine import qualifying_tier
from ledger.rules.model import PlanLine, Ruleset
from ledger.rules.text import en, fa


def signup_bonus(ruleset: Ruleset, at: datetime) -> PlanLine | None:
    points = ruleset.bonuses.signup_points
    if not points:
        return None
    return PlanLine("signup", "bonus", points, f"Welcome: {en(points)} points", f"خوش آمدید: {fa(points)} امتیاز")


def add_months(at: datetime, months: int) -> datetime:
    """The same day `months` later; a day the month lacks falls on its last day."""
    y, m = divmod(at.month - 1 + months, 12)
    year, month = at.year + y, m + 1
    for day in (at.day, 30, 29, 28):
        try:
            return at.replace(year=year, month=month, day=min(at.day, day))
        except ValueError:
            continue
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass(frozen=True)
class Lot:
    """Points credited at one time (earn, bonus, returned redemption, positive adjustment)."""

    at: datetime
    points: int


@dataclass(frozen=True)
class ExpiryOutlook:
    due_now: int  # points to expire now
    upcoming: tuple[tuple[datetime, int], ...]  # (when, points) expiring within the warning window


def expiry_outlook(ruleset: Ruleset, lots: list[Lot], debited: int, at: datetime) -> ExpiryOutlook:
    """Which of a member's points expire, first in, first out.

    `lots` are the credits in time order; `debited` is every point that has left the
    account (redeemed, reversed, expired, negative adjustments), which is taken from
    the oldest lots first. What is left of a lot older than the expiry period is due.
    """
    months = ruleset.expiry.months
    if months == 0:
        return ExpiryOutlook(0, ())
    remaining_debit = max(debited, 0)
    due = 0
    upcoming: list[tuple[datetime, int]] = []
    horizon = at + timedelta(days=ruleset.expiry.warn_days)
    for lot in sorted(lots, key=lambda x: x.at):
        used = min(lot.points, remaining_debit)
        remaining_debit -= used
        left = lot.points - used
        if left <= 0:
            continue
        expires = add_months(lot.at, months)
        if expires <= at:
            due += left
        elif expires <= horizon:
            upcoming.append((expires, left))
    return ExpiryOutlook(due, tuple(upcoming))


def tier_review_due(ruleset: Ruleset, at: datetime, last_review: date | None) -> bool:
    """Whether today is a review day not yet reviewed (downgrades wait for it)."""
    day = local_date(at, ruleset.utc_offset_minutes)
    return is_review_day(day, ruleset.tier_policy.review_days) and last_review != day


def reviewed_tier(ruleset: Ruleset, window_spend: int, window_points: int) -> str:
    """The tier a member's window earns on a review day: up or down."""
    return qualifying_tier(ruleset, window_spend, window_points)
