"""Display helpers for the Persian and English UI: digits, Rial, Jalali dates. Pure."""

from __future__ import annotations

from datetime import datetime, timezone

import jdatetime

from ledger.timefmt import IRAN_OFFSET

PERSIAN_DIGITS = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")


def digits(text: str, locale: str, persian_digits: bool = True) -> str:
    return text.translate(PERSIAN_DIGITS) if locale == "fa" and persian_digits else text


def rial(amount: int, locale: str, persian_digits: bool = True) -> str:
    text = f"{amount:,}"
    if locale == "fa":
        return digits(text.replace(",", "٬"), locale, persian_digits) + " ریال"
    return f"{text} Rial"


def local_date(at: datetime, locale: str, persian_digits: bool = True) -> str:
    """Jalali for fa, Gregorian for en; both in Iran's local time."""
    local = at.astimezone(timezone.utc) + IRAN_OFFSET
    if locale == "fa":
        j = jdatetime.datetime.fromgregorian(datetime=local.replace(tzinfo=None))
        return digits(j.strftime("%Y/%m/%d %H:%M"), locale, persian_digits)
    return local.strftime("%Y-%m-%d %H:%M")
