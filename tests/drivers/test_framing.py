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


def numbers(decoder: AsciiDecoder | Msr605Decoder, data: bytes, chunk: int = 0) -> list[str]:
    out = []
    chunks = [data[i:i + chunk] for i in range(0, len(data), chunk)] if chunk else [data]
    for part in chunks:
        for swipe in decoder.feed(part).swipes:
            out.append(swipe.member_number(decoder.member_track))
    for swipe in decoder.flush().swipes:
        out.append(swipe.member_number(decoder.member_track))
    return out


FRAMES = [
    ("back to back", T1 + T2 + b"\r\n"),
    ("CR between tracks", T1 + b"\r" + T2 + b"\r" + T3 + b"\r\n"),
    ("STX and ETX", b"\x02" + T1 + T2 + b"\x03"),
    ("ESC lead-in", b"\x1b" + T1 + T2 + b"\r"),
    ("track 3 with +", T1 + T2 + b"+1234=1?\r\n"),
    ("no terminator, idle flush", T1 + T2),
    ("track 2 only", T2),
]


@pytest.mark.parametrize("name,frame", FRAMES, ids=[f[0] for f in FRAMES])
@pytest.mark.parametrize("chunk", [0, 1, 3, 7])
def test_ascii_frames_in_any_chunking(name: str, frame: bytes, chunk: int) -> None:
    assert numbers(AsciiDecoder(), frame, chunk) == [PAN]


def test_two_swipes_noise_and_half_frames() -> None:
    d = AsciiDecoder()
    got = numbers(d, b"\x00junk" + T1 + T2 + b"\r\n" + b";1234" + b"\r\n" + T2 + b"\r\n")
    assert got == [PAN, PAN]
    assert d.counters.bad_frames == 1 and d.counters.dropped_bytes >= 5


def test_overlong_frames_are_dropped_and_the_next_swipe_reads() -> None:
    d = AsciiDecoder()
    assert numbers(d, b"%" + b"A" * (FRAME_BYTES_MAX + 10) + b"\r\n" + T2 + b"\r\n") == [PAN]
    assert d.counters.bad_frames >= 1


def test_lrc_framing() -> None:
    d = AsciiDecoder(with_lrc=True)
    good = encode_track(2, PAN, "29", with_lrc=True).encode()
    assert numbers(d, good + b"\r\n") == [PAN]
    bad = good[:-1] + bytes([good[-1] ^ 1])
    assert numbers(d, bad + b"\r\n") == [] and "LRC" in d.counters.last_error


def test_msr605_answers() -> None:
    d = Msr605Decoder()
    assert numbers(d, msr605_answer(T1, T2, None), chunk=1) == [PAN]
    assert numbers(d, msr605_answer(T1, T2[:-1], None)) == [PAN]  # firmware that shares the last '?'
    failed = d.feed(msr605_answer(b"\x1b*", b"\x1b*", None))
    with pytest.raises(DriverError, match="swipe the card again"):
        failed.swipes[0].member_number()
    for status, words in ((b"1", "read/write error"), (b"2", "command format"), (b"4", "invalid command"),
                          (b"9", "bad swipe")):
        result = d.feed(msr605_answer(T1, T2, None, status=status))
        assert not result.swipes and words in str(result.errors[0])
    assert "unknown status" in str(d.feed(msr605_answer(T1, T2, None, status=b"7")).errors[0])


@settings(max_examples=1500)
@given(st.lists(st.binary(max_size=64), max_size=12), st.booleans())
def test_arbitrary_bytes_never_raise_from_the_ascii_decoder(chunks: list[bytes], with_lrc: bool) -> None:
    d = AsciiDecoder(with_lrc=with_lrc)
    for chunk in chunks:
        result = d.feed(chunk)
        for swipe in result.swipes:
            try:
                swipe.member_number()
            except DriverError:
                pass
    d.flush()


@settings(max_examples=1500)
@given(st.lists(st.binary(max_size=64) | st.sampled_from([b"\x1bs", b"\x1b\x01", b"\x1b\x02", b"?\x1c\x1b0",
                                                            b"\x1b+", b"\x1b*", T1, T2]), max_size=12))
def test_arbitrary_bytes_never_raise_from_the_msr605_decoder(chunks: list[bytes]) -> None:
    d = Msr605Decoder()
    for chunk in chunks:
        for swipe in d.feed(chunk).swipes:
            try:
                swipe.member_number()
            except DriverError:
                pass
    assert len(d._buf) <= FRAME_BYTES_MAX + 64
