"""Keyboard-wedge readers: USB magnetic stripe readers that "type" the tracks as key
presses. On Linux the driver reads the reader's own input device through evdev and
grabs it, so the track text never reaches the till's focused window. Optional:
needs python-evdev (`pip install 'loyalty-terminal-agent[wedge]'`) and read access
to /dev/input/event* (root or the `input` group).

The key presses become text by a US keyboard layout (what these readers emulate);
the text goes through the same ASCII framing and track parser as a serial reader.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from drivers.base import Reader, next_backoff, utcnow
from drivers.cards import CardCheck, Deduper
from drivers.events import ReaderEvent, ReaderStatus
from drivers.framing import AsciiDecoder, Result
from drivers.intake import Intake

KEY_LEFTSHIFT, KEY_RIGHTSHIFT, KEY_ENTER = 42, 54, 28
_PLAIN = {2: "1", 3: "2", 4: "3", 5: "4", 6: "5", 7: "6", 8: "7", 9: "8", 10: "9", 11: "0", 12: "-", 13: "=",
          39: ";", 40: "'", 51: ",", 52: ".", 53: "/", 57: " "}
_SHIFTED = {2: "!", 3: "@", 4: "#", 5: "$", 6: "%", 7: "^", 8: "&", 9: "*", 10: "(", 11: ")", 12: "_", 13: "+",
            39: ":", 40: '"', 51: "<", 52: ">", 53: "?", 57: " "}
_LETTERS = dict(zip((16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 30, 31, 32, 33, 34, 35, 36, 37, 38,
                     44, 45, 46, 47, 48, 49, 50), "qwertyuiopasdfghjklzxcvbnm"))
KEY_DOWN, KEY_UP = 1, 0
IDLE_FLUSH_S = 0.05  # wedges type a swipe in one burst; this much quiet ends it


class Keymap:
    """Key events (code, value) to bytes, with shift state. Pure."""

    def __init__(self) -> None:
        self.shift = False

    def feed(self, code: int, value: int) -> bytes:
        if code in (KEY_LEFTSHIFT, KEY_RIGHTSHIFT):
            self.shift = value != KEY_UP
            return b""
        if value != KEY_DOWN:
            return b""  # releases and auto-repeats type nothing
        if code == KEY_ENTER:
            return b"\n"
        if code in _LETTERS:
            ch = _LETTERS[code]
            return (ch.upper() if self.shift else ch).encode()
        table = _SHIFTED if self.shift else _PLAIN
        return table[code].encode() if code in table else b""


class WedgeReader(Reader):
    kind = "wedge"

    def __init__(self, cfg: Any, policy: CardCheck, deduper: Deduper) -> None:
        super().__init__(cfg.id)
        self.cfg = cfg
        self.intake = Intake(cfg.id, "magstripe", policy, deduper)
        self.decoder = AsciiDecoder(cfg.member_track)
        self.keymap = Keymap()
        self._closed = asyncio.Event()
        self._device: Any = None

    def _events_of(self, result: Result) -> list[ReaderEvent]:
        events = (self.intake.swipe(swipe, self.cfg.member_track, utcnow()) for swipe in result.swipes)
        return [e for e in events if e is not None]

    def flush(self) -> list[ReaderEvent]:
        """The reader went quiet: what was typed so far is the whole swipe."""
        return self._events_of(self.decoder.flush())

    def type_keys(self, keys: list[tuple[int, int]]) -> list[ReaderEvent]:
        """Key events in, card events out (what the device loop does; also for tests)."""
        data = b"".join(self.keymap.feed(code, value) for code, value in keys)
        return self._events_of(self.decoder.feed(data)) if data else []

    async def events(self) -> AsyncIterator[ReaderEvent]:
        try:
            import evdev  # type: ignore[import-not-found]
        except ImportError:
            yield ReaderStatus(self.reader_id, self.kind, "error",
                               "python-evdev is not installed: pip install 'loyalty-terminal-agent[wedge]'", utcnow())
            await self._closed.wait()
            return
        backoff = 0.0
        while not self._closed.is_set():
            try:
                self._device = evdev.InputDevice(self.cfg.device)
                if self.cfg.grab:
                    self._device.grab()  # the track text must not reach the till's window
            except OSError as exc:
                yield ReaderStatus(self.reader_id, self.kind, "disconnected", f"cannot open {self.cfg.device}: {exc}",
                                   utcnow())
                backoff = next_backoff(backoff)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._closed.wait(), timeout=backoff)
                continue
            backoff = 0.0
            yield ReaderStatus(self.reader_id, self.kind, "connected", self.cfg.device, utcnow())
            try:
                while not self._closed.is_set():
                    try:
                        ev = await asyncio.wait_for(self._device.async_read_one(), timeout=IDLE_FLUSH_S)
                    except asyncio.TimeoutError:  # quiet: a swipe without an end mark is complete
                        for event in self.flush():
                            yield event
                        continue
                    if ev.type == evdev.ecodes.EV_KEY:
                        for event in self.type_keys([(ev.code, ev.value)]):
                            yield event
            except OSError as exc:
                yield ReaderStatus(self.reader_id, self.kind, "disconnected", f"{self.cfg.device} went away: {exc}",
                                   utcnow())
            finally:
                with contextlib.suppress(Exception):
                    self._device.close()
                self._device = None

    async def close(self) -> None:
        self._closed.set()
        if self._device is not None:
            with contextlib.suppress(Exception):
                self._device.close()
