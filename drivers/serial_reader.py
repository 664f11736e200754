"""Magnetic stripe readers on a serial port (pyserial): ASCII framing or the MSR605
ESC protocol. Survives unplugging: the port is reopened with backoff when it returns.

Blocking reads run on one thread per reader with a short read timeout, so close()
takes effect within READ_TIMEOUT_S; events cross to asyncio through a bounded queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import serial

from drivers.base import Reader, next_backoff, utcnow
from drivers.cards import CardPolicy, Deduper
from drivers.config import SerialReaderConfig
from drivers.errors import FrameError
from drivers.events import CardRefused, ReaderEvent, ReaderStatus
from drivers.framing import MSR_READ_ISO, MSR_RESET, AsciiDecoder, Msr605Decoder, Result
from drivers.intake import Intake

log = logging.getLogger("drivers.serial")

READ_TIMEOUT_S = 0.01  # how long one read waits when idle; bounds close() and the idle flush
READ_CHUNK_MAX = 4096
QUEUE_EVENTS_MAX = 256
PARITIES = {"N": serial.PARITY_NONE, "E": serial.PARITY_EVEN, "O": serial.PARITY_ODD}


class SerialReader(Reader):
    kind = "serial"

    def __init__(self, cfg: SerialReaderConfig, policy: CardPolicy, deduper: Deduper) -> None:
        super().__init__(cfg.id)
        self.cfg = cfg
        self.intake = Intake(cfg.id, "magstripe", policy, deduper)
        self.decoder: AsciiDecoder | Msr605Decoder = (
            Msr605Decoder(cfg.member_track) if cfg.framing == "msr605"
            else AsciiDecoder(cfg.member_track, with_lrc=cfg.lrc))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[ReaderEvent] | None = None
        self.dropped_events = 0

    # -- the reading thread -------------------------------------------------------

    def _put(self, event: ReaderEvent) -> None:
        assert self._loop is not None and self._queue is not None
        queue = self._queue

        def deliver() -> None:
            if queue.full():
                self.dropped_events += 1
                return
            queue.put_nowait(event)

        with contextlib.suppress(RuntimeError):  # the loop closed under us: we are stopping
            self._loop.call_soon_threadsafe(deliver)

    def _status(self, state: str, detail: str) -> None:
        self._put(ReaderStatus(self.reader_id, self.kind, state, detail, utcnow()))

    def _open(self) -> serial.Serial:
        port = serial.Serial(
            self.cfg.port, baudrate=self.cfg.baudrate, bytesize=self.cfg.bytesize,
            parity=PARITIES[self.cfg.parity], stopbits=self.cfg.stopbits, timeout=READ_TIMEOUT_S,
            exclusive=True,
        )
        if self.cfg.framing == "msr605":
            port.write(MSR_RESET + MSR_READ_ISO)
        return port

    def _handle(self, result: Result, port: serial.Serial) -> None:
        for swipe in result.swipes:
            at = utcnow()
            try:
                number = swipe.member_number(self.cfg.member_track)
            except FrameError as exc:
                self._put(CardRefused(self.reader_id, "magstripe", "", str(exc), "bad_swipe", at))
                continue
            event = self.intake.card(number, at)
            if event is not None:
                self._put(event)
        if self.cfg.framing == "msr605" and (result.swipes or result.errors):
            for exc in result.errors:  # the reader's own status: worth telling the cashier
                self._put(CardRefused(self.reader_id, "magstripe", "", str(exc), "bad_swipe", utcnow()))
            port.write(MSR_READ_ISO)  # re-arm for the next swipe

    def _serve(self, port: serial.Serial) -> None:
        last_byte = 0.0
        pending = False
        idle_s = self.cfg.idle_flush_ms / 1000
        while not self._stop.is_set():
            data = port.read(min(max(port.in_waiting, 1), READ_CHUNK_MAX))
            now = time.monotonic()
            if data:
                self._handle(self.decoder.feed(data), port)
                last_byte, pending = now, True
            elif pending and now - last_byte >= idle_s:
                self._handle(self.decoder.flush(), port)
                pending = False

    def _run(self) -> None:
        backoff = 0.0
        announced_down = False
        while not self._stop.is_set():
            try:
                port = self._open()
            except (serial.SerialException, OSError) as exc:
                if not announced_down:
                    self._status("disconnected", f"cannot open {self.cfg.port}: {exc}")
                    announced_down = True
                backoff = next_backoff(backoff)
                self._stop.wait(backoff)
                continue
            backoff, announced_down = 0.0, False
            self._status("connected", f"{self.cfg.port} at {self.cfg.baudrate} baud, {self.cfg.framing}")
            try:
                self._serve(port)
            except (serial.SerialException, OSError) as exc:
                self._status("disconnected", f"{self.cfg.port} went away: {exc}")
                announced_down = True
            finally:
                with contextlib.suppress(Exception):
                    port.close()

    # -- the asyncio side ---------------------------------------------------------

    async def events(self) -> AsyncIterator[ReaderEvent]:
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue(QUEUE_EVENTS_MAX)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"serial-{self.reader_id}", daemon=True)
        self._thread.start()
        queue = self._queue
        while not self._stop.is_set():
            try:
                yield await asyncio.wait_for(queue.get(), timeout=0.25)
            except asyncio.TimeoutError:
                continue

    @property
    def counters(self) -> Any:
        return self.decoder.counters

    async def close(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            await asyncio.to_thread(thread.join, 2.0)
