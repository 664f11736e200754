"""The simulated reader fed from a Unix socket, a FIFO or a followed file."""

from __future__ import annotations

import asyncio
import os
import socket
from datetime import timedelta
from pathlib import Path

from drivers.cards import Deduper
from ledger.cardpolicy import CardPolicy, CardRange as Range
from drivers.events import CardRead, CardRefused, ReaderStatus
from drivers.simulated import SimulatedReader

WAIT_S = 10.0
POLICY = CardPolicy((Range("6395", (16,), False),))


async def _collect(reader: SimulatedReader, feed, want: int) -> list:  # type: ignore[no-untyped-def]
    stream = reader.events()
    assert isinstance(await asyncio.wait_for(stream.__anext__(), WAIT_S), ReaderStatus)
    await asyncio.to_thread(feed)
    got = []
    try:
        while len(got) < want:
            got.append(await asyncio.wait_for(stream.__anext__(), WAIT_S))
    finally:
        await reader.close()
    return got


def _reader(path: Path) -> SimulatedReader:
    return SimulatedReader("sim", path, POLICY, Deduper(timedelta(0)))


def test_a_unix_socket_source(tmp_path: Path) -> None:
    path = tmp_path / "sim.sock"

    def feed() -> None:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(path))
            s.sendall(b"6395000000000001\nnot a card!\n" + b"9" * 500 + b"\n4111111111111111\n")

    events = asyncio.run(_collect(_reader(path), feed, 2))
    assert isinstance(events[0], CardRead) and events[0].number == "6395000000000001"
    assert isinstance(events[1], CardRefused) and events[1].masked == "411111******1111"
    assert not path.exists()  # the socket is removed on close


def test_a_fifo_source(tmp_path: Path) -> None:
    path = tmp_path / "sim.fifo"
    os.mkfifo(path)

    def feed() -> None:
        with open(path, "wb") as fh:
            fh.write(b"6395000000000002\n")

    events = asyncio.run(_collect(_reader(path), feed, 1))
    assert events[0].number == "6395000000000002"


def test_a_followed_file(tmp_path: Path) -> None:
    path = tmp_path / "reads.txt"
    path.write_bytes(b"")

    def feed() -> None:
        with open(path, "ab") as fh:
            fh.write(b"6395000000000003\n")

    events = asyncio.run(_collect(_reader(path), feed, 1))
    assert events[0].number == "6395000000000003"
