"""Smart and contactless cards through pcscd (pyscard's low-level scard API).

pyscard's own ReaderMonitor and CardMonitor threads end for good on some errors
(any smartcard exception, pcscd going away), so this driver keeps its own loop:
one thread waits on SCardGetStatusChange with a bounded timeout, re-lists readers
each round (readers plugged and unplugged), and re-establishes its context with
backoff when pcscd stops and starts again. A card taken away mid-read is reported
to the cashier as a CardRefused with code "card_removed" (the reader itself is fine,
so it is not a reader status) and the next card is read as usual.

How a pulled card shows depends on the moment: pulled during a command, the command
gets no answer or SCARD_W_REMOVED_CARD / SCARD_E_NO_SMARTCARD; pulled between two
commands, the next one fails with "Transaction failed" (SCARD_E_NOT_TRANSACTED)
while pcscd still reports the card present, because pcscd only notices a card gone
at its next presence poll (every 400 ms by default). So a command that fails with
any other PC/SC error is classified by the reader's state: the driver waits, at
most CARD_GONE_CONFIRM_MS, for pcscd to see the card leave.

A card failing a command (wrong MIFARE key, application missing) becomes a
CardRefused with code "card_command_failed" and the status word's message; the
MIFARE key is never put in a message or a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from smartcard import scard

from drivers import apdu
from drivers.base import EventInbox, Reader, next_backoff, utcnow
from drivers.cards import CardCheck, Deduper
from drivers.config import PcscReaderConfig
from drivers.errors import CardCommandFailed
from drivers.events import CardRefused, ReaderEvent, ReaderStatus
from drivers.intake import Intake

log = logging.getLogger("drivers.pcsc")

QUEUE_EVENTS_MAX = 256  # events waiting for the consumer; more are counted in dropped_events
CLOSE_JOIN_S = 0.8  # close() waits this long for the thread (it is a daemon: never longer)
EVENTS_WAKE_S = 0.25  # how often events() looks whether close() was called
# pcscd gone (stopped, restarted: the old context is dead) -> a new context, with backoff
SERVICE_GONE = {scard.SCARD_E_NO_SERVICE, scard.SCARD_E_SERVICE_STOPPED, scard.SCARD_E_INVALID_HANDLE,
                scard.SCARD_F_COMM_ERROR}
CARD_GONE = {scard.SCARD_W_REMOVED_CARD, scard.SCARD_E_NO_SMARTCARD, scard.SCARD_W_RESET_CARD,
             scard.SCARD_E_READER_UNAVAILABLE, scard.SCARD_W_UNPOWERED_CARD, scard.SCARD_W_UNRESPONSIVE_CARD}
SCARD_ABSENT = 0x0002  # SCardStatus state bit (pcsclite.h); pyscard does not export it
# a command failed with a PC/SC error: wait this long for pcscd to see the card leave before
# calling it a command failure (pcscd polls card presence every 400 ms; 2.5 polls)
CARD_GONE_CONFIRM_MS = 1000
READER_LEFT = {scard.SCARD_E_UNKNOWN_READER, scard.SCARD_E_READER_UNAVAILABLE}
# T=0 cards hand out answer data in pieces (61 xx, then GET RESPONSE): at most this many pieces
GET_RESPONSE_ROUNDS_MAX = 8


def _code(rc: int) -> int:
    return rc & 0xFFFFFFFF


def _message(rc: int) -> str:
    try:
        return str(scard.SCardGetErrorMessage(rc))
    except Exception:  # pragma: no cover - pyscard's message table lacks the code
        return f"PC/SC error 0x{_code(rc):08X}"


class _CardGone(Exception):
    pass


class _ServiceGone(Exception):
    pass


@dataclass(frozen=True)
class _Card:
    """A connected card: the handle, and what is needed to ask pcscd whether it is still there."""

    ctx: int
    reader: str
    handle: int
    protocol: int
    seen: int  # the reader's event state when the card was found (upper 16 bits: pcscd's card count)


class PcscReader(Reader):
    kind = "pcsc"

    def __init__(self, cfg: PcscReaderConfig, policy: CardCheck, deduper: Deduper) -> None:
        super().__init__(cfg.id)
        self.cfg = cfg
        self.technology = "chip" if cfg.identity == "aid" else "contactless"
        self.intake = Intake(cfg.id, self.technology, policy, deduper)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ctx: int | None = None
        self._inbox: EventInbox | None = None
        self._closed = False

    # -- events -------------------------------------------------------------------

    def _put(self, event: ReaderEvent) -> None:
        assert self._inbox is not None
        self._inbox.put(event)

    @property
    def dropped_events(self) -> int:
        """Events lost because the consumer did not keep up."""
        return self._inbox.dropped if self._inbox is not None else 0

    def _status(self, state: str, detail: str) -> None:
        log.info("pcsc reader %s %s: %s", self.reader_id, state, detail)
        self._put(ReaderStatus(self.reader_id, self.kind, state, detail, utcnow()))

    def _refuse(self, reason: str, code: str = CardCommandFailed.code) -> None:
        self._put(CardRefused(self.reader_id, self.technology, "", reason, code, utcnow()))

    # -- talking to a card ---------------------------------------------------------

    def _transmit(self, card: _Card, command: bytes, what: str) -> bytes:
        """The data of the card's answer to `command` (status 90 00). A T=0 card's data
        comes in pieces (61 xx, fetched with GET RESPONSE, at most GET_RESPONSE_ROUNDS_MAX);
        a card asking for another Le (6C xx) gets the command once more with it."""
        response = self._exchange(card, command, what)
        if len(response) >= 2 and response[-2] == 0x6C:
            response = self._exchange(card, apdu.with_le(command, response[-1]), what)
        data = b""
        for _ in range(GET_RESPONSE_ROUNDS_MAX):
            if len(response) < 2 or response[-2] != 0x61:
                break
            data += response[:-2]
            response = self._exchange(card, apdu.get_response(response[-1]), what)
        return data + apdu.check(response, what)

    def _exchange(self, card: _Card, command: bytes, what: str) -> bytes:
        """One command and the card's whole answer (data and status word)."""
        rc, response = scard.SCardTransmit(card.handle, card.protocol, list(command))
        if rc != scard.SCARD_S_SUCCESS:
            if rc in CARD_GONE:
                raise _CardGone(_message(rc))
            if rc in SERVICE_GONE:
                raise _ServiceGone(_message(rc))
            if self._card_left(card):  # e.g. "Transaction failed" as the card left the field
                raise _CardGone(_message(rc))
            raise CardCommandFailed(f"{what}: {_message(rc)}")
        if not response:  # no status word at all: the card left the field mid-command
            raise _CardGone("no answer")
        return bytes(response)

    def _card_left(self, card: _Card) -> bool:
        """After a failed command: is the card gone? pcscd may still report it present
        until its next presence poll, so wait (at most CARD_GONE_CONFIRM_MS) for the
        reader's state to show the card absent or a different card count."""
        rc, _reader, state, _protocol, _atr = scard.SCardStatus(card.handle)
        if rc in CARD_GONE or (rc == scard.SCARD_S_SUCCESS and state & SCARD_ABSENT):
            return True
        if rc in SERVICE_GONE:
            raise _ServiceGone(_message(rc))
        known = card.seen & ~scard.SCARD_STATE_CHANGED
        deadline = time.monotonic() + CARD_GONE_CONFIRM_MS / 1000
        while True:
            wait_ms = max(0, int((deadline - time.monotonic()) * 1000))
            rc, states = scard.SCardGetStatusChange(card.ctx, wait_ms, [(card.reader, known)])
            if rc in SERVICE_GONE:
                raise _ServiceGone(_message(rc))
            if rc in READER_LEFT:
                return True  # the reader went, and the card with it
            if rc != scard.SCARD_S_SUCCESS:
                return False  # timed out with the card still there (or close() cancelled the wait)
            event = states[0][1]
            if not event & scard.SCARD_STATE_PRESENT or (event >> 16) != (card.seen >> 16):
                return True
            known = event & ~scard.SCARD_STATE_CHANGED  # another change (in use, powered): wait on
            if wait_ms == 0:
                return False

    def _member_number(self, card: _Card) -> str:
        cfg = self.cfg
        if cfg.identity == "uid":
            return apdu.uid_number(self._transmit(card, apdu.GET_UID, "reading the UID"), cfg.uid_prefix)
        if cfg.identity == "mifare_block":
            self._transmit(card, apdu.load_key(bytes.fromhex(cfg.mifare_key)), "loading the key")
            self._transmit(card, apdu.authenticate(cfg.mifare_block, cfg.mifare_key_type),
                           f"authenticating block {cfg.mifare_block}")
            block = cfg.mifare_block
            return apdu.block_number(self._transmit(card, apdu.read_block(block), f"reading block {block}"))
        return self._aid_number(card)

    def _aid_number(self, card: _Card) -> str:
        """The member number of an ISO 7816 application, by the configured recipe (aid_read)."""
        cfg = self.cfg
        tag = bytes.fromhex(cfg.aid_tag)
        selected = self._transmit(card, apdu.select_aid(bytes.fromhex(cfg.aid)), "selecting the loyalty application")
        if cfg.aid_read == "select_data":
            data = selected
        elif cfg.aid_read == "select_tlv":
            data = apdu.tlv_find(selected, tag)
        elif cfg.aid_read == "read_binary":
            self._transmit(card, apdu.select_file(bytes.fromhex(cfg.read_binary_file)),
                           f"selecting file {cfg.read_binary_file.upper()}")
            data = self._transmit(card, apdu.read_binary(cfg.read_binary_offset, cfg.read_binary_length),
                                  f"reading file {cfg.read_binary_file.upper()}")
        else:
            data = apdu.unwrap(self._transmit(card, apdu.get_data(tag), "reading the member number"), tag)
        return apdu.digits(data, cfg.aid_encoding)

    def _read(self, ctx: int, reader: str, seen: int) -> None:
        rc, handle, protocol = scard.SCardConnect(ctx, reader, scard.SCARD_SHARE_SHARED,
                                                  scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1)
        if rc != scard.SCARD_S_SUCCESS:
            if rc in SERVICE_GONE:
                raise _ServiceGone(_message(rc))
            if rc not in CARD_GONE:
                self._refuse(f"could not talk to the card: {_message(rc)}")
            return
        card = _Card(ctx, reader, handle, protocol, seen)
        try:
            number = self._member_number(card)
        except CardCommandFailed as exc:
            self._refuse(str(exc))
            return
        except _CardGone:
            self._refuse("the card was taken away during the read; present it again", "card_removed")
            return
        finally:
            scard.SCardDisconnect(handle, scard.SCARD_LEAVE_CARD)
        event = self.intake.card(number, utcnow())
        if event is not None:
            self._put(event)

    # -- the watching thread ----------------------------------------------------------

    def _watch(self, ctx: int) -> None:
        """Until close() or pcscd goes away: list readers (plugged, unplugged), then wait at
        most poll_ms for a card change, and read each newly presented card."""
        known: dict[str, int] = {}  # reader name -> last event state, as pcscd wants it back
        first_listing = True
        while not self._stop.is_set():
            rc, found = scard.SCardListReaders(ctx, [])
            if rc in SERVICE_GONE:
                raise _ServiceGone(_message(rc))
            readers = [r for r in (found if rc == scard.SCARD_S_SUCCESS else []) if self.cfg.reader_name in r]
            for gone in sorted(set(known) - set(readers)):
                del known[gone]
                self._status("disconnected", f"reader {gone} was removed")
            for new in readers:
                if new not in known:
                    known[new] = scard.SCARD_STATE_UNAWARE
                    self._status("connected", f"reader {new}")
            if not readers:
                if first_listing:  # later, a reader leaving was reported by name above
                    wanted = f" with {self.cfg.reader_name!r} in its name" if self.cfg.reader_name else ""
                    self._status("disconnected", f"no PC/SC reader{wanted} is plugged in")
                first_listing = False
                self._stop.wait(self.cfg.poll_ms / 1000)
                continue
            first_listing = False
            rc, states = scard.SCardGetStatusChange(ctx, self.cfg.poll_ms, [(r, known[r]) for r in readers])
            if rc in SERVICE_GONE:
                raise _ServiceGone(_message(rc))
            if rc != scard.SCARD_S_SUCCESS:
                continue  # a timeout, a cancel, or a reader that left: list again
            for reader, event, _atr in states:
                before = known.get(reader, 0)
                known[reader] = event & ~scard.SCARD_STATE_CHANGED
                # pcscd counts insertions and removals in the upper 16 bits: a card swapped
                # between two waits shows as a new count with the card still present
                new_card = not before & scard.SCARD_STATE_PRESENT or (event >> 16) != (before >> 16)
                if not event & scard.SCARD_STATE_PRESENT or not new_card:
                    continue
                if event & scard.SCARD_STATE_MUTE:  # no ATR: nothing to talk to, but the cashier should know
                    self._refuse("the card does not answer; hold it still on the reader or try another card")
                    continue
                self._read(ctx, reader, event)

    def _run(self) -> None:
        """The thread: a context, the watch loop, and a new context with backoff when pcscd
        goes away or anything unexpected happens; only close() ends it."""
        backoff = 0.0
        down_reported = False
        while not self._stop.is_set():
            rc, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
            if rc != scard.SCARD_S_SUCCESS:
                if not down_reported:
                    self._status("disconnected", f"pcscd is not available: {_message(rc)}")
                    down_reported = True
                backoff = next_backoff(backoff)
                self._stop.wait(backoff)
                continue
            self._ctx = ctx
            down_reported = False
            try:
                self._watch(ctx)
                backoff = 0.0
            except _ServiceGone as exc:
                self._status("disconnected", f"pcscd went away: {exc}")
                down_reported = True
            except Exception as exc:  # a pyscard surprise must not end the thread for good
                log.exception("pcsc reader %s: unexpected error", self.reader_id)
                self._status("error", f"{type(exc).__name__}: {exc}")
                backoff = next_backoff(backoff)
            finally:
                self._ctx = None
                with contextlib.suppress(Exception):
                    scard.SCardReleaseContext(ctx)
            self._stop.wait(max(backoff, next_backoff(0.0)))

    def _cancel_wait(self) -> None:
        ctx = self._ctx
        if ctx is not None:
            with contextlib.suppress(Exception):
                scard.SCardCancel(ctx)  # ends a wait in SCardGetStatusChange at once

    # -- the asyncio side --------------------------------------------------------------

    async def events(self) -> AsyncIterator[ReaderEvent]:
        if self._closed or (self._thread is not None and self._thread.is_alive()):
            return  # closed for good, or another consumer already runs the thread
        self._inbox = EventInbox(asyncio.get_running_loop(), QUEUE_EVENTS_MAX)
        queue = self._inbox.queue
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"pcsc-{self.reader_id}", daemon=True)
        self._thread.start()
        try:
            while not self._stop.is_set():
                try:
                    event = await asyncio.wait_for(queue.get(), timeout=EVENTS_WAKE_S)
                except asyncio.TimeoutError:
                    continue
                if event is not None:  # this reader ends by _stop, never by an end mark
                    yield event
        finally:  # the consumer went away without close(): the thread must not outlive it
            self._stop.set()
            self._cancel_wait()

    async def close(self) -> None:
        self._closed = True
        self._stop.set()
        self._cancel_wait()
        thread, self._thread = self._thread, None
        if thread is not None and thread.is_alive():
            await asyncio.to_thread(thread.join, CLOSE_JOIN_S)
