"""A reader fed card numbers, one per line, for the demo and for tests.

The source is a Unix socket the reader listens on (any number of writers, e.g.
`echo 6395... | socat - UNIX-CONNECT:path`), a FIFO, or a regular file that is
followed like `tail -f`. Each line goes through the same intake as a real read.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

from drivers.base import Reader, utcnow
from drivers.cards import CardCheck, Deduper
from drivers.events import ReaderEvent, ReaderStatus
from drivers.intake import Intake

LINE_BYTES_MAX = 128  # a card number is at most 32 characters; longer lines are noise
QUEUE_EVENTS_MAX = 256
FILE_POLL_S = 0.05


class SimulatedReader(Reader):
    kind = "simulated"

    def __init__(self, reader_id: str, source: Path, policy: CardCheck, deduper: Deduper) -> None:
        super().__init__(reader_id)
        self.source = source
        self.intake = Intake(reader_id, "simulated", policy, deduper)
        self._queue: asyncio.Queue[ReaderEvent] = asyncio.Queue(QUEUE_EVENTS_MAX)
        self._closed = asyncio.Event()
        self._server: asyncio.base_events.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.dropped_lines = 0

    def _line(self, raw: bytes) -> None:
        text = raw.strip().decode("ascii", "replace")
        if not text:
            return
        if len(raw) > LINE_BYTES_MAX or not text.isalnum():
            self.dropped_lines += 1
            return
        event = self.intake.card(text, utcnow())
        if event is not None and not self._queue.full():
            self._queue.put_nowait(event)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        skipping = False  # inside an overlong line: drop everything up to its newline
        try:
            while not reader.at_eof():
                try:
                    raw = await reader.readuntil(b"\n")
                except asyncio.IncompleteReadError as exc:
                    raw = exc.partial
                except asyncio.LimitOverrunError as exc:
                    if not skipping:
                        self.dropped_lines += 1
                    skipping = True
                    await reader.readexactly(exc.consumed)  # what was buffered of the overlong line
                    continue
                if skipping:
                    skipping = False  # this is the overlong line's tail
                    continue
                self._line(raw)
        finally:
            writer.close()

    async def _follow(self, path: Path) -> None:
        """Follow a file or FIFO line by line until closed."""
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        buffer = b""
        try:
            while not self._closed.is_set():
                try:
                    chunk = os.read(fd, 4096)
                except BlockingIOError:
                    chunk = b""
                if chunk:
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for raw in lines:
                        self._line(raw)
                    if len(buffer) > LINE_BYTES_MAX:
                        self.dropped_lines += 1
                        buffer = b""
                else:
                    await asyncio.sleep(FILE_POLL_S)
        finally:
            os.close(fd)

    async def _start(self) -> None:
        path = self.source
        mode = path.stat().st_mode if path.exists() else None
        if mode is None or stat.S_ISSOCK(mode):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            path.parent.mkdir(parents=True, exist_ok=True)
            self._server = await asyncio.start_unix_server(self._client, path=str(path), limit=LINE_BYTES_MAX)
        else:
            self._task = asyncio.create_task(self._follow(path), name=f"reader-{self.reader_id}")

    async def events(self) -> AsyncIterator[ReaderEvent]:
        await self._start()
        yield ReaderStatus(self.reader_id, self.kind, "connected", f"reading {self.source}", utcnow())
        while not self._closed.is_set():
            getter = asyncio.ensure_future(self._queue.get())
            closer = asyncio.ensure_future(self._closed.wait())
            done, _ = await asyncio.wait({getter, closer}, return_when=asyncio.FIRST_COMPLETED)
            closer.cancel()
            if getter in done:
                yield getter.result()
            else:
                getter.cancel()

    async def close(self) -> None:
        self._closed.set()
        if self._server is not None:
            self._server.close()
            self._server = None
            with contextlib.suppress(FileNotFoundError):
                self.source.unlink()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
