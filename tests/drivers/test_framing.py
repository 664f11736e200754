"""Frame decoders: ASCII framing and the MSR605 protocol, in any chunking. Pure."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.errors import DriverError
from drivers.framing import FRAME_BYTES_MAX, AsciiDecoder, Msr605Decoder
from drivers.magstripe import encode_track
from tests.drivers.serial_emulator import msr605_answer

PAN = "6395000000000001"
T1 = encode_track(1, PAN).encode()
T2 = encode_track(2, PAN, "2912101").encode()
T3 = b";1234567890=1?"

Decoder = AsciiDecoder | Msr605Decoder


def numbers(decoder: Decoder, data: bytes, chunk: int = 0) -> list[str]:
    """Member numbers of the swipes decoded from `data` fed in `chunk`-byte pieces,
    then an idle flush; a swipe without a number shows as its error message."""
    out = []
    chunks = [data[i:i + chunk] for i in range(0, len(data), chunk)] if chunk else [data]
    swipes = [s for part in chunks for s in decoder.feed(part).swipes] + decoder.flush().swipes
    for swipe in swipes:
        try:
            out.append(swipe.member_number(decoder.member_track))
        except DriverError as exc:
            out.append(f"error: {exc}")
    return out


FRAMES = [
    ("back to back", T1 + T2 + b"\r\n"),
    ("CR between tracks", T1 + b"\r" + T2 + b"\r" + T3 + b"\r\n"),
    ("CRLF between tracks", T1 + b"\r\n" + T2 + b"\r\n" + T3 + b"\r\n"),
    ("STX and ETX", b"\x02" + T1 + T2 + b"\x03"),
    ("STX, ESC and CR ETX", b"\x02\x1b" + T1 + T2 + b"\r\x03"),
    ("ESC lead-in", b"\x1b" + T1 + T2 + b"\r"),
    ("track 3 with +", T1 + T2 + b"+1234=1?\r\n"),
    ("track 3 with ;", T1 + T2 + T3 + b"\r\n"),
    ("no terminator, idle flush", T1 + T2),
    ("track 2 only", T2),
    ("track 1 failed", b"%E?" + T2 + b"\r\n"),
    ("track 2 failed, falls back to 1", T1 + b";E?+E?\r\n"),
]


@pytest.mark.parametrize("name,frame", FRAMES, ids=[f[0] for f in FRAMES])
@pytest.mark.parametrize("chunk", [0, 1, 3, 7])
def test_ascii_frames_in_any_chunking(name: str, frame: bytes, chunk: int) -> None:
    d = AsciiDecoder()
    assert numbers(d, frame, chunk) == [PAN]
    assert d.counters.bad_frames == 0


def test_member_track_one_goes_out_as_soon_as_track_one_is_complete() -> None:
    d = AsciiDecoder(member_track=1)
    early = d.feed(T1)
    assert [s.member_number(1) for s in early.swipes] == [PAN]  # before track 2 or any terminator
    assert not d.feed(T2 + b"\r\n").swipes and not d.flush().swipes  # the rest of that swipe


def test_a_line_end_sends_the_fallback_once_the_member_track_failed() -> None:
    d = AsciiDecoder()
    assert not d.feed(T1 + b"\r\n").swipes  # track 2 may still come on the next line
    result = d.feed(b";E?\r")
    assert [s.member_number() for s in result.swipes] == [PAN]  # no wait for the idle flush
    assert not d.feed(b"\n" + T3 + b"\r\n").swipes and not d.flush().swipes  # track 3 is the same swipe


def test_all_tracks_failed_is_one_swipe_that_asks_to_swipe_again() -> None:
    assert numbers(AsciiDecoder(), b"%E?;E?+E?\r\n") == ["error: the swipe could not be read; swipe the card again"]


def test_two_swipes_noise_and_half_frames() -> None:
    d = AsciiDecoder()
    got = numbers(d, b"\x00junk" + T1 + T2 + b"\r\n" + b"noise" + b";1234" + b"\r\n" + T2 + b"\r\n")
    assert got == [PAN, PAN]
    assert d.counters.bad_frames == d.counters.half_frames == 1 and d.counters.dropped_bytes >= 14


def test_swipes_back_to_back_without_terminators() -> None:
    other = encode_track(2, "6395000000000002").encode()
    assert numbers(AsciiDecoder(), T1 + T2 + T1 + other) == [PAN, "6395000000000002"]


def test_a_track_cut_by_a_new_start_sentinel() -> None:
    d = AsciiDecoder()
    assert numbers(d, b";63950000%" + T1[1:] + T2 + b"\r\n") == [PAN]
    assert d.counters.half_frames == 1


def test_overlong_frames_are_dropped_and_the_next_swipe_reads() -> None:
    d = AsciiDecoder()
    assert numbers(d, b"%" + b"A" * (FRAME_BYTES_MAX + 10) + b"\r\n" + T2 + b"\r\n") == [PAN]
    assert d.counters.overlong_frames >= 1
    d = AsciiDecoder()
    long_noise = (b"\x02" + b"%B1234^" + b"^" * 100) * 6  # tracks that never end, in one frame
    assert numbers(d, long_noise + b"\x03" + T2 + b"\r\n") == [PAN]
    assert d.counters.bad_frames >= 1


def test_noise_alone_is_not_an_overlong_frame() -> None:
    d = AsciiDecoder()
    assert numbers(d, b"x" * (FRAME_BYTES_MAX * 3) + T2) == [PAN]
    assert d.counters.bad_frames == 0 and d.counters.dropped_bytes == FRAME_BYTES_MAX * 3


def test_lrc_framing() -> None:
    d = AsciiDecoder(with_lrc=True)
    good = encode_track(2, PAN, "29", with_lrc=True).encode()
    good1 = encode_track(1, PAN, with_lrc=True).encode()
    assert numbers(d, good + b"\r\n") == [PAN]
    assert numbers(d, good1 + good + b"\r\n") == [PAN]
    assert numbers(d, b"%E?" + good + b"\r\n") == [PAN]  # no LRC after a failed track
    bad = good[:-1] + bytes([good[-1] ^ 1])
    assert numbers(d, bad + b"\r\n") == ["error: the swipe could not be read; swipe the card again"]
    assert "LRC" in d.counters.last_error and d.counters.bad_tracks == 1
    assert numbers(d, good1 + bad + b"\r\n") == [PAN]  # track 2 misread: track 1 has the number


def test_lrc_expected_but_the_reader_sends_none() -> None:
    d = AsciiDecoder(with_lrc=True)
    assert numbers(d, T2 + b"\r\n") == ["error: the swipe could not be read; swipe the card again"]
    assert "one LRC character" in d.counters.last_error


def test_reset_drops_a_swipe_in_progress() -> None:
    d = AsciiDecoder(member_track=3)
    d.feed(T1 + T2[:5])
    d.reset()
    assert d.counters.half_frames == 1 and numbers(d, T2 + b"\r\n") == [PAN]


def test_msr605_answers() -> None:
    d = Msr605Decoder()
    assert numbers(d, msr605_answer(T1, T2, None), chunk=1) == [PAN]
    assert numbers(d, msr605_answer(T1, T2, T3)) == [PAN]
    assert numbers(d, msr605_answer(T1, T2[:-1])) == [PAN]  # firmware that shares the last '?'
    assert numbers(d, b"\xff\x00noise" + msr605_answer(None, T2, None) + b"junk") == [PAN]
    assert numbers(Msr605Decoder(member_track=1), msr605_answer(b"\x1b*", T2, None)) == [PAN]
    failed = d.feed(msr605_answer(b"\x1b*", b"\x1b*", None))
    with pytest.raises(DriverError, match="swipe the card again"):
        failed.swipes[0].member_number()
    for status, words in ((b"1", "read/write error"), (b"2", "command format"), (b"4", "invalid command"),
                          (b"9", "bad swipe")):
        result = d.feed(msr605_answer(T1, T2, None, status=status))
        assert not result.swipes and words in str(result.errors[0])
    assert "unknown status" in str(d.feed(msr605_answer(T1, T2, None, status=b"7")).errors[0])
    assert "no track data" in str(d.feed(msr605_answer(None, None, None)).errors[0])


def test_msr605_a_bad_track_leaves_the_others() -> None:
    d = Msr605Decoder()
    assert numbers(d, msr605_answer(b"%B12AB^X^?", T2, None)) == [PAN]
    assert d.counters.bad_tracks == 1
    assert numbers(d, msr605_answer(T1, T2[:-3], T3)) == [PAN]  # track 2 without '?' mid-block: failed
    assert d.counters.bad_tracks == 2


def test_msr605_half_answers_are_dropped() -> None:
    d = Msr605Decoder()
    answer = msr605_answer(T1, T2, None)
    assert numbers(d, answer[:20] + answer) == [PAN]  # cut off, then a whole answer
    assert d.counters.half_frames == 1
    assert numbers(d, answer[:-1]) == []  # the idle flush drops an answer that never closed
    assert d.counters.half_frames == 2 and numbers(d, answer) == [PAN]
    d.feed(b"\x1bs" + b"A" * (FRAME_BYTES_MAX + 1))
    assert d.counters.overlong_frames == 1 and numbers(d, answer) == [PAN]


def test_msr605_test_answers_and_noise_are_told_apart() -> None:
    d = Msr605Decoder()
    result = d.feed(b"\x1by")
    assert (result.test_answers, result.noise, result.swipes, result.errors) == (1, 0, [], [])
    result = d.feed(b"\xff\x00\x1by\x1b")  # noise, a test answer, and an ESC that may begin the next
    assert (result.test_answers, result.noise) == (1, 2)
    result = d.feed(b"y" + msr605_answer(None, T2, None))  # the kept ESC and its 'y'
    assert (result.test_answers, result.noise, len(result.swipes)) == (1, 0, 1)
    assert d.feed(b"\x1b").noise == 0 and d.flush().noise == 1  # a lone ESC at the idle flush is noise
    assert d.counters.dropped_bytes == 3
    assert AsciiDecoder().feed(b"\xff\x00junk").noise == 6


@settings(max_examples=500)
@given(st.lists(st.sampled_from([b"\x1by", b"\x1bs-answer", b"noise", b"\x1b"]), max_size=12), st.integers(1, 8))
def test_msr605_every_test_answer_is_counted_in_any_chunking(parts: list[bytes], chunk: int) -> None:
    answer = msr605_answer(None, T2, None)
    data = b"".join(answer if p == b"\x1bs-answer" else p for p in parts)
    d = Msr605Decoder()
    results = [d.feed(data[i:i + chunk]) for i in range(0, len(data), chunk)] + [d.flush()]
    expected = data.replace(answer, b"").count(b"\x1by")
    assert sum(r.test_answers for r in results) == expected
    assert sum(len(r.swipes) for r in results) == parts.count(b"\x1bs-answer")


# -- fuzzing: any bytes give swipes or counted errors, never another exception -----

FRAGMENTS = [b"\x02", b"\x03", b"\r", b"\n", b"\x1b", b"%", b";", b"+", b"?", b"E?", b"^", b"=", T1, T2, T3,
             b"%E?", b";E?", b"+E?"]


def _drain(decoder: Decoder, chunks: list[bytes]) -> None:
    for chunk in chunks:
        result = decoder.feed(chunk)
        assert all(isinstance(e, DriverError) for e in result.errors)
        for swipe in result.swipes:
            try:
                swipe.member_number(decoder.member_track)
            except DriverError:
                pass
    decoder.flush()


@settings(max_examples=1500)
@given(st.lists(st.binary(max_size=64) | st.sampled_from(FRAGMENTS), max_size=16), st.booleans(),
       st.sampled_from([1, 2, 3]))
def test_arbitrary_bytes_never_raise_from_the_ascii_decoder(chunks: list[bytes], with_lrc: bool, track: int) -> None:
    d = AsciiDecoder(member_track=track, with_lrc=with_lrc)
    _drain(d, chunks)
    assert d._current is None or len(d._current) <= FRAME_BYTES_MAX


@settings(max_examples=1500)
@given(st.lists(st.binary(max_size=64) | st.sampled_from([b"\x1bs", b"\x1b\x01", b"\x1b\x02", b"\x1b\x03",
                                                            b"?\x1c\x1b0", b"?\x1c\x1b9", b"\x1b+", b"\x1b*",
                                                            T1, T2, T3]), max_size=16))
def test_arbitrary_bytes_never_raise_from_the_msr605_decoder(chunks: list[bytes]) -> None:
    d = Msr605Decoder()
    for chunk in chunks:
        d.feed(chunk)
        assert len(d._buf) <= 2 * FRAME_BYTES_MAX
    _drain(d, [])


@settings(max_examples=500)
@given(st.text(alphabet="0123456789", min_size=4, max_size=19), st.integers(1, 40), st.binary(max_size=30),
       st.sampled_from([b"\r\n", b"\x03", b"\r", b""]))
def test_a_valid_swipe_after_noise_in_any_chunking_reads_back(pan: str, chunk: int, noise: bytes,
                                                              end: bytes) -> None:
    clean_noise = bytes(b for b in noise if b not in b"%;+\x02")  # noise that opens no frame of its own
    frame = b"\x02" + encode_track(1, pan).encode() + b"\r" + encode_track(2, pan, "2912").encode() + end
    d = AsciiDecoder()
    assert numbers(d, clean_noise + b"\r\n" + frame, chunk) == [pan]
    d = Msr605Decoder()
    answer = msr605_answer(encode_track(1, pan).encode(), encode_track(2, pan).encode(), None)
    assert numbers(d, noise + answer, chunk) == [pan]
