"""Display helpers for the Persian and English UI: digits, Rial, Jalali dates, and
Persian text made ready for terminals without bidi support. Pure.

A terminal without bidi (tmux, the Linux console, Windows Terminal) prints characters
left to right as they come, each in its isolated form. `visual()` does what such a
terminal does not: the letters take their joined forms (arabic_reshaper) and each
line is put in display order (the Unicode bidi algorithm, python-bidi, base direction
right to left). A terminal that does its own bidi gets the logical text untouched
(`[console] bidi = "terminal"`), so nothing is reversed twice.

Lines are wrapped *before* they are reordered: reordering a paragraph and then
wrapping it would put its end on the first line.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timezone

import arabic_reshaper
import jdatetime
from bidi import algorithm as _bidi
from rich.cells import cell_len

from ledger.timefmt import IRAN_OFFSET

PERSIAN_DIGITS = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
LATIN_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")
_RTL_CHAR = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefc]")
_JOINERS = str.maketrans("", "", "\u200c\u200d\u200e\u200f")
# Labels get the lam-alef ligature; input fields do not, so that each character typed
# stays one cell (the cursor is placed by character)
_RESHAPER = arabic_reshaper.ArabicReshaper({"delete_harakat": False})
_RESHAPER_1TO1 = arabic_reshaper.ArabicReshaper({"delete_harakat": False, "support_ligatures": False})

BIDI_MODES = ("reorder", "terminal")
# Jalali days are written with slashes: a hyphen (a European separator) would split
# Persian digits after Persian words into runs that read right to left
DATE_EXAMPLE = {"fa": "1370/05/10", "en": "1991-08-01"}


def digits(text: str, locale: str, persian_digits: bool = True) -> str:
    """Persian digits in Persian when the setting says so; Latin digits otherwise
    (also where the text came with Persian digits, e.g. a rule's explanation)."""
    if locale == "fa" and persian_digits:
        return text.translate(PERSIAN_DIGITS)
    return text.translate(LATIN_DIGITS)


def latin_digits(text: str) -> str:
    return text.translate(LATIN_DIGITS)


def rial(amount: int, locale: str, persian_digits: bool = True) -> str:
    text = f"{amount:,}"
    if locale == "fa":
        return digits(text.replace(",", "٬"), locale, persian_digits) + " ریال"
    return f"{text} Rial"


def number(value: int, locale: str, persian_digits: bool = True) -> str:
    """A whole number with thousands separators, in the locale's digits."""
    text = f"{value:,}"
    return digits(text.replace(",", "٬"), locale, persian_digits) if locale == "fa" else text


def parse_whole(text: str) -> int | None:
    """A whole number as typed: Persian or Arabic digits, separators (, ٬ space _)
    and a sign allowed. None if it is not one."""
    cleaned = re.sub(r"[,٬_\s]", "", latin_digits(text.strip())).replace("−", "-")
    if not re.fullmatch(r"[+-]?\d{1,18}", cleaned):
        return None
    return int(cleaned)


def local_date(at: datetime, locale: str, persian_digits: bool = True) -> str:
    """Jalali for fa, Gregorian for en; both in Iran's local time."""
    local = at.astimezone(timezone.utc) + IRAN_OFFSET
    if locale == "fa":
        j = jdatetime.datetime.fromgregorian(datetime=local.replace(tzinfo=None))
        return digits(j.strftime("%Y/%m/%d %H:%M"), locale, persian_digits)
    return local.strftime("%Y-%m-%d %H:%M")


def day(value: date, locale: str, persian_digits: bool = True) -> str:
    """A calendar day (a birth date): Jalali in Persian, Gregorian in English."""
    if locale == "fa":
        return digits(jdatetime.date.fromgregorian(date=value).strftime("%Y/%m/%d"), locale, persian_digits)
    return value.isoformat()


def parse_day(text: str, locale: str) -> date | None:
    """A day typed as YYYY-MM-DD (or with /), in the calendar the locale asks for:
    Jalali in Persian, Gregorian in English. None if it is no such day there."""
    match = re.fullmatch(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})", latin_digits(text.strip()))
    if not match:
        return None
    y, m, d = (int(g) for g in match.groups())
    try:
        if locale == "fa":
            return jdatetime.date(y, m, d).togregorian()  # type: ignore[no-any-return]
        return date(y, m, d)
    except ValueError:
        return None


def has_rtl(text: str) -> bool:
    return bool(_RTL_CHAR.search(text))


def visual(line: str, rtl: bool = True) -> str:
    """One line in display order for a terminal without bidi: joined letters, right to
    left (base direction right to left when `rtl`). Lines without Persian letters in
    a left-to-right layout come back as they are."""
    if not line or (not rtl and not has_rtl(line)):
        return line
    shaped = _RESHAPER.reshape(line)
    return str(_bidi.get_display(shaped, base_dir="R" if rtl else "L")).translate(_JOINERS)


def visual_map(text: str, rtl: bool) -> tuple[str, list[int]]:
    """`text` in display order (one cell per character, no ligatures) and, for each
    logical index, the visual index of that character: what an input field needs to
    draw its cursor where the character is."""
    shaped = _RESHAPER_1TO1.reshape(text) if has_rtl(text) else text
    assert len(shaped) == len(text), "the 1:1 reshaper changed the length"
    storage = _bidi.get_empty_storage()
    storage["base_level"] = 1 if rtl else 0
    storage["base_dir"] = "R" if rtl else "L"
    _bidi.get_embedding_levels(shaped, storage, False, False)
    for index, ch in enumerate(storage["chars"]):
        ch["index"] = index
    _bidi.explicit_embed_and_overrides(storage, False)
    _bidi.resolve_weak_types(storage, False)
    _bidi.resolve_neutral_types(storage, False)
    _bidi.resolve_implicit_levels(storage, False)
    _bidi.reorder_resolved_levels(storage, False)
    _bidi.apply_mirroring(storage, False)
    chars = storage["chars"]
    where = list(range(len(text)))
    for position, ch in enumerate(chars):
        where[ch["index"]] = position
    return "".join(ch["ch"] for ch in chars), where


def wrap(text: str, width: int) -> list[str]:
    """Logical lines of at most `width` cells, broken at spaces (a longer word is cut)."""
    width = max(width, 1)
    out: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            while cell_len(word) > width:
                room = width - cell_len(line) - (1 if line else 0)
                if room <= 0:
                    out.append(line)
                    line, room = "", width
                cut = 0
                while cut < len(word) and cell_len(word[:cut + 1]) <= room:
                    cut += 1
                line = f"{line} {word[:cut]}" if line else word[:cut]
                out.append(line)
                line, word = "", word[cut:]
            if not line:
                line = word
            elif cell_len(line) + 1 + cell_len(word) <= width:
                line = f"{line} {word}"
            else:
                out.append(line)
                line = word
        out.append(line)
    return out
