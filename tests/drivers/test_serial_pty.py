"""The serial magnetic stripe driver against a real PTY pair (socat)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from drivers.cards import CardPolicy, Deduper, Range
from drivers.config import SerialReaderConfig
from drivers.events import CardRead, CardRefused, ReaderStatus
from drivers.magstripe import encode_track
from drivers.serial_reader import SerialReader
from tests.drivers.serial_emulator import PtyReader, msr605_answer

MEMBER = "6395000000000001"
OTHER = "6395000000000002"
WAIT_S = 10.0
POLICY = CardPolicy((Range("6395", (16,), False),))


def swipe(number: str, end: bytes = b"\r\n") -> bytes:
    return (encode_track(1, number) + "\r" + encode_track(2, number, "2912101")).encode() + end


class Harness:
    def __init__(self, reader: SerialReader) -> None:
        self.reader = reader
        self.events: asyncio.Queue = asyncio.Queue()
        self.task: asyncio.Task | None = None

    async def start(self) -> "Harness":
        async def pump(stream: AsyncIterator) -> None:
            async for event in stream:
                await self.events.put(event)

        self.task = asyncio.create_task(pump(self.reader.events()))
        return self

    async def next(self, kind: type, state: str | None = None) -> object:
        while True:
            event = await asyncio.wait_for(self.events.get(), WAIT_S)
            if isinstance(event, kind) and (state is None or getattr(event, "state", None) == state):
                return event

    async def stop(self) -> None:
        await self.reader.close()
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


def make(pty: PtyReader, **cfg: object) -> Harness:
    config = SerialReaderConfig(kind="serial", id="msr1", port=str(pty.port), **cfg)  # type: ignore[arg-type]
    return Harness(SerialReader(config, POLICY, Deduper(timedelta(milliseconds=500))))


@pytest.fixture
def pty(tmp_path: Path):  # type: ignore[no-untyped-def]
    reader = PtyReader(tmp_path).plug()
    yield reader
    reader.unplug()


def test_swipes_in_every_chunking_become_card_reads(pty: PtyReader) -> None:
    async def run() -> None:
        h = await make(pty).start()
        try:
            await h.next(ReaderStatus, "connected")
            pty.write(swipe(MEMBER))
            read = await h.next(CardRead)
            assert read.number == MEMBER and read.masked == "639500******0001" and read.technology == "magstripe"
            pty.write_bytewise(swipe(OTHER))  # byte by byte
            assert (await h.next(CardRead)).number == OTHER
            await asyncio.sleep(0.6)  # past the de-duplication window
            frame = b"noise\xff\x00" + swipe(MEMBER, end=b"\x03")  # noise before, ETX after
            pty.write(frame[:9])
            await asyncio.sleep(0.002)
            pty.write(frame[9:])
            assert (await h.next(CardRead)).number == MEMBER
            assert h.reader.counters.dropped_bytes >= 7
        finally:
            await h.stop()

    asyncio.run(run())


def test_duplicates_count_once_and_bank_cards_are_refused_masked(pty: PtyReader) -> None:
    async def run() -> None:
        h = await make(pty).start()
        try:
            await h.next(ReaderStatus, "connected")
            pty.write(swipe(MEMBER) + swipe(MEMBER))  # the reader reports one swipe twice
            pty.write(swipe("4111111111111111"))
            reads = []
            while True:
                event = await asyncio.wait_for(h.events.get(), WAIT_S)
                if isinstance(event, CardRead):
                    reads.append(event)
                if isinstance(event, CardRefused):
                    break
            assert "bank card" in event.reason and "4111111111111111" not in event.reason
            assert event.masked == "411111******1111"
            assert len(reads) == 1  # the first swipe; the duplicate was dropped
        finally:
            await h.stop()

    asyncio.run(run())


def test_a_failed_swipe_is_reported_and_idle_flush_ends_a_swipe(pty: PtyReader) -> None:
    async def run() -> None:
        h = await make(pty, member_track=1).start()
        try:
            await h.next(ReaderStatus, "connected")
            pty.write(b"%E?;E?")  # no terminator: the quiet line ends it
            refused = await h.next(CardRefused)
            assert refused.code == "bad_swipe" and "swipe the card again" in refused.reason
            pty.write(encode_track(1, MEMBER).encode())
            assert (await h.next(CardRead)).number == MEMBER
        finally:
            await h.stop()

    asyncio.run(run())


def test_msr605_protocol(pty: PtyReader) -> None:
    async def run() -> None:
        h = await make(pty, framing="msr605").start()
        try:
            await h.next(ReaderStatus, "connected")
            assert pty.read_host_bytes(4) == b"\x1ba\x1br"  # reset, then ISO read
            pty.write(msr605_answer(encode_track(1, MEMBER).encode(), encode_track(2, MEMBER, "29").encode(), None))
            assert (await h.next(CardRead)).number == MEMBER
            assert pty.read_host_bytes(2) == b"\x1br"  # re-armed
            pty.write(msr605_answer(None, None, None, status=b"9"))
            refused = await h.next(CardRefused)
            assert "bad swipe" in refused.reason
        finally:
            await h.stop()

    asyncio.run(run())


def test_unplug_and_replug_recover_without_a_new_reader(pty: PtyReader) -> None:
    async def run() -> None:
        h = await make(pty).start()
        try:
            await h.next(ReaderStatus, "connected")
            pty.unplug()
            down = await h.next(ReaderStatus, "disconnected")
            assert "went away" in down.detail or "cannot open" in down.detail
            pty.plug()
            await h.next(ReaderStatus, "connected")
            pty.write(swipe(MEMBER))
            assert (await h.next(CardRead)).number == MEMBER
        finally:
            await h.stop()

    asyncio.run(run())
