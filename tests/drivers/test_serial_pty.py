"""The serial magnetic stripe driver against a real PTY pair (socat): the driver opens
one end with pyserial, the test writes the reader's bytes into the other. Waits have
generous timeouts; nothing asserts on a sleep."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import serial

from drivers.cards import Deduper
from ledger.cardpolicy import CardPolicy, CardRange as Range
from drivers.config import SerialReaderConfig
from drivers.events import CardRead, CardRefused, ReaderStatus
from drivers import serial_reader
from drivers.magstripe import encode_track
from drivers.serial_reader import SerialReader
from tests.drivers.serial_emulator import Msr605Device, PtyReader, msr605_answer, noise

MEMBERS = [f"63950000000000{i:02d}" for i in range(1, 10)]
BANK_CARD = "4111111111111111"
WAIT_S = 10.0  # generous: a loaded CI machine; a passing run takes milliseconds
DEDUPE_WINDOW = timedelta(seconds=30)  # longer than any test: a second read of a card is a duplicate
SWIPE_GAP_S = 0.2  # a person's swipes are further apart than the reader's idle flush (30 ms)
POLICY = CardPolicy((Range("6395", (16,), False),))


def swipe(number: str, end: bytes = b"\r\n", lrc: bool = False) -> bytes:
    return (encode_track(1, number, with_lrc=lrc) + "\r"
            + encode_track(2, number, "2912101", with_lrc=lrc)).encode() + end


class Harness:
    def __init__(self, reader: SerialReader) -> None:
        self.reader = reader
        self.events: asyncio.Queue[Any] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> "Harness":
        async def pump(stream: AsyncIterator[Any]) -> None:
            async for event in stream:
                await self.events.put(event)

        self.task = asyncio.create_task(pump(self.reader.events()))
        return self

    async def next(self, kind: type, state: str | None = None) -> Any:
        """The next event of `kind` (and `state`), skipping others."""
        while True:
            event = await asyncio.wait_for(self.events.get(), WAIT_S)
            if isinstance(event, kind) and (state is None or getattr(event, "state", None) == state):
                return event

    async def stop(self) -> None:
        await self.reader.close()
        if self.task is not None:
            await asyncio.wait_for(self.task, WAIT_S)  # the stream ends by itself after close()


def make(pty: PtyReader, **cfg: Any) -> Harness:
    config = SerialReaderConfig(kind="serial", id="msr1", port=str(pty.port), **cfg)
    return Harness(SerialReader(config, POLICY, Deduper(DEDUPE_WINDOW)))


@pytest.fixture
def pty(tmp_path: Path) -> Iterator[PtyReader]:
    reader = PtyReader(tmp_path).plug()
    yield reader
    reader.unplug()


def test_swipes_in_every_chunking_become_card_reads(pty: PtyReader) -> None:
    async def run() -> None:
        h = await make(pty).start()
        try:
            await h.next(ReaderStatus, "connected")
            pty.write(swipe(MEMBERS[0]))  # whole frame
            read = await h.next(CardRead)
            assert (read.number, read.masked, read.technology) == (MEMBERS[0], "639500******0001", "magstripe")
            pty.write_bytewise(swipe(MEMBERS[1]))  # byte by byte
            assert (await h.next(CardRead)).number == MEMBERS[1]
            frame = b"\x02" + swipe(MEMBERS[2], end=b"\x03")
            pty.write_split(frame, 3, 20, len(frame) - 4)  # split across writes, inside tracks
            assert (await h.next(CardRead)).number == MEMBERS[2]
            pty.write(noise(40) + swipe(MEMBERS[3]) + noise(25) + b"\r\n" + swipe(MEMBERS[4]))  # noise between
            assert (await h.next(CardRead)).number == MEMBERS[3]
            assert (await h.next(CardRead)).number == MEMBERS[4]
            assert h.reader.counters.dropped_bytes >= 65 and h.reader.counters.swipes == 5
            assert h.reader.stats()["connected"] is True
        finally:
            await h.stop()

    asyncio.run(run())


def test_duplicates_count_once_and_bank_cards_are_refused_masked(pty: PtyReader,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    async def run() -> None:
        h = await make(pty).start()
        try:
            await h.next(ReaderStatus, "connected")
            pty.write(swipe(MEMBERS[0]) + swipe(MEMBERS[0]))  # one card read twice within the window
            pty.write(swipe(BANK_CARD))
            reads, refused = [], None
            while refused is None:
                event = await asyncio.wait_for(h.events.get(), WAIT_S)
                if isinstance(event, CardRead):
                    reads.append(event)
                elif isinstance(event, CardRefused):
                    refused = event
            assert [r.number for r in reads] == [MEMBERS[0]]  # the duplicate was dropped
            assert refused.code == "bank_card" and refused.masked == "411111******1111"
            assert "bank card" in refused.reason and BANK_CARD not in refused.reason
            assert BANK_CARD not in str(refused.to_event())
        finally:
            await h.stop()

    asyncio.run(run())
    logged = caplog.text
    assert "639500******0001" in logged  # the driver logs reads, masked
    assert BANK_CARD not in logged and MEMBERS[0] not in logged and "MEMBER/LOYALTY" not in logged


def test_failed_and_misread_swipes_are_reported_and_idle_flush_ends_a_swipe(pty: PtyReader) -> None:
    async def run() -> None:
        h = await make(pty, member_track=1, lrc=True).start()
        try:
            await h.next(ReaderStatus, "connected")
            pty.write(b"%E?;E?")  # no terminator: the quiet line ends it
            refused = await h.next(CardRefused)
            assert refused.code == "bad_swipe" and "swipe the card again" in refused.reason
            pty.write(swipe(MEMBERS[0], lrc=True))
            assert (await h.next(CardRead)).number == MEMBERS[0]
            # the read went out at track 1; a next swipe comes after the rest of this one, as by hand
            await asyncio.sleep(SWIPE_GAP_S)
            bad = bytearray(encode_track(2, MEMBERS[1], with_lrc=True).encode())
            bad[-1] ^= 1  # a misread: the LRC does not match
            pty.write(bytes(bad) + b"\r\n")
            assert "swipe the card again" in (await h.next(CardRefused)).reason
            assert "LRC" in h.reader.counters.last_error and h.reader.counters.bad_tracks == 1
        finally:
            await h.stop()

    asyncio.run(run())


def test_msr605_protocol(pty: PtyReader) -> None:
    device = Msr605Device(pty).start()

    async def run() -> None:
        h = await make(pty, framing="msr605").start()
        try:
            await h.next(ReaderStatus, "connected")
            device.swipe(msr605_answer(encode_track(1, MEMBERS[0]).encode(),
                                       encode_track(2, MEMBERS[0], "29").encode(), None))
            assert (await h.next(CardRead)).number == MEMBERS[0]
            assert device.commands[:3] == [b"\x1ba", b"\x1be", b"\x1br"]  # reset, test, then ISO read
            device.swipe(msr605_answer(None, None, None, status=b"9"))  # re-armed after the read
            assert "bad swipe" in (await h.next(CardRefused)).reason
            device.swipe(msr605_answer(b"\x1b*", encode_track(2, MEMBERS[1]).encode(), b"\x1b+"))
            assert (await h.next(CardRead)).number == MEMBERS[1]
            assert device.commands[-1] == b"\x1br" and b"\x1ba" in device.commands[2:]  # reset after the error
        finally:
            await h.stop()

    try:
        asyncio.run(run())
    finally:
        device.stop()


REARM_IDLE_S = 0.3  # the driver's quiet-line re-arm, shortened so a test takes seconds, not minutes
ANSWER_TIMEOUT_S = 0.3


@pytest.fixture
def quick_rearm(monkeypatch: pytest.MonkeyPatch) -> None:
    # raising=False: on a driver without the re-arm the tests below must fail on the
    # missing behaviour, not on a missing constant
    monkeypatch.setattr(serial_reader, "MSR605_REARM_IDLE_S", REARM_IDLE_S, raising=False)
    monkeypatch.setattr(serial_reader, "MSR605_ANSWER_TIMEOUT_S", ANSWER_TIMEOUT_S, raising=False)


def test_msr605_that_was_not_listening_is_armed_again_and_reads(pty: PtyReader, quick_rearm: None) -> None:
    device = Msr605Device(pty, listening=False).start()  # e.g. powered on after the port opened

    async def run() -> None:
        h = await make(pty, framing="msr605").start()
        try:
            assert await asyncio.to_thread(device.wait_lost_read), "the driver never sent ESC r at all"
            device.listen()
            device.swipe(msr605_answer(None, encode_track(2, MEMBERS[0]).encode(), None))
            assert (await h.next(CardRead)).number == MEMBERS[0]
            assert h.reader.stats()["connected"] is True
            device.power_cycle()  # replugged behind its adapter, or it flushed its input: our ESC r is gone
            device.swipe(msr605_answer(None, encode_track(2, MEMBERS[1]).encode(), None))
            assert (await h.next(CardRead)).number == MEMBERS[1]
        finally:
            await h.stop()

    try:
        asyncio.run(run())
    finally:
        device.stop()


def test_msr605_that_does_not_answer_is_reported_until_it_answers(pty: PtyReader, quick_rearm: None) -> None:
    device = Msr605Device(pty, listening=False).start()  # the port opens; nothing answers on it

    async def run() -> None:
        h = await make(pty, framing="msr605").start()
        try:
            status = await h.next(ReaderStatus)
            assert status.state == "error" and "does not answer" in status.detail and str(pty.port) in status.detail
            assert h.reader.stats()["connected"] is False
            device.listen()
            back = await h.next(ReaderStatus)
            assert back.state == "connected" and h.reader.stats()["connected"] is True
            device.swipe(msr605_answer(None, encode_track(2, MEMBERS[0]).encode(), None))
            assert (await h.next(CardRead)).number == MEMBERS[0]
        finally:
            await h.stop()

    try:
        asyncio.run(run())
    finally:
        device.stop()


def test_msr605_noise_on_the_line_makes_the_driver_arm_the_reader_again(pty: PtyReader) -> None:
    device = Msr605Device(pty).start()

    async def run() -> None:
        h = await make(pty, framing="msr605").start()
        try:
            await h.next(ReaderStatus, "connected")
            assert device.wait_armed()
            device.power_cycle()
            pty.write(noise(12))  # a reader starting up again says something like this
            device.swipe(msr605_answer(None, encode_track(2, MEMBERS[0]).encode(), None), timeout_s=2.0)
            assert (await h.next(CardRead)).number == MEMBERS[0]  # well before the quiet-line re-arm
        finally:
            await h.stop()

    try:
        asyncio.run(run())
    finally:
        device.stop()


def test_unplug_and_replug_recover_without_a_new_reader(pty: PtyReader) -> None:
    async def run() -> None:
        h = await make(pty).start()
        try:
            await h.next(ReaderStatus, "connected")
            pty.write(swipe(MEMBERS[0])[:20])  # half a swipe, then the cable comes out
            pty.unplug()
            down = await h.next(ReaderStatus, "disconnected")
            assert "went away" in down.detail or "cannot open" in down.detail
            assert h.reader.stats()["connected"] is False
            pty.plug()  # a new socat on the same link path
            await h.next(ReaderStatus, "connected")
            pty.write(swipe(MEMBERS[1]))
            assert (await h.next(CardRead)).number == MEMBERS[1]  # nothing of the half swipe joined it
            assert h.reader.reconnects == 1
        finally:
            await h.stop()

    asyncio.run(run())


@pytest.mark.parametrize("plugged", [True, False], ids=["connected", "port missing"])
def test_close_is_prompt_idempotent_and_releases_the_port(pty: PtyReader, plugged: bool) -> None:
    async def run() -> None:
        if not plugged:
            pty.unplug()
        h = await make(pty).start()
        await h.next(ReaderStatus, "connected" if plugged else "disconnected")
        started = time.monotonic()
        await h.reader.close()
        assert time.monotonic() - started < 1.0
        await asyncio.wait_for(h.task, WAIT_S)  # the event stream ended
        await h.reader.close()  # a second close is harmless
        assert [e async for e in h.reader.events()] == []  # a closed reader stays closed

    asyncio.run(run())
    if plugged:
        with serial.Serial(str(pty.port), exclusive=True):  # the driver let go of the port
            pass
