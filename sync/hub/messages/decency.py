"""Whether a message may go now: opt-out, a mobile not verified, max age, quiet hours
and the daily limit. Pure: the worker gathers the facts, this decides.

Verification codes are exempt from all of it but their max age (a person at the
till is waiting for one; an opt-out by reply is about messages from the club).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone

from sync.hub.messages.text import local_time

EXEMPT = frozenset({"code"})


@dataclass(frozen=True)
class Policy:
    """The rules for one store's messages of one kind."""

    quiet_start: time
    quiet_end: time
    utc_offset: timedelta
    daily_limit: int  # 0: no limit
    max_age: timedelta


@dataclass(frozen=True)
class Facts:
    """What the worker knows of one message's recipient, now."""

    opted_out: bool  # of this kind, or of every message
    unverified: bool  # verification is required and this mobile is not confirmed
    sent_today: int  # messages this mobile received (or is being sent) since local midnight


@dataclass(frozen=True)
class Send:
    pass


@dataclass(frozen=True)
class Hold:
    until: datetime
    reason: str


@dataclass(frozen=True)
class Suppress:
    reason: str


Decision = Send | Hold | Suppress


def in_quiet_hours(at: datetime, policy: Policy) -> bool:
    now = local_time(at, policy.utc_offset).time()
    start, end = policy.quiet_start, policy.quiet_end
    if start == end:
        return False
    if start < end:
        return start <= now < end
    return now >= start or now < end  # across midnight, e.g. 21:00-08:00


def quiet_ends(at: datetime, policy: Policy) -> datetime:
    """The first end of quiet hours after `at` (UTC, aware)."""
    local = local_time(at, policy.utc_offset)
    end = local.replace(hour=policy.quiet_end.hour, minute=policy.quiet_end.minute, second=0, microsecond=0)
    if end <= local:
        end += timedelta(days=1)
    return (end - policy.utc_offset).replace(tzinfo=timezone.utc)


def next_day_start(at: datetime, policy: Policy) -> datetime:
    """When tomorrow's sending begins: the end of the quiet hours after the next local midnight."""
    local = local_time(at, policy.utc_offset)
    midnight = (local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1) - policy.utc_offset)
    midnight = midnight.replace(tzinfo=timezone.utc)
    return quiet_ends(midnight, policy) if in_quiet_hours(midnight, policy) else midnight


def day_start(at: datetime, policy: Policy) -> datetime:
    """Local midnight before `at` (UTC, aware): where the daily limit's count begins."""
    local = local_time(at, policy.utc_offset)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0) - policy.utc_offset
    return start.replace(tzinfo=timezone.utc)


def judge(kind: str, occurred_at: datetime, now: datetime, policy: Policy, facts: Facts) -> Decision:
    deadline = occurred_at + policy.max_age
    if now > deadline:
        return Suppress(f"too old: {_age(now - occurred_at)} after it happened (max {_age(policy.max_age)})")
    if kind in EXEMPT:
        return Send()
    if facts.opted_out:
        return Suppress("opted out")
    if facts.unverified:
        return Suppress("mobile not verified (verification is required)")
    wait: Hold | None = None
    if in_quiet_hours(now, policy):
        wait = Hold(quiet_ends(now, policy), "quiet hours")
    elif policy.daily_limit and facts.sent_today >= policy.daily_limit:
        wait = Hold(next_day_start(now, policy), f"daily limit of {policy.daily_limit} reached")
    if wait is None:
        return Send()
    if wait.until > deadline:  # it would only be dropped then: say so now
        return Suppress(f"{wait.reason} until {_age(wait.until - occurred_at)} after it happened, past its "
                        f"max age of {_age(policy.max_age)}")
    return wait


def _age(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min" if minutes < 2880 else f"{minutes // 1440} days"
