"""Member snapshots for the rules engine: the member's state and history aggregates,
read inside the caller's transaction so the plan and the write agree."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row

from ledger.db import Raw
from ledger.rules import MemberSnapshot, Ruleset
from ledger.rules.dates import local_date
from ledger.timefmt import format_utc, parse_utc

RECENT_VISITS_MAX = 1000  # streaks count a few visits; this bounds a pathological history


def local_midnight(at: datetime, offset_minutes: int) -> datetime:
    day = local_date(at, offset_minutes)
    return datetime(day.year, day.month, day.day, tzinfo=at.tzinfo) - timedelta(minutes=offset_minutes)


# The till's hot path: four plain SQL statements (no expression building per sale).
# Times are the ledger's sortable UTC text (ledger.timefmt), so text comparison is time order.
_SALES_SQL = """
SELECT count(CASE WHEN kind = 'sale' THEN 1 END),
       min(CASE WHEN kind = 'sale' THEN created_at END),
       max(CASE WHEN kind = 'sale' THEN created_at END),
       coalesce(sum(CASE WHEN kind = 'refund' THEN -amount ELSE amount END), 0),
       coalesce(sum(CASE WHEN created_at >= ? THEN (CASE WHEN kind = 'refund' THEN -amount ELSE amount END) END), 0),
       coalesce(sum(CASE WHEN kind = 'sale' THEN amount END), 0)
FROM sales WHERE member_id = ?
"""
_RECENT_SQL = """
SELECT created_at FROM sales WHERE member_id = ? AND kind = 'sale' AND created_at > ?
ORDER BY created_at DESC LIMIT ?
"""
_EARNED_SQL = """
SELECT coalesce(sum(CASE WHEN created_at >= ? THEN points END), 0),
       coalesce(sum(CASE WHEN created_at >= ? THEN points END), 0)
FROM entries
WHERE member_id = ? AND created_at >= ?
  AND (kind IN ('earn', 'bonus') OR (kind = 'reverse' AND rule_id = 'reverse-earn'))
"""
# uses here, plus those at other terminals (as the hub said) and archived (ledger.archive)
_USES_SQL = """
SELECT rule_id, sum(n), max(t) FROM (
  SELECT rule_id, count(*) AS n, max(created_at) AS t FROM entries
  WHERE member_id = ? AND kind = 'bonus' AND rule_id IS NOT NULL GROUP BY rule_id
  UNION ALL
  SELECT rule_id, elsewhere + archived, last_used_at FROM member_rule_uses WHERE member_id = ?)
GROUP BY rule_id
"""
# archived sales, summed (ledger.archive): never inside a window a rule reads
_ARCHIVED_SQL = "SELECT sales, spend, gross, first_visit_at, last_visit_at FROM member_stats WHERE member_id = ?"
_BALANCE_SQL = "SELECT points FROM balances WHERE member_id = ?"


_LIFETIME_SQL = ("SELECT coalesce(sum(amount), 0) + coalesce((SELECT gross FROM member_stats WHERE member_id = ?), 0) "
                 "FROM sales WHERE member_id = ? AND kind = 'sale'")


def lifetime_spend(conn: Connection, member_id: str) -> int:
    """Rial the member ever paid in sales, refunds not netted: bounded (ledger.limits)
    so every sum over their sales fits int64. Read from the covering index."""
    return int(Raw(conn).scalar(_LIFETIME_SQL, (member_id, member_id)))


def tier_window(conn: Connection, member_id: str, since: datetime) -> tuple[int, int]:
    """(net Rial spent, points earned) since `since`: what tiers are earned by, with
    the same SQL a sale's snapshot uses, so the review and the till never disagree."""
    raw = Raw(conn)
    start = format_utc(since)
    spend = raw.one(_SALES_SQL, (start, member_id))[4]
    points = raw.one(_EARNED_SQL, (start, start, member_id, start))[0]
    return max(int(spend), 0), max(int(points), 0)


def snapshot_from_db(conn: Connection, member: Row[Any], at: datetime, ruleset: Ruleset) -> MemberSnapshot:
    return snapshot_and_lifetime(conn, member, at, ruleset)[0]


def snapshot_and_lifetime(conn: Connection, member: Any, at: datetime, ruleset: Ruleset,
                          balance: int | None = None) -> tuple[MemberSnapshot, int]:
    """The snapshot, and the member's lifetime_spend read by the same statements (a sale
    needs both). balance: the member's points if the caller has just read them."""
    mid = member.id
    raw = Raw(conn)
    window_start = format_utc(at - timedelta(days=ruleset.tier_policy.window_days))
    midnight = format_utc(local_midnight(at, ruleset.utc_offset_minutes))
    lookback = format_utc(at - timedelta(days=max(ruleset.bonuses.streak_within_days, 1)))
    if balance is None:
        balance = int(raw.scalar(_BALANCE_SQL, (mid,)))
    count, first, last, spend, window_spend, lifetime = raw.one(_SALES_SQL, (window_start, mid))
    archived = raw.one_or_none(_ARCHIVED_SQL, (mid,))
    if archived is not None and archived[0]:
        count, spend = count + archived[0], spend + archived[1]
        first = min(first or archived[3], archived[3])
        last = max(last or archived[4], archived[4])
    if archived is not None:
        lifetime += archived[2] or 0
    window_points, today = raw.one(_EARNED_SQL, (window_start, midnight, mid, min(window_start, midnight)))
    uses = raw.all(_USES_SQL, (mid, mid))
    # the streak counts visits since its window began or since it last paid, whichever
    # is later: only those are read (a regular's month of visits would be parsed each sale)
    streak_paid = next((r[2] for r in uses if r[0] == "streak"), "") or ""
    recent = tuple(parse_utc(v) for v in raw.column(_RECENT_SQL, (mid, max(lookback, streak_paid),
                                                                  RECENT_VISITS_MAX)))
    return MemberSnapshot(
        member_id=mid,
        tier=member.tier,
        balance=balance,
        segment=member.segment,
        birth_date=member.birth_date,
        has_referrer=member.referrer_id is not None,
        purchase_count=int(count),
        total_spend=max(int(spend), 0),
        first_visit_at=parse_utc(first) if first else None,
        last_visit_at=parse_utc(last) if last else None,
        recent_visits=recent,
        tier_window_spend=max(int(window_spend), 0),
        tier_window_points=max(int(window_points), 0),
        points_today=int(today),
        rule_uses=tuple((r[0], int(r[1])) for r in uses if r[1]),
        rule_last_used=tuple((r[0], parse_utc(r[2])) for r in uses if r[2]),
    ), int(lifetime)
