"""Member snapshots for the rules engine: the member's state and history aggregates,
read inside the caller's transaction so the plan and the write agree."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, and_, case, func, or_, select

from ledger.rules import MemberSnapshot, Ruleset
from ledger.rules.dates import local_date
from ledger.schema import balances, entries, sales

RECENT_VISITS_MAX = 1000  # streaks count a few visits; this bounds a pathological history
EARNING_KINDS = ("earn", "bonus")


def local_midnight(at: datetime, offset_minutes: int) -> datetime:
    day = local_date(at, offset_minutes)
    return datetime(day.year, day.month, day.day, tzinfo=at.tzinfo) - timedelta(minutes=offset_minutes)


def signed_spend(since: datetime | None, member_id: str) -> Any:
    signed = case((sales.c.kind == "refund", -sales.c.amount), else_=sales.c.amount)
    query = select(func.coalesce(func.sum(signed), 0)).where(sales.c.member_id == member_id)
    return query if since is None else query.where(sales.c.created_at >= since)


def earned_since(member_id: str, since: datetime) -> Any:
    earning = or_(entries.c.kind.in_(EARNING_KINDS),
                  and_(entries.c.kind == "reverse", entries.c.rule_id == "reverse-earn"))
    return select(func.coalesce(func.sum(entries.c.points), 0)).where(
        entries.c.member_id == member_id, earning, entries.c.created_at >= since)


def snapshot_from_db(conn: Connection, member: Row[Any], at: datetime, ruleset: Ruleset) -> MemberSnapshot:
    mid = member.id
    balance = int(conn.execute(select(balances.c.points).where(balances.c.member_id == mid)).scalar_one())
    visits = conn.execute(
        select(func.count(), func.min(sales.c.created_at), func.max(sales.c.created_at))
        .where(sales.c.member_id == mid, sales.c.kind == "sale")
    ).one()
    lookback = max(ruleset.bonuses.streak_within_days, 1)
    recent = tuple(conn.execute(
        select(sales.c.created_at)
        .where(sales.c.member_id == mid, sales.c.kind == "sale", sales.c.created_at >= at - timedelta(days=lookback))
        .order_by(sales.c.created_at.desc()).limit(RECENT_VISITS_MAX)
    ).scalars())
    window_start = at - timedelta(days=ruleset.tier_policy.window_days)
    uses = conn.execute(
        select(entries.c.rule_id, func.count(), func.max(entries.c.created_at))
        .where(entries.c.member_id == mid, entries.c.kind == "bonus", entries.c.rule_id.is_not(None))
        .group_by(entries.c.rule_id)
    ).all()
    return MemberSnapshot(
        member_id=mid,
        tier=member.tier,
        balance=balance,
        segment=member.segment,
        birth_date=member.birth_date,
        has_referrer=member.referrer_id is not None,
        purchase_count=int(visits[0]),
        total_spend=max(int(conn.execute(signed_spend(None, mid)).scalar_one()), 0),
        first_visit_at=visits[1],
        last_visit_at=visits[2],
        recent_visits=recent,
        tier_window_spend=max(int(conn.execute(signed_spend(window_start, mid)).scalar_one()), 0),
        tier_window_points=max(int(conn.execute(earned_since(mid, window_start)).scalar_one()), 0),
        points_today=int(conn.execute(
            earned_since(mid, local_midnight(at, ruleset.utc_offset_minutes))).scalar_one()),
        rule_uses=tuple((r[0], int(r[1])) for r in uses),
        rule_last_used=tuple((r[0], r[2]) for r in uses),
    )
