"""Track parsing (ISO/IEC 7811/7813): examples and properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.errors import DriverError, FrameError
from drivers.magstripe import (PAN_DIGITS_MAX, TRACK_MAX_CHARS, Swipe, Track, encode_track, lrc, parse_swipe,
                               parse_track)

PAN = "6395000000000001"

GOOD = [
    (1, "%B6395000000000001^AHMADI/SARA^2912101000000?", PAN),
    (1, "%6395000000000001^LOYALTY^?", PAN),  # no format code
    (1, "%C6395000000000001^LOYALTY^?", PAN),  # a private format code
    (1, "%B6395000000000001?", PAN),  # the number alone
    (2, ";6395000000000001=2912101?", PAN),
    (2, ";6395000000000001?", PAN),
    (3, ";6395000000000001=1234?", PAN),
    (3, "+6395000000000001=1234?", PAN),
    (2, ";4111111111111111=2912?", "4111111111111111"),  # a bank card parses; the policy refuses it later
]


@pytest.mark.parametrize("track,text,pan", GOOD)
def test_good_tracks_with_and_without_lrc(track: int, text: str, pan: str) -> None:
    assert parse_track(track, text).pan == pan
    assert parse_track(track, text + lrc(track, text), with_lrc=True).pan == pan


def _max_track(track: int, extra: int = 0) -> str:
    """A valid track of exactly TRACK_MAX_CHARS (+extra) characters, LRC not counted."""
    if track == 1:
        head = f"%B{PAN}^"
        return head + "A" * (TRACK_MAX_CHARS[1] - len(head) - 1 + extra) + "?"
    head = f";{PAN}="
    return head + "1" * (TRACK_MAX_CHARS[track] - len(head) - 1 + extra) + "?"


BAD = [
    (2, "", "must start with ;"),
    (2, "6395000000000001=29?", "must start with ;"),
    (1, ";6395000000000001=29?", "must start with %"),
    (3, "%6395000000000001=29?", "must start with ; or \\+"),
    (2, ";6395000000000001=29", "no end sentinel"),
    (2, ";6395000000000001=29?X", "unexpected characters"),
    (2, ";63950000000000A1=29?", "character set"),
    (2, ";6395000000000001=2;9?", "character set"),  # a start sentinel inside the data
    (1, "%B6395000000000001^A%B^?", "character set"),
    (1, "%B6395000000000001^sara^?", "character set"),  # lower case is not in the 6-bit set
    (2, _max_track(2, 1), "at most 40"),
    (1, _max_track(1, 1), "at most 79"),
    (3, _max_track(3, 1), "at most 107"),
    (1, "%B6395000000000001LOYALTY?", "no field separator"),
    (2, ";12=29?", "not 4-19 digits"),
    (2, ";" + "1" * 20 + "=1?", "not 4-19 digits"),
    (2, ";=29?", "not 4-19 digits"),
    (4, ";1234?", "no track 4"),
]


@pytest.mark.parametrize("track,text,message", BAD)
def test_bad_tracks_are_named_without_their_content(track: int, text: str, message: str) -> None:
    with pytest.raises(FrameError, match=message) as err:
        parse_track(track, text)
    assert PAN not in str(err.value) and "SARA" not in str(err.value).upper()


@pytest.mark.parametrize("track", [1, 2, 3])
def test_maximum_lengths_count_the_lrc(track: int) -> None:
    text = _max_track(track)
    assert len(text) == TRACK_MAX_CHARS[track]
    assert parse_track(track, text).pan == PAN
    shorter = text[:-2] + "?"  # one character less leaves room for the LRC
    assert parse_track(track, shorter + lrc(track, shorter), with_lrc=True).pan == PAN
    with pytest.raises(FrameError, match=f"at most {TRACK_MAX_CHARS[track]}"):
        parse_track(track, text + lrc(track, text), with_lrc=True)


# LRC examples worked by hand: track 2 ";1234?" -> data values B,1,2,3,4,F -> XOR 0x0 -> '0'
LRC_CASES = [
    (2, ";1234?", "0"),
    (2, ";5?", chr(0x30 + (0xB ^ 0x5 ^ 0xF))),
    (2, ";?", chr(0x30 + (0xB ^ 0xF))),
    (1, "%?", chr(0x20 + (0x05 ^ 0x1F))),
    (1, "%B1^A^?", None),  # computed below from the definition
]


@pytest.mark.parametrize("track,text,expected", LRC_CASES)
def test_lrc_values(track: int, text: str, expected: str | None) -> None:
    base, bits = (0x20, 0x3F) if track == 1 else (0x30, 0x0F)
    value = 0
    for ch in text:
        value ^= (ord(ch) - base) & bits
    assert lrc(track, text) == (expected or chr(base + value)) == chr(base + value)


def test_lrc_is_checked_when_the_reader_sends_it() -> None:
    text = ";6395000000000001=2912?"
    good = lrc(2, text)
    assert parse_track(2, text + good, with_lrc=True).pan == PAN
    for wrong in {chr(0x30 + ((ord(good) - 0x30) ^ bit)) for bit in (1, 2, 4, 8)}:
        with pytest.raises(FrameError, match="LRC check failed") as err:
            parse_track(2, text + wrong, with_lrc=True)
        assert PAN not in str(err.value)
    with pytest.raises(FrameError, match="LRC check failed"):
        parse_track(2, text + "A", with_lrc=True)  # not even a 4-bit character
    with pytest.raises(FrameError, match="one LRC character"):
        parse_track(2, text, with_lrc=True)
    with pytest.raises(FrameError, match="one LRC character"):
        parse_track(2, text + good + good, with_lrc=True)


@pytest.mark.parametrize("track,text", [(1, "%E?"), (2, ";E?"), (3, "+E?"), (3, ";E?")])
def test_failed_tracks_with_and_without_lrc(track: int, text: str) -> None:
    assert parse_track(track, text).failed
    assert parse_track(track, text + lrc(track, text), with_lrc=True).failed


def test_member_number_prefers_the_configured_track_and_falls_back() -> None:
    t1 = parse_track(1, encode_track(1, PAN))
    t2 = parse_track(2, encode_track(2, "6395000000000002"))
    t3 = parse_track(3, encode_track(3, "6395000000000003"))
    full = Swipe((t1, t2, t3))
    assert full.member_number() == "6395000000000002"  # default: track 2
    assert full.member_number(1) == PAN and full.member_number(3) == "6395000000000003"
    partial = Swipe((t1, Track(2, None, failed=True)))
    assert partial.member_number(2) == PAN  # track 2 failed: track 1 has the number
    assert Swipe((Track(1, None, True), t2)).member_number(1) == "6395000000000002"
    with pytest.raises(FrameError, match="swipe the card again"):
        Swipe((Track(1, None, True), Track(2, None, True))).member_number()
    with pytest.raises(FrameError, match="no track with a member number"):
        Swipe(()).member_number()


def test_parse_swipe_of_back_to_back_tracks() -> None:
    text = encode_track(1, PAN) + "\r" + encode_track(2, PAN, "2912") + ";1234=1?\r\n"
    swipe = parse_swipe(text)
    assert [t.number for t in swipe.tracks] == [1, 2, 3] and swipe.member_number() == PAN
    partial = parse_swipe("%E?" + encode_track(2, PAN) + "+E?")
    assert [t.failed for t in partial.tracks] == [True, False, True] and partial.member_number(1) == PAN
    lrc_text = encode_track(1, PAN, with_lrc=True) + encode_track(2, PAN, with_lrc=True)
    assert parse_swipe(lrc_text, with_lrc=True).member_number() == PAN
    assert parse_swipe(";639?").tracks[0].failed  # too short a number: that track failed
    for bad in ("", "\r\n", "junk", ";1234?;5678?;9999?"):
        with pytest.raises(FrameError):
            parse_swipe(bad)


pans = st.text(alphabet="0123456789", min_size=4, max_size=PAN_DIGITS_MAX)
names = st.text(alphabet=" ABCDEFGHIJKLMNOPQRSTUVWXYZ/.", min_size=1, max_size=26)


@settings(max_examples=300)
@given(st.sampled_from([1, 2, 3]), pans, st.text(alphabet="0123456789", max_size=10), st.booleans())
def test_encoded_tracks_parse_back_to_the_same_number(track: int, pan: str, rest: str, with_lrc: bool) -> None:
    text = encode_track(track, pan, rest, with_lrc=with_lrc)
    assert parse_track(track, text, with_lrc=with_lrc).pan == pan


@settings(max_examples=300)
@given(pans, names, st.text(alphabet="0123456789", max_size=20), st.booleans())
def test_track_one_with_any_name_parses_back(pan: str, name: str, tail: str, with_lrc: bool) -> None:
    text = encode_track(1, pan, f"{name}^{tail}", with_lrc=with_lrc)
    if len(text) > TRACK_MAX_CHARS[1]:
        with pytest.raises(FrameError, match="at most 79"):
            parse_track(1, text, with_lrc=with_lrc)
    else:
        assert parse_track(1, text, with_lrc=with_lrc).pan == pan


@settings(max_examples=2000)
@given(st.sampled_from([1, 2, 3]), st.text(max_size=150), st.booleans())
def test_arbitrary_text_gives_a_track_or_a_driver_error(track: int, text: str, with_lrc: bool) -> None:
    try:
        result = parse_track(track, text, with_lrc=with_lrc)
    except DriverError:
        return
    assert result.failed or (result.pan is not None and result.pan.isdigit())


@settings(max_examples=1000)
@given(st.text(alphabet="%;+?=^E0123456789AB\r\n\x00\xff", max_size=120), st.booleans())
def test_arbitrary_swipe_text_gives_a_swipe_or_a_driver_error(text: str, with_lrc: bool) -> None:
    try:
        swipe = parse_swipe(text, with_lrc=with_lrc)
    except DriverError:
        return
    assert swipe.tracks and all(t.failed or (t.pan or "").isdigit() for t in swipe.tracks)
