"""The days a report covers, as people type them: Jalali (1405/09/01, 1405-09-01) or
Gregorian (2026-11-22, 2026/11/22), told apart by the year (Jalali years are below
1700). Pure: the clock is the caller's."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import jdatetime

from ledger.timefmt import IRAN_OFFSET

_DAY = re.compile(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})$")
JALALI_YEAR_MAX = 1700
PERIOD_DAYS_DEFAULT = 30  # without --from: the 30 days up to --to (or today)


def parse_day(text: str) -> date:
    """A typed day as a Gregorian date; ValueError saying what is wrong otherwise."""
    m = _DAY.match(text.strip()) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"{text!r} is not a day: write it like 1405/09/01 (Jalali) or 2026-11-22 (Gregorian)")
    y, mo, d = (int(g) for g in m.groups())
    if y < JALALI_YEAR_MAX:
        if not 1 <= mo <= 12:
            raise ValueError(f"{text!r}: a Jalali month is 1 to 12")
        try:
            return jdatetime.date(y, mo, d).togregorian()  # type: ignore[no-any-return]
        except ValueError:
            days = 31 if mo <= 6 else 30 if mo < 12 or jdatetime.date(y, 1, 1).isleap() else 29
            raise ValueError(f"{text!r}: Jalali month {mo} of {y} has {days} days") from None
    try:
        return date(y, mo, d)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a Gregorian calendar day ({exc})") from None


def day_start(day: date) -> datetime:
    """The UTC instant a local calendar day begins in the stores (Iran, UTC+3:30)."""
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc) - IRAN_OFFSET


def local_today(now: datetime) -> date:
    return (now + IRAN_OFFSET).date()


@dataclass(frozen=True)
class Days:
    """A span of whole local days, first and last included."""

    first: date
    last: date

    @property
    def since(self) -> datetime:
        return day_start(self.first)

    @property
    def until(self) -> datetime:  # exclusive
        return day_start(self.last + timedelta(days=1))

    @property
    def length(self) -> int:
        return (self.last - self.first).days + 1

    def before(self) -> "Days":
        """The span of the same length just before this one."""
        last = self.first - timedelta(days=1)
        return Days(last - timedelta(days=self.length - 1), last)


def days_of(first: date | None, last: date | None, today: date) -> Days:
    """The report's days from --from/--to; ValueError when they are the wrong way round."""
    last = last or today
    first = first or last - timedelta(days=PERIOD_DAYS_DEFAULT - 1)
    if first > last:
        raise ValueError(f"the first day ({first}) is after the last ({last})")
    return Days(first, last)
