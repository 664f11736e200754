"""Iranian mobile numbers: one stored form, `09XXXXXXXXX`.

Accepts what people type: Persian or Arabic-Indic digits, spaces, dashes,
parentheses, and the +98 / 0098 / 98 country prefixes.
"""

from __future__ import annotations

import re

from ledger.errors import InvalidMobile

_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")
_SEPARATORS = re.compile(r"[\s\-().\u200c]")
_NATIONAL = re.compile(r"^09[0-9]{9}$")


def normalise_mobile(raw: str) -> str:
    """`+98 912 345 6789` -> `09123456789`; anything else raises InvalidMobile."""
    text = _SEPARATORS.sub("", str(raw).translate(_DIGITS))
    if text.startswith("+98"):
        text = "0" + text[3:]
    elif text.startswith("0098"):
        text = "0" + text[4:]
    elif text.startswith("98") and len(text) == 12:
        text = "0" + text[2:]
    elif text.startswith("9") and len(text) == 10:
        text = "0" + text
    if not _NATIONAL.match(text):
        raise InvalidMobile(
            f"{raw!r} is not an Iranian mobile number: expected 11 digits starting 09 "
            "(for example 0912 345 6789), or +98 and 10 digits"
        )
    return text


def looks_like_mobile(text: str) -> bool:
    try:
        normalise_mobile(text)
    except InvalidMobile:
        return False
    return True
