"""Keyboard-wedge readers: key presses of a US layout become swipes. The evdev device
loop needs /dev/input and python-evdev; the typing and parsing is tested here."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.cards import Deduper
from ledger.cardpolicy import CardPolicy, CardRange as Range
from drivers.config import WedgeReaderConfig
from drivers.events import CardRead, CardRefused, ReaderStatus
from drivers.magstripe import encode_track
from drivers.wedge import KEY_DOWN, KEY_ENTER, KEY_LEFTSHIFT, KEY_UP, Keymap, WedgeReader, _LETTERS, _PLAIN, _SHIFTED

MEMBER = "6395000000000077"
_BY_CHAR = {v: (k, False) for k, v in _PLAIN.items()} | {v: (k, True) for k, v in _SHIFTED.items() if v != " "}
_BY_CHAR |= {v: (k, False) for k, v in _LETTERS.items()} | {v.upper(): (k, True) for k, v in _LETTERS.items()}


def keys_for(text: str) -> list[tuple[int, int]]:
    """What a wedge reader sends for `text`: shift down/up around shifted keys."""
    out: list[tuple[int, int]] = []
    for ch in text:
        if ch == "\n":
            out += [(KEY_ENTER, KEY_DOWN), (KEY_ENTER, KEY_UP)]
            continue
        code, shifted = _BY_CHAR[ch]
        if shifted:
            out.append((KEY_LEFTSHIFT, KEY_DOWN))
        out += [(code, KEY_DOWN), (code, KEY_UP)]
        if shifted:
            out.append((KEY_LEFTSHIFT, KEY_UP))
    return out


def reader() -> WedgeReader:
    cfg = WedgeReaderConfig(kind="wedge", id="usb1", device="/dev/input/event99")
    return WedgeReader(cfg, CardPolicy((Range("6395", (16,), False),)), Deduper(timedelta(0)))


def test_typed_tracks_become_a_card_read() -> None:
    swipe = encode_track(1, MEMBER, "AHMADI/SARA") + encode_track(2, MEMBER, "2912101") + "\n"
    events = reader().type_keys(keys_for(swipe))
    assert [type(e) for e in events] == [CardRead] and events[0].number == MEMBER


def test_a_swipe_without_its_member_track_ends_when_the_reader_goes_quiet() -> None:
    r = reader()
    assert r.type_keys(keys_for(encode_track(1, MEMBER, "AHMADI/SARA") + "\n")) == []  # track 2 may follow
    events = r.flush()
    assert [type(e) for e in events] == [CardRead] and events[0].number == MEMBER


def test_a_bank_card_typed_by_a_wedge_is_refused_masked() -> None:
    events = reader().type_keys(keys_for(encode_track(2, "4111111111111111", "29") + "\n"))
    assert isinstance(events[0], CardRefused) and events[0].masked == "411111******1111"


def test_releases_and_auto_repeat_type_nothing() -> None:
    km = Keymap()
    assert km.feed(2, KEY_UP) == b"" and km.feed(2, 2) == b"" and km.feed(2, KEY_DOWN) == b"1"
    assert km.feed(KEY_LEFTSHIFT, KEY_DOWN) == b"" and km.feed(6, KEY_DOWN) == b"%" and km.feed(30, KEY_DOWN) == b"A"
    assert km.feed(KEY_LEFTSHIFT, KEY_UP) == b"" and km.feed(30, KEY_DOWN) == b"a"
    assert km.feed(999, KEY_DOWN) == b""


@settings(max_examples=500)
@given(st.lists(st.tuples(st.integers(0, 300), st.integers(0, 2)), max_size=200))
def test_arbitrary_key_events_never_raise(keys: list[tuple[int, int]]) -> None:
    reader().type_keys(keys)


def test_without_python_evdev_the_reader_reports_how_to_install_it() -> None:
    async def run() -> ReaderStatus:
        r = reader()
        stream = r.events()
        first = await stream.__anext__()
        await r.close()
        return first  # type: ignore[return-value]

    try:
        import evdev  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        status = asyncio.run(run())
        assert status.state == "error" and "wedge" in status.detail
    else:  # with evdev, a device that does not exist is reported, not raised
        status = asyncio.run(run())
        assert status.state == "disconnected" and "/dev/input/event99" in status.detail
