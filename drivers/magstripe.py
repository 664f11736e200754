"""ISO/IEC 7811 and 7813 magnetic stripe tracks: parsing and the member number. Pure.

    track 1 (IATA): %  format code  PAN ^ NAME ^ YYMM service discretionary ?  [LRC]
                    6-bit characters 0x20-0x5F, at most 79 characters
    track 2 (ABA):  ;  PAN = YYMM service discretionary ?  [LRC]
                    4-bit characters 0x30-0x3F, at most 40 characters
    track 3:        ; (or + on some readers) PAN = ... ?  [LRC], 4-bit, at most 107

The maximum lengths count every character on the stripe: start sentinel, data, end
sentinel and LRC. The LRC is the XOR of every character's data bits (the character
code minus the set's base, 0x20 or 0x30), sentinels included, written as one more
character of the set. On the stripe each character also carries an odd parity bit
and the LRC's parity bit is its own odd parity (ISO/IEC 7811-2); a reader that
passes the LRC on as ASCII has already checked and stripped the parity bits, so only
the data bits are compared here. A track the reader could not read arrives as
`%E?`, `;E?` or `+E?`.

Raw track text lives only inside these functions: results and errors carry the
member number (or its masked form) and never the rest of a track (name, expiry,
discretionary data), so nothing downstream can log or store it by mistake.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.errors import FrameError

TRACKS = (1, 2, 3)
TRACK_MAX_CHARS = {1: 79, 2: 40, 3: 107}  # ISO/IEC 7813 and 4909, sentinels and LRC included
PAN_DIGITS_MIN = 4  # shorter is not a card number of any programme we know
PAN_DIGITS_MAX = 19  # ISO/IEC 7812
_BASE = {1: 0x20, 2: 0x30, 3: 0x30}  # the character that stands for data value 0
_BITS = {1: 0x3F, 2: 0x0F, 3: 0x0F}  # 6-bit (alpha) and 4-bit (BCD) character sets
_CHARSET = {1: (0x20, 0x5F), 2: (0x30, 0x3F), 3: (0x30, 0x3F)}
START = {1: ("%",), 2: (";",), 3: (";", "+")}
END = "?"
FAILED = "E"  # the reader's `%E?`, `;E?`, `+E?` for a track it could not read
SEPARATOR = {1: "^", 2: "=", 3: "="}
# Track 1 format code: B is the financial format of ISO/IEC 7813; ISO/IEC 7811-2
# leaves the other letters to private use, which loyalty cards do use.
TRACK1_FORMAT_CODES = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")


@dataclass(frozen=True)
class Track:
    """One track of a swipe: its number and the primary account number on it.

    `failed` is a track the reader (or this parser: bad LRC, bad characters) could
    not read; a partial swipe still has its other tracks."""

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
    lo, hi = _CHARSET[track]
    return all(lo <= ord(ch) <= hi for ch in text)


def _pan(digits: str, track: int) -> str:
    if not digits.isascii() or not digits.isdigit() or not PAN_DIGITS_MIN <= len(digits) <= PAN_DIGITS_MAX:
        # never the whole number: it may be a bank card's
        shown = f"ending {digits[-4:]}" if digits.isascii() and digits.isdigit() and len(digits) > 4 else \
            "other characters"
        raise FrameError(f"track {track}: the account number is not {PAN_DIGITS_MIN}-{PAN_DIGITS_MAX} digits "
                         f"({shown})")
    return digits


def _is_failed(track: int, text: str, with_lrc: bool) -> bool:
    """`%E?` and friends, with the LRC some readers put after them too."""
    if text[1:3] != FAILED + END:
        return False
    rest = text[3:]
    return rest == "" or (with_lrc and rest == lrc(track, text[:3]))


def parse_track(track: int, text: str, *, with_lrc: bool = False) -> Track:
    """One track from its start sentinel to its end sentinel (and LRC when the reader
    passes it). FrameError names what is wrong, never the track's content."""
    if track not in TRACK_MAX_CHARS:
        raise FrameError(f"there is no track {track}")
    if not text or text[0] not in START[track]:
        raise FrameError(f"track {track} must start with {' or '.join(START[track])}")
    if _is_failed(track, text, with_lrc):
        return Track(track, None, failed=True)
    end = text.find(END)
    if end < 0:
        raise FrameError(f"track {track} has no end sentinel (?): a half frame")
    body, rest = text[: end + 1], text[end + 1:]
    if with_lrc:
        if len(rest) != 1:
            raise FrameError(f"track {track}: expected one LRC character after the end sentinel")
    elif rest:
        raise FrameError(f"track {track}: unexpected characters after the end sentinel")
    total = len(body) + len(rest)
    if total > TRACK_MAX_CHARS[track]:
        raise FrameError(f"track {track} is {total} characters; at most {TRACK_MAX_CHARS[track]}")
    inner = body[1:-1]
    # '+' (track 3 on some readers) is outside the 4-bit set: check from the data on
    if not _charset_ok(track, inner) or any(s in inner for s in START[track]):
        raise FrameError(f"track {track} has characters outside its character set")
    if with_lrc:  # checked after the character set: an LRC over foreign characters means nothing
        if not _charset_ok(track, rest) or rest != lrc(track, body):
            raise FrameError(f"track {track}: LRC check failed (a misread swipe)")
    if track == 1:
        if inner[:1] in TRACK1_FORMAT_CODES:
            inner = inner[1:]
        if SEPARATOR[1] not in inner and not inner.isdigit():
            raise FrameError("track 1 has no field separator (^)")
    digits = inner.split(SEPARATOR[track], 1)[0]
    return Track(track, _pan(digits, track))


