"""One cell of the members workbook to one value, or a `CellProblem` saying what is
wrong in English and in Persian. Pure: no clock (today is given), no database.

Cells come as openpyxl gives them: text, whole or fractional numbers, dates (an
Excel date cell), or None for an empty cell.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import jdatetime

from ledger.cardpolicy import CardPolicy, mask
from ledger.errors import CardOutOfRange, InvalidMobile, PaymentCardRefused, ValidationFailed
from ledger.limits import ENTRY_POINTS_MAX
from ledger.mobile import normalise_mobile

NAME_CHARS_MAX = 200  # the hub's members.name
STORE_CHARS_MAX = 64  # the hub's stores.code
EXCEL_DIGITS_MAX = 15  # Excel keeps a number to 15 significant digits: a longer card number typed as one is lost
JALALI_YEAR_MAX = 1700  # a year below this is Jalali (as in the loyalty table's dates)
AGE_YEARS_MAX = 130  # a birth date further back than this is a typing mistake
JALALI_DAYS_CACHED = 65_536  # conversions kept: every day of 130 years fits

_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")
_DATE = re.compile(r"^(\d{1,4})[/\-.](\d{1,2})[/\-.](\d{1,4})$")
_THOUSANDS = re.compile(r"[,\s٬،'\u200c]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class CellProblem(Exception):
    """What is wrong with a cell: a stable code, and the reason in English and Persian."""

    def __init__(self, code: str, en: str, fa: str) -> None:
        super().__init__(en)
        self.code, self.en, self.fa = code, en, fa


def text_of(cell: Any) -> str | None:
    """A cell as text, or None when empty; a whole number without its `.0`."""
    if cell is None:
        return None
    if isinstance(cell, bool):
        return str(cell)
    if isinstance(cell, float) and math.isfinite(cell) and cell.is_integer():
        return str(int(cell))
    text = str(cell).strip()
    return text or None


def shown(field: str, cell: Any) -> str:
    """The cell as the error workbook shows it: a card number masked, never in clear."""
    text = text_of(cell)
    if text is None:
        return ""
    if field == "card":
        return mask(re.sub(r"[^0-9A-Za-z]", "", text.translate(_DIGITS)))
    return text[:100]


def name(cell: Any) -> str:
    text = text_of(cell)
    if text is None:
        raise CellProblem("missing_name", "the name is empty", "نام خالی است")
    if len(text) > NAME_CHARS_MAX:
        raise CellProblem("long_name", f"the name is longer than {NAME_CHARS_MAX} characters",
                          f"نام بیش از {NAME_CHARS_MAX} نویسه است")
    if _CONTROL.search(text):
        raise CellProblem("bad_name", "the name holds control characters", "نام نویسه‌های کنترلی دارد")
    return text


def mobile(cell: Any, what: str = "mobile") -> str:
    """09XXXXXXXXX from +98..., 0098..., 0912..., 912..., Persian or Arabic digits,
    spaces and dashes; a number cell too (Excel drops the leading 0)."""
    fa_what = "موبایل" if what == "mobile" else "موبایل معرف"
    text = text_of(cell)
    if text is None:
        raise CellProblem("missing_mobile", f"the {what} is empty", f"{fa_what} خالی است")
    try:
        if isinstance(cell, float) and not cell.is_integer():
            raise InvalidMobile(text)
        return normalise_mobile(text)
    except InvalidMobile:
        raise CellProblem("bad_mobile", f"{text[:40]!r} is not an Iranian mobile number (like 0912 345 6789 or "
                          "+98 912 345 6789)",
                          f"«{text[:40]}» شماره موبایل ایران نیست (مانند ۰۹۱۲ ۳۴۵ ۶۷۸۹)") from None


def birth_date(cell: Any, today: date) -> str | None:
    """ISO text (Gregorian), from a Jalali 1370/05/12 (Persian digits too), a
    Gregorian 1991-08-03, or an Excel date cell; None when empty."""
    if cell is None or (isinstance(cell, str) and not cell.strip()):
        return None
    if isinstance(cell, datetime):
        born = cell.date()
    elif isinstance(cell, date):
        born = cell
    else:
        text = text_of(cell) or ""
        m = _DATE.match(text.translate(_DIGITS))
        if m is None or isinstance(cell, (int, float)):
            raise CellProblem("bad_date", f"{text[:40]!r} is not a date: write 1370/05/12 (Jalali) or 1991-08-03 "
                              "(Gregorian), or use a date cell",
                              f"«{text[:40]}» تاریخ نیست: به شکل ۱۳۷۰/۰۵/۱۲ (شمسی) یا 1991-08-03 (میلادی) بنویسید")
        a, b, c = (int(g) for g in m.groups())
        y, mo, d = (c, b, a) if a <= 31 and c >= 1000 else (a, b, c)  # 12/05/1370 as well as 1370/05/12
        try:
            born = _from_jalali(y, mo, d) if y < JALALI_YEAR_MAX else date(y, mo, d)
        except (ValueError, OverflowError):
            calendar, fa_calendar = ("Jalali", "شمسی") if y < JALALI_YEAR_MAX else ("Gregorian", "میلادی")
            raise CellProblem("bad_date", f"{text[:40]!r} is not a {calendar} calendar date",
                              f"«{text[:40]}» تاریخ {fa_calendar} درستی نیست") from None
    if born > today:
        raise CellProblem("future_date", f"the birth date {born.isoformat()} is in the future",
                          f"تاریخ تولد {_jalali(born)} در آینده است")
    if born.year < today.year - AGE_YEARS_MAX:
        raise CellProblem("old_date", f"the birth date {born.isoformat()} is more than {AGE_YEARS_MAX} years ago",
                          f"تاریخ تولد {_jalali(born)} بیش از {AGE_YEARS_MAX} سال پیش است")
    return born.isoformat()


@functools.lru_cache(maxsize=JALALI_DAYS_CACHED)  # jdatetime costs more than the rest of a row; birthdays repeat
def _from_jalali(y: int, m: int, d: int) -> date:
    return jdatetime.date(y, m, d).togregorian()


def _jalali(d: date) -> str:
    try:
        return jdatetime.date.fromgregorian(date=d).strftime("%Y/%m/%d")
    except (ValueError, OverflowError):
        return d.isoformat()


def card(cell: Any, policy: CardPolicy) -> str | None:
    """The member card number by the programme's one card policy; None when empty.
    A refusal shows the number masked only."""
    text = text_of(cell)
    if text is None:
        return None
    if isinstance(cell, (int, float)) and not isinstance(cell, bool) and len(text) > EXCEL_DIGITS_MAX:
        raise CellProblem("card_as_number", f"the card number is a number cell: Excel keeps only {EXCEL_DIGITS_MAX} "
                          "digits of it, so its last digits are lost; format the column as Text and type it again",
                          f"شماره کارت به شکل عدد ذخیره شده و اکسل فقط {EXCEL_DIGITS_MAX} رقم آن را نگه می‌دارد؛ "
                          "قالب ستون را «متن» کنید و شماره را دوباره وارد کنید")
    try:
        return policy.accept(text)
    except PaymentCardRefused:
        raise CellProblem(PaymentCardRefused.code, f"{shown('card', text)} is a bank (payment) card, not a member "
                          "card; it is never stored", f"{shown('card', text)} کارت بانکی است، نه کارت عضویت؛ "
                          "هرگز ذخیره نمی‌شود") from None
    except CardOutOfRange:
        raise CellProblem(CardOutOfRange.code, f"card {shown('card', text)} is not in the programme's member card "
                          "ranges (loyalty-hub cards ranges)",
                          f"کارت {shown('card', text)} در بازه‌های کارت عضویت باشگاه نیست") from None
    except ValidationFailed:
        raise CellProblem("bad_card", "a card number is 4 to 32 letters or digits",
                          "شماره کارت باید ۴ تا ۳۲ حرف یا رقم باشد") from None


def tier(cell: Any, tiers: Mapping[str, str], default: str) -> str:
    """A tier id from its id or its English or Persian name (tiers: folded name -> id)."""
    text = text_of(cell)
    if text is None:
        return default
    found = tiers.get(fold(text))
    if found is None:
        names = ", ".join(sorted(set(tiers.values())))
        raise CellProblem("unknown_tier", f"{text[:40]!r} is not a tier of the loyalty table ({names})",
                          f"«{text[:40]}» سطحی از جدول امتیاز نیست ({names})")
    return found


def fold(text: str) -> str:
    return re.sub(r"[\s\u200c]+", "", text.translate(_DIGITS).replace("ي", "ی").replace("ك", "ک")).lower()


def points(cell: Any) -> int:
    """Whole points, at least 0, within one entry's bound; 0 when empty. 1,250 and
    ۱٬۲۵۰ are 1250."""
    if cell is None:
        return 0
    if isinstance(cell, bool):
        raise _bad_points(str(cell))
    if isinstance(cell, float):
        if not math.isfinite(cell) or not cell.is_integer():
            raise _bad_points(str(cell))
        value = int(cell)
    elif isinstance(cell, int):
        value = cell
    else:
        text = str(cell).strip()
        if not text:
            return 0
        digits = _THOUSANDS.sub("", text.translate(_DIGITS))
        if not re.fullmatch(r"-?\d{1,20}", digits):
            raise _bad_points(text)
        value = int(digits)
    if value < 0:
        raise CellProblem("negative_points", f"an opening balance is at least 0, not {value:,}",
                          f"مانده امتیاز نمی‌تواند منفی باشد ({value:,})")
    if value > ENTRY_POINTS_MAX:
        raise CellProblem("limit_exceeded", f"an opening balance is at most {ENTRY_POINTS_MAX:,} points, not "
                          f"{value:,}", f"مانده امتیاز حداکثر {ENTRY_POINTS_MAX:,} است، نه {value:,}")
    return value


def _bad_points(text: str) -> CellProblem:
    return CellProblem("bad_points", f"{text[:40]!r} is not a whole number of points",
                       f"«{text[:40]}» عدد صحیح امتیاز نیست")


def store(cell: Any, default: str | None, stores: frozenset[str] | set[str]) -> str:
    text = text_of(cell)
    if text is None:
        if default is None:
            raise CellProblem("missing_store", "no store: fill the store column or give --store",
                              "فروشگاه مشخص نیست: ستون فروشگاه را پر کنید یا --store بدهید")
        return default
    if text not in stores:
        raise CellProblem("unknown_store", f"the hub has no store {text[:STORE_CHARS_MAX]!r} (stores are made by "
                          "loyalty-hub terminals add --store)",
                          f"فروشگاه «{text[:STORE_CHARS_MAX]}» در مرکز تعریف نشده است")
    return text
