"""Track parsing (ISO/IEC 7811/7813): examples and properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.errors import DriverError, FrameError
from drivers.magstripe import Swipe, Track, encode_track, lrc, parse_track

PAN = "6395000000000001"

GOOD = [
    (1, "%B6395000000000001^AHMADI/SARA^2912101000000?", PAN),
    (1, "%6395000000000001^LOYALTY^?", PAN),  # no format code
    (2, ";6395000000000001=2912101?", PAN),
    (2, ";6395000000000001?", PAN),
    (3, ";6395000000000001=1234?", PAN),
    (3, "+6395000000000001=1234?", PAN),
]


@pytest.mark.parametrize("track,text,pan", GOOD)
def test_good_tracks(track: int, text: str, pan: str) -> None:
    assert parse_track(track, text).pan == pan
    assert parse_track(track, text + lrc(track, text), with_lrc=True).pan == pan


BAD = [
    (2, "6395000000000001=29?", "must start with ;"),
    (2, ";6395000000000001=29", "no end sentinel"),
    (2, ";6395000000000001=29?X", "unexpected characters"),
    (2, ";63950000000000A1=29?", "character set"),
    (2, ";" + "1" * 40 + "?", "at most 40"),
    (1, "%B" + "1" * 80 + "?", "at most 79"),
    (1, "%B6395000000000001LOYALTY?", "no field separator"),
    (2, ";12=29?", "not 4-19 digits"),
    (2, ";" + "1" * 20 + "=1?", "not 4-19 digits"),
    (4, ";1234?", "no track 4"),
]


@pytest.mark.parametrize("track,text,message", BAD)
def test_bad_tracks_are_named_without_their_content(track: int, text: str, message: str) -> None:
    with pytest.raises(FrameError, match=message) as err:
        parse_track(track, text)
    assert PAN not in str(err.value)


def test_lrc_is_checked_when_the_reader_sends_it() -> None:
    text = ";6395000000000001=2912?"
    good = lrc(2, text)
    bad = chr(0x30 + ((ord(good) - 0x30) ^ 1))
    assert parse_track(2, text + good, with_lrc=True).pan == PAN
    with pytest.raises(FrameError, match="LRC check failed"):
        parse_track(2, text + bad, with_lrc=True)
    with pytest.raises(FrameError, match="one LRC character"):
        parse_track(2, text, with_lrc=True)


def test_failed_tracks_and_member_number_fallback() -> None:
    assert parse_track(1, "%E?").failed and parse_track(2, ";E?").failed and parse_track(3, "+E?").failed
    partial = Swipe((parse_track(1, encode_track(1, PAN)), Track(2, None, failed=True)))
    assert partial.member_number(2) == PAN  # track 2 failed: track 1 has the number
    with pytest.raises(FrameError, match="swipe the card again"):
        Swipe((Track(1, None, True), Track(2, None, True))).member_number()
    with pytest.raises(FrameError, match="no track with a member number"):
        Swipe(()).member_number()


pans = st.text(alphabet="0123456789", min_size=4, max_size=19)


@settings(max_examples=300)
@given(st.sampled_from([1, 2, 3]), pans, st.text(alphabet="0123456789", max_size=10), st.booleans())
def test_encoded_tracks_parse_back_to_the_same_number(track: int, pan: str, rest: str, with_lrc: bool) -> None:
    text = encode_track(track, pan, rest, with_lrc=with_lrc)
    assert parse_track(track, text, with_lrc=with_lrc).pan == pan


@settings(max_examples=2000)
@given(st.sampled_from([1, 2, 3]), st.text(max_size=150), st.booleans())
def test_arbitrary_text_gives_a_track_or_a_driver_error(track: int, text: str, with_lrc: bool) -> None:
    try:
        result = parse_track(track, text, with_lrc=with_lrc)
    except DriverError:
        return
    assert result.failed or (result.pan is not None and result.pan.isdigit())
