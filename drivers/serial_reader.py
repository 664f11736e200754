"""Magnetic stripe readers on a serial port (pyserial): ASCII framing or the MSR605
ESC protocol. Survives unplugging: the port is reopened with backoff when it returns.

An MSR605 reads only while it holds our read command (`ESC r`), and nothing on the
line tells an armed reader from one that lost the command (powered on after the
port opened, replugged behind its USB adapter, or it flushed its input). So the
driver checks: when the port opens, after an error answer or noise, and whenever the
line has been quiet for MSR605_REARM_IDLE_S, it sends reset and the communication
test (`ESC a ESC e`), then the read command. A reader that does not answer the test
(`ESC y`) within MSR605_ANSWER_TIMEOUT_S is reported as state "error" with a detail
saying so, and as "connected" again once it answers. A card swiped at the very
moment of a quiet-line re-arm may be lost by the reader (the cashier swipes again),
which is why the quiet time is seconds, not less.

One thread per reader does the blocking I/O. It waits in select() on the port and on
a wake-up pipe, so a byte is handled as soon as it arrives, an idle reader costs no
CPU, and close() takes effect at once instead of after a read timeout. Events cross
to asyncio through a bounded queue. POSIX only (select on a tty), like the tills.

Privacy: track bytes go from the port into the decoder and nowhere else. Logs and
events carry masked numbers and the decoders' messages, which never hold track data.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

import serial

from drivers.base import EventInbox, Reader, next_backoff, utcnow
from drivers.cards import CardCheck, Deduper
from drivers.config import SerialReaderConfig
from drivers.events import CardRead, CardRefused, ReaderEvent, ReaderStatus
from drivers.framing import MSR_READ_ISO, MSR_RESET, MSR_TEST, AsciiDecoder, Counters, Msr605Decoder, Result
from drivers.intake import Intake

log = logging.getLogger("drivers.serial")

READ_CHUNK_MAX = 4096  # bytes taken from the port at once; more than a second of 9600 baud
QUEUE_EVENTS_MAX = 256  # events waiting for the consumer; beyond that new ones are dropped and counted
IDLE_WAIT_S = 1.0  # how long one select() waits when no swipe is pending (close() wakes it anyway)
WRITE_TIMEOUT_S = 1.0  # an MSR605 command that cannot be written in this long means the port is stuck
CLOSE_JOIN_TIMEOUT_S = 0.9  # close() waits this long for the thread; it normally ends within a millisecond
MSR605_IDLE_FLUSH_S = 0.5  # an MSR605 answer streams without gaps: this much quiet means it was cut off
MSR605_ERROR_REARM_S = 0.2  # after an error answer or noise, wait before the next read command (no tight loop)
MSR605_REARM_IDLE_S = 10.0  # a line quiet this long: test the reader and send the read command again
MSR605_ANSWER_TIMEOUT_S = 1.0  # the test answer takes milliseconds; none in this long: the reader does not answer
PARITIES = {"N": serial.PARITY_NONE, "E": serial.PARITY_EVEN, "O": serial.PARITY_ODD}
TECHNOLOGY = "magstripe"


class SerialReader(Reader):
    """A serial magnetic stripe reader.

    `events()` yields ReaderStatus("connected"/"disconnected", and "error" for an
    MSR605 that does not answer), CardRead and CardRefused (bank cards, numbers
    outside the ranges, swipes that could not be read) until `close()`. Frames that
    do not decode are counted in `counters` and dropped (ascii framing), or reported
    as a refused swipe (msr605: every answer is the reader's reply to our read
    command, so the cashier should hear of it).
    """

    kind = "serial"

    def __init__(self, cfg: SerialReaderConfig, policy: CardCheck, deduper: Deduper) -> None:
        super().__init__(cfg.id)
        self.cfg = cfg
        self.intake = Intake(cfg.id, TECHNOLOGY, policy, deduper)
        self.decoder: AsciiDecoder | Msr605Decoder = (
            Msr605Decoder(cfg.member_track) if cfg.framing == "msr605"
            else AsciiDecoder(cfg.member_track, with_lrc=cfg.lrc))
        self._idle_s = max(cfg.idle_flush_ms / 1000, MSR605_IDLE_FLUSH_S if cfg.framing == "msr605" else 0.0)
        self._stop = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._inbox: EventInbox | None = None  # None in the queue: the stream ends
        self._wake_r, self._wake_w = -1, -1  # wakes the thread's select(); -1 when closed
        self._wake_lock = threading.Lock()  # a closed fd number may be reused: never write to one
        self.connected = False
        self.reconnects = 0  # times the port came back after being lost
        # msr605 only, the reading thread's own state:
        self._answering: bool | None = None  # the reader answered its last test; None: not known yet
        self._test_until: float | None = None  # a test command is out; its answer is due by then
        self._retest_at: float | None = None  # after an error or noise: test and arm again at this time
        self._quiet_since = 0.0  # the last byte received or command sent

    # -- counters -----------------------------------------------------------------

    @property
    def counters(self) -> Counters:
        """The decoder's counters: swipes, bad/half/overlong frames, dropped bytes."""
        return self.decoder.counters

    def stats(self) -> dict[str, Any]:
        return {**asdict(self.counters), "connected": self.connected, "reconnects": self.reconnects,
                "dropped_events": self.dropped_events}

    # -- the reading thread -------------------------------------------------------

    def _put(self, event: ReaderEvent | None) -> None:
        assert self._inbox is not None
        self._inbox.put(event)

    @property
    def dropped_events(self) -> int:
        """Events lost because the consumer did not keep up."""
        return self._inbox.dropped if self._inbox is not None else 0

    def _status(self, state: str, detail: str) -> None:
        self.connected = state == "connected"
        log.debug("serial reader %s %s: %s", self.reader_id, state, detail)
        self._put(ReaderStatus(self.reader_id, self.kind, state, detail, utcnow()))

    def _refuse(self, reason: str) -> None:
        self._put(CardRefused(self.reader_id, TECHNOLOGY, "", reason, "bad_swipe", utcnow()))

    def _open(self) -> serial.Serial:
        port = serial.Serial(
            self.cfg.port, baudrate=self.cfg.baudrate, bytesize=self.cfg.bytesize,
            parity=PARITIES[self.cfg.parity], stopbits=self.cfg.stopbits,
            timeout=0,  # non-blocking reads: the waiting is our select(), which close() can wake
            write_timeout=WRITE_TIMEOUT_S, exclusive=True,  # a second process on the port would steal bytes
        )
        return port

    def _handle(self, result: Result, port: serial.Serial) -> None:
        for error in result.errors:
            log.debug("serial reader %s dropped a frame: %s", self.reader_id, error)
        for swipe in result.swipes:
            event = self.intake.swipe(swipe, self.cfg.member_track, utcnow())
            if isinstance(event, CardRead):
                log.debug("serial reader %s read %s", self.reader_id, event.masked)
            if event is not None:
                self._put(event)
        if self.cfg.framing == "msr605":
            self._msr605_answered(result, port)

    # -- msr605: keeping the reader armed -------------------------------------------

    def _msr605_test(self, port: serial.Serial) -> None:
        """Reset and the communication test; the read command follows its answer."""
        port.write(MSR_RESET + MSR_TEST)
        now = time.monotonic()
        self._test_until, self._retest_at, self._quiet_since = now + MSR605_ANSWER_TIMEOUT_S, None, now

    def _msr605_arm(self, port: serial.Serial) -> None:
        port.write(MSR_READ_ISO)
        self._quiet_since = time.monotonic()

    def _msr605_answering(self, answering: bool) -> None:
        if answering == self._answering:
            return
        self._answering = answering
        cfg = self.cfg
        if answering:
            self._status("connected", f"{cfg.port} at {cfg.baudrate} baud, msr605: the reader answers")
        else:
            self._status("error", f"{cfg.port} is open but the MSR605 does not answer its test command within "
                                  f"{MSR605_ANSWER_TIMEOUT_S:g} s (is it powered and cabled, at {cfg.baudrate} "
                                  f"baud?); asking again every {MSR605_REARM_IDLE_S:g} s")

    def _msr605_answered(self, result: Result, port: serial.Serial) -> None:
        """What the reader said: swipes and error answers are refused or read, and the
        reader is armed again (after a test, when something went wrong)."""
        for error in result.errors:  # the reader's own status or a broken answer
            self._refuse(str(error))
        if result.swipes or result.errors or result.test_answers:  # every one of these comes from the reader
            self._msr605_answering(True)
        now = time.monotonic()
        if result.swipes or result.errors or result.test_answers or result.noise:
            self._quiet_since = now
        if result.test_answers and self._test_until is not None:
            self._test_until = None
            self._msr605_arm(port)
        if result.errors or (result.noise and not (result.swipes or result.test_answers)):
            self._retest_at = now + MSR605_ERROR_REARM_S  # it may have lost our read command: test and arm again
        elif result.swipes and self._test_until is None:
            self._msr605_arm(port)  # for the next swipe

    def _msr605_due(self) -> float:
        """When _msr605_tick next has something to do."""
        if self._test_until is not None:
            return self._test_until
        due = self._quiet_since + MSR605_REARM_IDLE_S
        return min(due, self._retest_at) if self._retest_at is not None else due

    def _msr605_tick(self, port: serial.Serial) -> None:
        """Between answers: a test that got no answer, or a line quiet for too long."""
        now = time.monotonic()
        if self._test_until is not None:
            if now >= self._test_until:
                self._test_until = None
                self._msr605_answering(False)
                self._msr605_arm(port)  # all the same: a reader without the test command may still read
            return
        if now >= self._msr605_due():
            self._msr605_test(port)

    def _serve(self, port: serial.Serial) -> None:
        fd = port.fileno()
        msr605 = self.cfg.framing == "msr605"
        last_byte: float | None = None  # set while a swipe may still be arriving
        if msr605:
            self._answering = None
            self._msr605_test(port)
        while not self._stop.is_set():
            now = time.monotonic()
            due = now + IDLE_WAIT_S
            if last_byte is not None:
                due = min(due, last_byte + self._idle_s)
            if msr605 and last_byte is None:  # while an answer arrives, only its idle flush is due
                due = min(due, self._msr605_due())
            ready, _, _ = select.select([fd, self._wake_r], [], [], max(0.0, due - now))
            if self._wake_r in ready:
                continue  # close(): the loop condition ends it
            if fd in ready:
                data = port.read(READ_CHUNK_MAX)  # pyserial raises on EIO/EOF: the device is gone
                self._handle(self.decoder.feed(data), port)
                last_byte = time.monotonic()
            elif last_byte is not None and time.monotonic() >= last_byte + self._idle_s:
                self._handle(self.decoder.flush(), port)
                last_byte = None
            if msr605 and last_byte is None:  # never talk over an answer that is still arriving
                self._msr605_tick(port)

    def _run(self) -> None:
        backoff = 0.0
        announced_down = False
        try:
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
                if announced_down:
                    self.reconnects += 1
                backoff, announced_down = 0.0, False
                self.decoder.reset()  # nothing half-received before an unplug joins the next swipe
                if self.cfg.framing != "msr605":  # an MSR605 is connected once it answers (see _serve)
                    self._status("connected", f"{self.cfg.port} at {self.cfg.baudrate} baud, {self.cfg.framing}")
                try:
                    self._serve(port)
                except (serial.SerialException, OSError) as exc:
                    self._status("disconnected", f"{self.cfg.port} went away: {exc}")
                    announced_down = True
                finally:
                    with contextlib.suppress(Exception):
                        port.close()
        finally:
            self.connected = False
            self._put(None)
            with self._wake_lock:
                for fd in (self._wake_r, self._wake_w):
                    with contextlib.suppress(OSError):
                        os.close(fd)
                self._wake_r = self._wake_w = -1

    # -- the asyncio side ---------------------------------------------------------

    async def events(self) -> AsyncIterator[ReaderEvent]:
        if self._closed:
            return
        if self._thread is not None:
            raise RuntimeError(f"reader {self.reader_id}: events() is already being read")
        self._inbox = EventInbox(asyncio.get_running_loop(), QUEUE_EVENTS_MAX)
        queue = self._inbox.queue
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name=f"serial-{self.reader_id}", daemon=True)
        self._thread.start()
        try:
            while True:
                event = await queue.get()
                if event is None:
                    return
                yield event
        finally:
            self._signal_stop()  # the consumer went away without close(): release the port too

    def _signal_stop(self) -> None:
        self._stop.set()
        with self._wake_lock, contextlib.suppress(OSError):
            if self._wake_w >= 0:
                os.write(self._wake_w, b"x")

    async def close(self) -> None:
        """Stop reading and release the port; returns within CLOSE_JOIN_TIMEOUT_S. Idempotent."""
        self._closed = True
        if self._thread is None:
            return
        self._signal_stop()
        thread = self._thread
        if thread.is_alive():
            await asyncio.to_thread(thread.join, CLOSE_JOIN_TIMEOUT_S)
