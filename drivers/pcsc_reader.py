"""Smart and contactless cards through pcscd (pyscard's low-level scard API).

pyscard's own ReaderMonitor and CardMonitor threads end for good on some errors
(any smartcard exception, pcscd going away), so this driver keeps its own loop:
one thread waits on SCardGetStatusChange with a bounded timeout, re-lists readers
each round (readers plugged and unplugged), and re-establishes its context with
backoff when pcscd stops and starts again. A card taken away mid-read is reported
and the next card is read as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator

from smartcard import scard

from drivers import apdu
from drivers.base import Reader, next_backoff, utcnow
from drivers.cards import CardPolicy, Deduper
from drivers.config import PcscReaderConfig
from drivers.errors import CardCommandFailed
from drivers.events import CardRefused, ReaderEvent, ReaderStatus
from drivers.intake import Intake

log = logging.getLogger("drivers.pcsc")

QUEUE_EVENTS_MAX = 256
SERVICE_GONE = {scard.SCARD_E_NO_SERVICE, scard.SCARD_E_SERVICE_STOPPED, scard.SCARD_E_INVALID_HANDLE}
CARD_GONE = {scard.SCARD_W_REMOVED_CARD, scard.SCARD_E_NO_SMARTCARD, scard.SCARD_W_RESET_CARD,
             scard.SCARD_E_READER_UNAVAILABLE, scard.SCARD_W_UNPOWERED_CARD, scard.SCARD_W_UNRESPONSIVE_CARD}


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


class PcscReader(Reader):
    kind = "pcsc"

    def __init__(self, cfg: PcscReaderConfig, policy: CardPolicy, deduper: Deduper) -> None:
        super().__init__(cfg.id)
        self.cfg = cfg
        self.technology = "chip" if cfg.identity == "aid" else "contactless"
        self.intake = Intake(cfg.id, self.technology, policy, deduper)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ctx: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[ReaderEvent] | None = None
        self.dropped_events = 0

    # -- events -------------------------------------------------------------------

    def _put(self, event: ReaderEvent) -> None:
        assert self._loop is not None and self._queue is not None
        queue = self._queue

        def deliver() -> None:
            if queue.full():
                self.dropped_events += 1
                return
            queue.put_nowait(event)

        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(deliver)

    def _status(self, state: str, detail: str) -> None:
        self._put(ReaderStatus(self.reader_id, self.kind, state, detail, utcnow()))

    def _refuse(self, reason: str, code: str = "card_error") -> None:
        self._put(CardRefused(self.reader_id, self.technology, "", reason, code, utcnow()))

    # -- talking to a card ---------------------------------------------------------

    def _transmit(self, card: int, protocol: int, command: bytes, what: str) -> bytes:
        rc, response = scard.SCardTransmit(card, protocol, list(command))
        if rc != scard.SCARD_S_SUCCESS:
            if rc in CARD_GONE:
                raise _CardGone(_message(rc))
            if rc in SERVICE_GONE:
                raise _ServiceGone(_message(rc))
            raise CardCommandFailed(f"{what}: {_message(rc)}")
        if not response:  # no status word at all: the card left the field mid-command
            raise _CardGone("no answer")
        return apdu.check(bytes(response), what)

    def _member_number(self, card: int, protocol: int) -> str:
        cfg = self.cfg
        if cfg.identity == "uid":
            return apdu.uid_number(self._transmit(card, protocol, apdu.GET_UID, "reading the UID"), cfg.uid_prefix)
        if cfg.identity == "mifare_block":
            self._transmit(card, protocol, apdu.load_key(bytes.fromhex(cfg.mifare_key)), "loading the key")
            self._transmit(card, protocol, apdu.authenticate(cfg.mifare_block, cfg.mifare_key_type),
                           f"authenticating block {cfg.mifare_block}")
            data = self._transmit(card, protocol, apdu.read_block(cfg.mifare_block), f"reading block {cfg.mifare_block}")
            return apdu.block_number(data)
        self._transmit(card, protocol, apdu.select_aid(bytes.fromhex(cfg.aid)), "selecting the loyalty application")
        return apdu.bcd_number(self._transmit(card, protocol, apdu.GET_MEMBER_NUMBER, "reading the member number"))

    def _read(self, ctx: int, reader: str) -> None:
        rc, card, protocol = scard.SCardConnect(ctx, reader, scard.SCARD_SHARE_SHARED,
                                                scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1)
        if rc != scard.SCARD_S_SUCCESS:
            if rc in SERVICE_GONE:
                raise _ServiceGone(_message(rc))
            if rc not in CARD_GONE:
                self._refuse(f"could not talk to the card: {_message(rc)}")
            return
        try:
            number = self._member_number(card, protocol)
        except CardCommandFailed as exc:
            self._refuse(str(exc))
            return
        except _CardGone:
            self._refuse("the card was taken away during the read; present it again", "card_removed")
            return
        finally:
            scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)
        event = self.intake.card(number, utcnow())
        if event is not None:
            self._put(event)

    # -- the watching thread ----------------------------------------------------------

    def _watch(self, ctx: int) -> None:
        known: dict[str, int] = {}
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
                self._stop.wait(self.cfg.poll_ms / 1000)
                continue
            rc, states = scard.SCardGetStatusChange(ctx, self.cfg.poll_ms, [(r, known[r]) for r in readers])
            if rc in SERVICE_GONE:
                raise _ServiceGone(_message(rc))
            if rc != scard.SCARD_S_SUCCESS:
                continue  # a timeout, a cancel, or a reader that left: list again
            for reader, event, _atr in states:
                before = known.get(reader, 0)
                known[reader] = event & ~scard.SCARD_STATE_CHANGED
                present = event & scard.SCARD_STATE_PRESENT and not event & scard.SCARD_STATE_MUTE
                # pcscd counts insertions and removals in the upper 16 bits: a card swapped
                # between two waits shows as a new count with the card still present
                new_card = not before & scard.SCARD_STATE_PRESENT or (event >> 16) != (before >> 16)
                if present and new_card:
                    self._read(ctx, reader)

    def _run(self) -> None:
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
            backoff, down_reported = 0.0, False
            try:
                self._watch(ctx)
            except _ServiceGone as exc:
                self._status("disconnected", f"pcscd went away: {exc}")
                down_reported = True
            finally:
                self._ctx = None
                with contextlib.suppress(Exception):
                    scard.SCardReleaseContext(ctx)
            self._stop.wait(next_backoff(0.0))

    # -- the asyncio side --------------------------------------------------------------

    async def events(self) -> AsyncIterator[ReaderEvent]:
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue(QUEUE_EVENTS_MAX)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"pcsc-{self.reader_id}", daemon=True)
        self._thread.start()
        queue = self._queue
        while not self._stop.is_set():
            try:
                yield await asyncio.wait_for(queue.get(), timeout=0.25)
            except asyncio.TimeoutError:
                continue

    async def close(self) -> None:
        self._stop.set()
        ctx = self._ctx
        if ctx is not None:
            with contextlib.suppress(Exception):
                scard.SCardCancel(ctx)  # ends a wait in SCardGetStatusChange at once
        thread, self._thread = self._thread, None
        if thread is not None:
            await asyncio.to_thread(thread.join, 3.0)

