"""Numbers, money, dates and times as a member reads them, in Persian or English.
Pure. (terminal_agent.i18n does the same for the till; the hub is no till and may
not import it: the import contracts in pyproject.toml.)"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import jdatetime

PERSIAN_DIGITS = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
LATIN_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")
PERSIAN_THOUSANDS = "٬"  # U+066C, the Arabic thousands separator Persian uses
MISSING = "—"  # what a placeholder shows when the hub does not know its value


@dataclass(frozen=True)
class Style:
    """How values are written in one message."""

    locale: str = "fa"  # fa | en
    calendar: str = "jalali"  # jalali | gregorian
    currency: str = "toman"  # rial | toman
    persian_digits: bool = True

    def digits(self, text: str) -> str:
        return text.translate(PERSIAN_DIGITS) if self.locale == "fa" and self.persian_digits else text

    def number(self, value: int | None) -> str:
        if value is None:
            return MISSING
        text = f"{value:,}"
        return self.digits(text.replace(",", PERSIAN_THOUSANDS) if self.locale == "fa" else text)

    def money(self, rial: int | None) -> str:
        """Rial, or Toman (a tenth, rounded down: what a shop writes) with its word."""
        if rial is None:
            return MISSING
        if self.currency == "toman":
            return self.number(rial // 10) + (" تومان" if self.locale == "fa" else " Toman")
        return self.number(rial) + (" ریال" if self.locale == "fa" else " Rial")

    def day(self, value: date | None) -> str:
        if value is None:
            return MISSING
        if self.calendar == "jalali":
            return self.digits(jdatetime.date.fromgregorian(date=value).strftime("%Y/%m/%d"))
        return self.digits(value.isoformat())

    def clock(self, value: datetime, offset: timedelta) -> str:
        return self.digits(local_time(value, offset).strftime("%H:%M"))


def local_time(at: datetime, offset: timedelta) -> datetime:
    """`at` in a store's local time (a fixed offset: Iran has had no daylight saving since 2022), naive."""
    return (at.astimezone(timezone.utc) + offset).replace(tzinfo=None)


def local_day(at: datetime, offset: timedelta) -> date:
    return local_time(at, offset).date()


def latin_digits(text: str) -> str:
    """Persian and Arabic-Indic digits as 0-9 (what a member may type in a reply)."""
    return text.translate(LATIN_DIGITS)


def parse_offset(text: str) -> timedelta:
    """`+03:30` -> 210 minutes; ValueError otherwise."""
    sign = {"+": 1, "-": -1}.get(text[:1])
    hours, _, minutes = text[1:].partition(":")
    if sign is None or not (hours.isdigit() and minutes.isdigit() and len(hours) == 2 and len(minutes) == 2):
        raise ValueError(f"{text!r} is not an offset like +03:30")
    if int(hours) > 14 or int(minutes) >= 60:
        raise ValueError(f"{text!r} is not an offset like +03:30")
    return sign * timedelta(hours=int(hours), minutes=int(minutes))


def is_birthday(birth: date, today: date, calendar: str) -> bool:
    """Whether `today` is the birthday of someone born on `birth` (Gregorian dates),
    counted in the Jalali or the Gregorian calendar. Born on a day this year lacks
    (29 February, 30 Esfand): greeted on the month's last day."""
    if calendar == "jalali":
        b, t = jdatetime.date.fromgregorian(date=birth), jdatetime.date.fromgregorian(date=today)
        if (b.month, b.day) == (t.month, t.day):
            return True
        last = jdatetime.j_days_in_month[t.month - 1] if t.month < 12 else (30 if t.isleap() else 29)
        return b.month == t.month and b.day > last and t.day == last
    if (birth.month, birth.day) == (today.month, today.day):
        return True
    return (birth.month, birth.day) == (2, 29) and (today.month, today.day) == (2, 28) and \
        not _gregorian_leap(today.year)


def _gregorian_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
