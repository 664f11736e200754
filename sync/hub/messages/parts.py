"""How many SMS parts a text takes, and what it costs. Pure.

GSM 03.38 (the 7-bit default alphabet): 160 septets in one part, 153 per part once
concatenated (the user data header takes 7); a character of the extension table
(`^{}\\[~]|€` and form feed) takes two septets and is never split between parts.
Anything outside the alphabet (Persian, for one) sends the whole text as UCS-2: 70
UTF-16 code units in one part, 67 per part concatenated; a character beyond the
Basic Multilingual Plane (an emoji) takes two units and is never split either.
"""

from __future__ import annotations

from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
GSM7_SINGLE_MAX = 160
GSM7_PART_MAX = 153
UCS2_SINGLE_MAX = 70
UCS2_PART_MAX = 67
PARTS_MAX = 255  # the concatenation header counts parts in one byte


@dataclass(frozen=True)
class Parts:
    encoding: str  # gsm7 | ucs2
    units: int  # septets (gsm7) or UTF-16 code units (ucs2)
    parts: int
    chars: int  # characters as a person counts them

    def cost(self, price_per_part: int) -> int:
        return self.parts * price_per_part


def is_gsm7(text: str) -> bool:
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)


def _widths(text: str) -> tuple[str, list[int]]:
    if is_gsm7(text):
        return "gsm7", [2 if c in GSM7_EXTENSION else 1 for c in text]
    return "ucs2", [2 if ord(c) > 0xFFFF else 1 for c in text]


def _pack(widths: list[int], per_part: int) -> int:
    """Parts needed when no character may be split between two of them."""
    parts, used = 1, 0
    for w in widths:
        if used + w > per_part:
            parts, used = parts + 1, 0
        used += w
    return parts


def sms_parts(text: str) -> Parts:
    """The parts `text` takes (an empty text still takes one)."""
    encoding, widths = _widths(text)
    units = sum(widths)
    single, per_part = (GSM7_SINGLE_MAX, GSM7_PART_MAX) if encoding == "gsm7" else (UCS2_SINGLE_MAX, UCS2_PART_MAX)
    parts = 1 if units <= single else _pack(widths, per_part)
    return Parts(encoding, units, parts, len(text))