@dataclass(frozen=True)
class Swipe:
    """The tracks of one swipe, as decoded from a reader's framing."""

    tracks: tuple[Track, ...]

    def member_number(self, preferred: int = 2) -> str:
        """The member number from the preferred track, else from another track that
        has one (track 2, then 1, then 3: the ISO financial order)."""
        by_number = {t.number: t for t in self.tracks}
        for n in (preferred, 2, 1, 3):
            t = by_number.get(n)
            if t is not None and t.pan:
                return t.pan
        if self.tracks and all(t.failed for t in self.tracks):
            raise FrameError("the swipe could not be read; swipe the card again")
        raise FrameError("the swipe has no track with a member number")

    def track(self, number: int) -> Track | None:
        return next((t for t in self.tracks if t.number == number), None)


def track_number(start: str) -> int:
    """The track a start sentinel usually opens (';' may also open track 3)."""
    return {"%": 1, ";": 2, "+": 3}[start]


def parse_swipe(text: str, *, with_lrc: bool = False) -> Swipe:
    """Tracks back to back (`%...?;...?;...?`, optionally separated by CR/LF), as a
    keyboard wedge or a test types them. ';' after track 2 is track 3. A track that
    does not parse counts as failed; FrameError when no track is there at all."""
    tracks: list[Track] = []
    i, seen = 0, set[int]()
    text = text.strip("\r\n")
    while i < len(text):
        ch = text[i]
        if ch in "\r\n":
            i += 1
            continue
        if ch not in "%;+":
            raise FrameError("a swipe must be tracks that each start with a sentinel (%, ; or +)")
        number = 3 if ch == "+" or (ch == ";" and 2 in seen) else track_number(ch)
        if number in seen:
            raise FrameError(f"track {number} appears twice in one swipe")
        seen.add(number)
        end = text.find(END, i)
        has_lrc = with_lrc and end >= 0 and end + 1 < len(text) and text[end + 1] not in "\r\n"
        stop = len(text) if end < 0 else end + 1 + has_lrc
        piece, i = text[i:stop], stop
        try:
            tracks.append(parse_track(number, piece, with_lrc=with_lrc))
        except FrameError:
            tracks.append(Track(number, None, failed=True))
    if not tracks:
        raise FrameError("the swipe carried no track")
    return Swipe(tuple(tracks))


def encode_track(track: int, pan: str, rest: str = "", *, with_lrc: bool = False) -> str:
    """A track as a card carries it (for tests and the reader emulator)."""
    if track == 1:
        text = f"%B{pan}^{rest or 'MEMBER/LOYALTY'}^?"
    else:
        text = (";" if track == 2 else "+") + pan + (f"={rest}" if rest else "") + "?"
    return text + (lrc(track, text) if with_lrc else "")
