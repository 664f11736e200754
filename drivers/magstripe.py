"""ISO/IEC 7811 and 7813 magnetic stripe tracks: parsing and the member number. Pure.

    track 1 (IATA): %  format code  PAN ^ NAME ^ YYMM service discretionary ?  [LRC]
                    6-bit characters 0x20-0x5F, at most 79 characters
    track 2 (ABA):  ;  PAN = YYMM service discretionary ?  [LRC]
                    4-bit characters 0x30-0x3F, at most 40 characters
    track 3:        ; (or + on some readers) PAN = ... ?  [LRC], 4-bit, at most 107

The LRC is the XOR of every character's data bits, start and end sentinels
included, written as one more character of the track's set. A track the reader
could not read arrives as `%E?`, `;E?` or `+E?`.

Raw track text lives only inside these functions: results and errors carry the
member number (or its masked form) and never the rest of a track.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.cards import mask
from drivers.errors import FrameError

TRACK_MAX_CHARS = {1: 79, 2: 40, 3: 107}
PAN_DIGITS_MIN = 4
PAN_DIGITS_MAX = 19
_BASE = {1: 0x20, 2: 0x30, 3: 0x30}  # the character that stands for data value 0
_BITS = {1: 0x3F, 2: 0x0F, 3: 0x0F}
START = {1: ("%",), 2: (";",), 3: (";", "+")}
END = "?"
FAILED = "E"


@dataclass(frozen=True)
class Track:
    number: int
    pan: str | None  # the primary account (member) number, digits only
    failed: bool = False


def lrc(track: int, text: str) -> str:
    """The LRC character of a track's characters, sentinels included."""
    base, bits = _BASE[track], _BITS[track]
    value = 0
    for ch in text:
        value ^= (ord(ch) - base) & bits
    return chr(base + value)


def _charset_ok(track: int, text: str) -> bool:
    lo, hi = (0x20, 0x5F) if track == 1 else (0x30, 0x3F)
    return all(lo <= ord(ch) <= hi for ch in text)


def _pan(digits: str, track: int) -> str:
    if not digits.isdigit() or not PAN_DIGITS_MIN <= len(digits) <= PAN_DIGITS_MAX:
        raise FrameError(f"track {track}: the account number is not {PAN_DIGITS_MIN}-{PAN_DIGITS_MAX} digits "
                         f"({mask(digits) if digits.isdigit() else 'other characters'})")
    return digits


def parse_track(track: int, text: str, *, with_lrc: bool = False) -> Track:
    """One track from its start sentinel to its end sentinel (and LRC when the reader
    passes it). FrameError names what is wrong, never the track's content."""
    if track not in TRACK_MAX_CHARS:
        raise FrameError(f"there is no track {track}")
    if not text or text[0] not in START[track]:
        raise FrameError(f"track {track} must start with {' or '.join(START[track])}")
    if text[1:] == FAILED + END:
        return Track(track, None, failed=True)
    end = text.find(END)
    if end < 0:
        raise FrameError(f"track {track} has no end sentinel (?): a half frame")
    body, rest = text[: end + 1], text[end + 1:]
    if len(body) > TRACK_MAX_CHARS[track]:
        raise FrameError(f"track {track} is {len(body)} characters; at most {TRACK_MAX_CHARS[track]}")
    if with_lrc:
        if len(rest) != 1:
            raise FrameError(f"track {track}: expected one LRC character after the end sentinel")
        if rest != lrc(track, body):
            raise FrameError(f"track {track}: LRC check failed (a misread swipe)")
    elif rest:
        raise FrameError(f"track {track}: unexpected characters after the end sentinel")
    if not _charset_ok(track, body[1:]):  # '+' (track 3 on some readers) is outside the set
        raise FrameError(f"track {track} has characters outside its character set")
    inner = body[1:-1]
    if track == 1:
        if inner[:1].isalpha():  # format code; B for financial, loyalty cards use others too
            inner = inner[1:]
        digits = inner.split("^", 1)[0]
        if "^" not in inner and not inner.isdigit():
            raise FrameError("track 1 has no field separator (^)")
    else:
        digits = inner.split("=", 1)[0]
    return Track(track, _pan(digits, track))


@dataclass(frozen=True)
class Swipe:
    """The tracks of one swipe, as decoded from a reader's framing."""

    tracks: tuple[Track, ...]

    def member_number(self, preferred: int = 2) -> str:
        """The member number from the preferred track, else from any other track that
        has one (1, 2, 3 in that order)."""
        by_number = {t.number: t for t in self.tracks}
        for n in (preferred, 1, 2, 3):
            t = by_number.get(n)
            if t is not None and t.pan:
                return t.pan
        if self.tracks and all(t.failed for t in self.tracks):
            raise FrameError("the swipe could not be read; swipe the card again")
        raise FrameError("the swipe has no track with a member number")


def track_number(start: str) -> int:
    return {"%": 1, ";": 2, "+": 3}[start]


def encode_track(track: int, pan: str, rest: str = "", *, with_lrc: bool = False) -> str:
    """A track as a card carries it (for tests and the reader emulator)."""
    if track == 1:
        text = f"%B{pan}^{rest or 'MEMBER/LOYALTY'}^?"
    else:
        text = (";" if track == 2 else "+") + pan + (f"={rest}" if rest else "") + "?"
    return text + (lrc(track, text) if with_lrc else "")
