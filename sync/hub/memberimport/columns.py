"""Which column of the workbook holds what: headers in Persian or English, as people
write them (any case, spaces or underscores, Arabic or Persian yeh and kaf, a
zero-width non-joiner or not). Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# field -> the headers that name it (compared after `header_key`)
HEADERS: dict[str, tuple[str, ...]] = {
    "name": ("name", "full name", "member name", "نام", "نام و نام خانوادگی", "نام عضو", "نام کامل"),
    "mobile": ("mobile", "mobile number", "phone", "cell", "موبایل", "شماره موبایل", "تلفن همراه",
               "شماره همراه", "همراه"),
    "birth_date": ("birth date", "birthdate", "birthday", "date of birth", "تاریخ تولد", "تولد"),
    "card": ("card", "card number", "card no", "شماره کارت", "کارت"),
    "tier": ("tier", "level", "سطح", "رده"),
    "opening_balance": ("opening balance", "balance", "points", "opening points", "مانده امتیاز", "امتیاز",
                        "مانده", "امتیاز اولیه"),
    "referrer": ("referrer", "referred by", "referrer mobile", "معرف", "موبایل معرف"),
    "store": ("store", "store code", "branch", "فروشگاه", "کد فروشگاه", "شعبه"),
}
REQUIRED = ("name", "mobile")
# the header each field is called by in messages: (English, Persian)
LABELS: dict[str, tuple[str, str]] = {
    "name": ("name", "نام"), "mobile": ("mobile", "موبایل"), "birth_date": ("birth date", "تاریخ تولد"),
    "card": ("card", "شماره کارت"), "tier": ("tier", "سطح"), "opening_balance": ("opening balance", "مانده امتیاز"),
    "referrer": ("referrer", "معرف"), "store": ("store", "فروشگاه"),
}

_FOLD = str.maketrans({"ي": "ی", "ك": "ک", "ى": "ی", "\u200c": " ", "_": " ", "-": " ", "‌": " "})
_SPACES = re.compile(r"\s+")


def header_key(text: Any) -> str:
    """A header as compared: folded letters, one space between words, lower case."""
    return _SPACES.sub(" ", str(text if text is not None else "").translate(_FOLD)).strip().lower()


_BY_KEY = {header_key(h): field for field, names in HEADERS.items() for h in names}


@dataclass(frozen=True)
class Columns:
    """Where each known field is (0-based), each field's header as the file writes it,
    and the headers that name nothing this import knows (ignored)."""

    index: dict[str, int]
    header: dict[str, str]
    ignored: tuple[str, ...]


class HeaderProblem(ValueError):
    """The header row cannot be used: what is wrong, in words a person can act on."""


def read_header(cells: tuple[Any, ...] | list[Any]) -> Columns:
    index: dict[str, int] = {}
    header: dict[str, str] = {}
    ignored: list[str] = []
    for i, cell in enumerate(cells):
        key = header_key(cell)
        if not key:
            continue
        field = _BY_KEY.get(key)
        if field is None:
            ignored.append(str(cell).strip())
            continue
        if field in index:
            raise HeaderProblem(f"two columns are the {LABELS[field][0]} ({header[field]!r} and {str(cell).strip()!r}); "
                                "keep one")
        index[field], header[field] = i, str(cell).strip()
    missing = [f for f in REQUIRED if f not in index]
    if missing:
        wanted = "; ".join(f"{LABELS[f][0]} / {LABELS[f][1]}" for f in missing)
        raise HeaderProblem(f"the first row must name the columns; missing: {wanted}")
    return Columns(index, header, tuple(ignored))
