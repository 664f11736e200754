"""Dates in the loyalty table: Jalali (1404-01-01) or Gregorian (2025-03-21), told
apart by the year (Jalali years are below 1700). Pure: no clock, no time zone files."""

from __future__ import annotations

import functools
import re
from datetime import date, datetime, timedelta

import jdatetime

_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
JALALI_YEAR_MAX = 1700


def parse_date(text: str) -> date:
    """A table date as a Gregorian date; ValueError with the reason otherwise."""
    m = _DATE.match(text.strip()) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"expected a date like 1404-01-01 (Jalali) or 2025-03-21 (Gregorian), got {text!r}")
    y, mo, d = (int(g) for g in m.groups())
    if y < JALALI_YEAR_MAX:
        try:
            return jdatetime.date(y, mo, d).togregorian()
        except ValueError:
            raise ValueError(f"{text!r} is not a Jalali calendar date") from None
    try:
        return date(y, mo, d)
    except ValueError:
        raise ValueError(f"{text!r} is not a calendar date") from None


def parse_month_day(text: str) -> tuple[int, int]:
    """A Jalali month and day, like 01-01 (the first of Farvardin)."""
    m = re.match(r"^(\d{2})-(\d{2})$", text.strip()) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"expected a Jalali month-day like 01-01, got {text!r}")
    month, day = int(m.group(1)), int(m.group(2))
    if not 1 <= month <= 12 or not 1 <= day <= (31 if month <= 6 else 30):
        raise ValueError(f"{text!r} is not a Jalali month-day")
    return month, day


def local_date(at: datetime, utc_offset_minutes: int) -> date:
    """The store's calendar day at an aware UTC instant."""
    return (at + timedelta(minutes=utc_offset_minutes)).date()


@functools.lru_cache(maxsize=4096)  # jdatetime's conversion costs more than the rest of a plan
def jalali(d: date) -> str:
    return jdatetime.date.fromgregorian(date=d).strftime("%Y/%m/%d")


def is_review_day(d: date, review_days: tuple[tuple[int, int], ...]) -> bool:
    j = jdatetime.date.fromgregorian(date=d)
    return (j.month, j.day) in review_days


def anniversary(born: date, year: int) -> date:
    """The birthday in a Gregorian year; 29 February falls on 28 February otherwise."""
    try:
        return born.replace(year=year)
    except ValueError:
        return date(year, 2, 28)
