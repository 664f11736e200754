"""Quiet hours, opt-out, the daily limit and max ages, as the pure judge decides them."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

from sync.hub.messages.decency import Facts, Hold, Policy, Send, Suppress, in_quiet_hours, judge, next_day_start

TEHRAN = timedelta(minutes=210)
POLICY = Policy(time(21, 0), time(8, 0), TEHRAN, 3, timedelta(hours=3))
OK = Facts(opted_out=False, unverified=False, sent_today=0)


def tehran(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=timezone.utc) - TEHRAN


def test_quiet_hours_are_the_stores_local_time() -> None:
    assert in_quiet_hours(tehran(1, 21), POLICY) and in_quiet_hours(tehran(1, 23, 59), POLICY)
    assert in_quiet_hours(tehran(2, 7, 59), POLICY) and not in_quiet_hours(tehran(2, 8), POLICY)
    assert not in_quiet_hours(tehran(1, 20, 59), POLICY)
    assert not in_quiet_hours(tehran(1, 3), Policy(time(0, 0), time(0, 0), TEHRAN, 0, timedelta(1)))


def test_a_message_due_at_night_waits_for_the_morning_unless_it_is_too_old_by_then() -> None:
    night = tehran(1, 22)
    campaign = Policy(time(21, 0), time(8, 0), TEHRAN, 3, timedelta(days=3))
    held = judge("campaign", night, night, campaign, OK)
    assert held == Hold(tehran(2, 8), "quiet hours")
    receipt = judge("receipt", night, night, POLICY, OK)  # a receipt by the next morning is useless: dropped
    assert isinstance(receipt, Suppress) and "quiet hours" in receipt.reason and "max age" in receipt.reason
    late_evening = judge("receipt", tehran(1, 7, 0), tehran(1, 7, 0), POLICY, OK)  # 07:00: out by 08:00
    assert late_evening == Hold(tehran(1, 8), "quiet hours")


def test_codes_go_at_night_and_whatever_the_opt_out_or_the_limit() -> None:
    night = tehran(1, 2)
    assert judge("code", night, night, POLICY, Facts(True, True, 99)) == Send()
    assert isinstance(judge("code", night, night + timedelta(hours=4), POLICY, OK), Suppress)  # expired


def test_opt_out_unverified_age_and_daily_limit() -> None:
    noon = tehran(1, 12)
    assert judge("receipt", noon, noon, POLICY, Facts(True, False, 0)) == Suppress("opted out")
    unverified = judge("receipt", noon, noon, POLICY, Facts(False, True, 0))
    assert isinstance(unverified, Suppress) and "not verified" in unverified.reason
    old = judge("receipt", noon, noon + timedelta(hours=4), POLICY, OK)
    assert isinstance(old, Suppress) and old.reason.startswith("too old")
    week = Policy(time(21, 0), time(8, 0), TEHRAN, 3, timedelta(days=7))
    assert judge("campaign", noon, noon, week, Facts(False, False, 3)) == \
        Hold(tehran(2, 8), "daily limit of 3 reached")
    assert judge("campaign", noon, noon, week, Facts(False, False, 2)) == Send()
    assert next_day_start(tehran(1, 12), week) == tehran(2, 8)
