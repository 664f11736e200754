"""The PC/SC driver against a real pcscd with the vpcd virtual reader and a virtual card."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest

from drivers.cards import Deduper
from ledger.cardpolicy import CardPolicy, CardRange as Range
from drivers.config import PcscReaderConfig
from drivers.events import CardRead, CardRefused, ReaderStatus
from tests.drivers.pcscd_rig import VPCD_READER, Pcscd, pcscd  # noqa: F401  (pcscd: the fixture)
from tests.drivers.vcard import VirtualCard, bcd, tlv

WAIT_S = 15.0  # generous: pcscd polls the virtual reader, CI machines are slow
CLOSE_BUDGET_S = 1.0  # close() must be this prompt
POLL_MS = 100
MEMBER = "6395000000000042"
POLICY = CardPolicy((Range("6395", (16,), False), Range("99", (19,), False)))
KEY = bytes.fromhex("A0A1A2A3A4A5")


def block(number: str) -> bytes:
    return number.encode().ljust(16, b"\x00")


class Harness:
    def __init__(self, rig: Pcscd, reader_name: str = VPCD_READER, **cfg: object) -> None:
        config = PcscReaderConfig(kind="pcsc", id="nfc1", reader_name=reader_name, poll_ms=POLL_MS,
                                  **cfg)  # type: ignore[arg-type]
        from drivers.pcsc_reader import PcscReader

        self.rig = rig
        self.reader = PcscReader(config, POLICY, Deduper(timedelta(0)))
        self.events: asyncio.Queue = asyncio.Queue()
        self.task: asyncio.Task | None = None

    async def pump(self) -> None:
        async for event in self.reader.events():
            await self.events.put(event)

    async def start(self) -> "Harness":
        self.task = asyncio.create_task(self.pump())
        await self.next(ReaderStatus, "connected")
        return self

    async def next(self, kind: type, state: str | None = None) -> object:
        while True:
            event = await asyncio.wait_for(self.events.get(), WAIT_S)
            if isinstance(event, kind) and (state is None or getattr(event, "state", None) == state):
                return event

    async def tap(self, card: VirtualCard, kind: type) -> object:
        await asyncio.to_thread(card.insert)
        try:
            return await self.next(kind)
        finally:
            await asyncio.to_thread(card.remove)
            # a hand takes longer than pcscd's presence poll to swap cards; a card never
            # seen to leave would be the same card still there
            await asyncio.to_thread(self.rig.wait_card, False)

    async def stop(self) -> None:
        await self.reader.close()
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


def test_uid_becomes_a_padded_decimal_member_number(pcscd: Pcscd) -> None:
    async def run() -> None:
        h = await Harness(pcscd, identity="uid", uid_prefix="99").start()
        try:
            read = await h.tap(VirtualCard(uid=bytes.fromhex("04A1B2C3D4E5F6")), CardRead)
            assert read.number == "99" + f"{0x04A1B2C3D4E5F6:017d}" and read.technology == "contactless"
            refused = await h.tap(VirtualCard(uid=bytes.fromhex("DEADBEEF")), CardRefused)
            assert "not a member card" in refused.reason  # 4-byte UIDs are 12 digits: outside the range
        finally:
            await h.stop()

    asyncio.run(run())


def test_mifare_block_with_the_right_and_a_wrong_key(pcscd: Pcscd) -> None:
    async def run() -> None:
        h = await Harness(pcscd, identity="mifare_block", mifare_key=KEY.hex(), mifare_block=5).start()
        try:
            good = VirtualCard(key=KEY, blocks={5: block(MEMBER)})
            read = await h.tap(good, CardRead)
            assert read.number == MEMBER
            wrong = VirtualCard(key=bytes.fromhex("FFFFFFFFFFFF"), blocks={5: block(MEMBER)})
            refused = await h.tap(wrong, CardRefused)
            assert "authentication failed" in refused.reason and KEY.hex() not in refused.reason.lower()
            bank = VirtualCard(key=KEY, blocks={5: b"4111111111111111"})
            refused = await h.tap(bank, CardRefused)
            assert "bank card" in refused.reason and refused.masked == "411111******1111"
        finally:
            await h.stop()

    asyncio.run(run())


def test_iso7816_application_by_aid(pcscd: Pcscd) -> None:
    aid = bytes.fromhex("F0010203040506")

    async def run() -> None:
        h = await Harness(pcscd, identity="aid", aid=aid.hex()).start()
        try:
            read = await h.tap(VirtualCard(aid=aid, member_bcd=bcd(MEMBER)), CardRead)
            assert read.number == MEMBER and read.technology == "chip"
            refused = await h.tap(VirtualCard(aid=bytes.fromhex("A000000003101001")), CardRefused)
            assert "application (AID)" in refused.reason
        finally:
            await h.stop()

    asyncio.run(run())


AID = bytes.fromhex("F0010203040506")
FCI = tlv("6F", tlv("84", AID) + tlv("A5", tlv("50", b"LOYALTY") + tlv("BF0C", tlv("5A", bcd(MEMBER)))))
EF = bytes.fromhex("0101")
RECIPES = [  # (name, reader config, the card's applet)
    ("get_data, bare BCD (the default)", {}, {"member_bcd": bcd(MEMBER)}),
    ("get_data, 2-byte tag, wrapped ASCII", {"aid_tag": "DF20", "aid_encoding": "ascii"},
     {"data_objects": {bytes.fromhex("DF20"): tlv("DF20", MEMBER.encode())}}),
    ("select_data, BCD", {"aid_read": "select_data"}, {"select_answer": bcd(MEMBER)}),
    ("select_data, ASCII padded", {"aid_read": "select_data", "aid_encoding": "ascii"},
     {"select_answer": MEMBER.encode() + b"\x00\x00  "}),
    ("select_tlv, 5A deep in the FCI", {"aid_read": "select_tlv"}, {"select_answer": FCI}),
    ("select_tlv, own tag, ASCII, T=0 pieces", {"aid_read": "select_tlv", "aid_tag": "C1", "aid_encoding": "ascii"},
     {"select_answer": tlv("6F", tlv("84", AID) + tlv("C1", MEMBER.encode())) + bytes(40), "t0": True,
      "t0_piece": 16}),
    ("read_binary, at an offset", {"aid_read": "read_binary", "read_binary_file": "0101", "read_binary_offset": 3,
                                   "read_binary_length": 8},
     {"files": {EF: b"\x01\x02\x03" + bcd(MEMBER) + b"\xff" * 5}}),
    ("read_binary, whole file, ASCII", {"aid_read": "read_binary", "read_binary_file": "0101",
                                        "aid_encoding": "ascii"},
     {"files": {EF: MEMBER.encode() + b"\x00" * 8}}),
    ("read_binary, length past the end (6C)", {"aid_read": "read_binary", "read_binary_file": "0101",
                                               "read_binary_length": 64},
     {"files": {EF: bcd(MEMBER)}}),
]


@pytest.mark.parametrize("cfg,applet", [r[1:] for r in RECIPES], ids=[r[0] for r in RECIPES])
def test_every_aid_read_recipe_reads_the_member_number(pcscd: Pcscd, cfg: dict, applet: dict) -> None:
    async def run() -> None:
        h = await Harness(pcscd, identity="aid", aid=AID.hex(), **cfg).start()
        try:
            read = await h.tap(VirtualCard(aid=AID, **applet), CardRead)
            assert read.number == MEMBER and read.technology == "chip"
        finally:
            await h.stop()

    asyncio.run(run())


def test_aid_recipes_report_a_missing_number_and_a_pulled_card(pcscd: Pcscd) -> None:
    async def run() -> None:
        h = await Harness(pcscd, identity="aid", aid=AID.hex(), aid_read="select_tlv").start()
        try:
            no_tag = VirtualCard(aid=AID, select_answer=tlv("6F", tlv("84", AID)))
            refused = await h.tap(no_tag, CardRefused)
            assert refused.code == "card_command_failed" and "no tag 5A" in refused.reason
            not_tlv = VirtualCard(aid=AID, select_answer=bytes.fromhex("6F10"))
            refused = await h.tap(not_tlv, CardRefused)
            assert refused.code == "card_command_failed" and "not valid BER-TLV" in refused.reason
        finally:
            await h.stop()
        h = await Harness(pcscd, identity="aid", aid=AID.hex(), aid_read="read_binary",
                          read_binary_file="0102").start()
        try:
            refused = await h.tap(VirtualCard(aid=AID, files={EF: bcd(MEMBER)}), CardRefused)
            assert refused.code == "card_command_failed" and "selecting file 0102" in refused.reason
            pulled = VirtualCard(aid=AID, files={bytes.fromhex("0102"): bcd(MEMBER)},
                                 leave_after=bytes.fromhex("00A404"))
            refused = await h.tap(pulled, CardRefused)
            assert refused.code == "card_removed"
        finally:
            await h.stop()

    asyncio.run(run())


def test_a_card_pulled_away_mid_read_then_the_next_card_works(pcscd: Pcscd) -> None:
    async def run() -> None:
        h = await Harness(pcscd, identity="mifare_block", mifare_key=KEY.hex(), mifare_block=5).start()
        try:
            for step in ("FF86", "FFB0"):  # during authentication, then during the read itself
                flaky = VirtualCard(key=KEY, blocks={5: block(MEMBER)}, remove_on=bytes.fromhex(step))
                refused = await h.tap(flaky, CardRefused)
                assert refused.code == "card_removed" and "taken away" in refused.reason
            read = await h.tap(VirtualCard(key=KEY, blocks={5: block(MEMBER)}), CardRead)
            assert read.number == MEMBER
        finally:
            await h.stop()

    asyncio.run(run())


PULLS = [  # the moment the card leaves during Load Keys, General Authenticate, Read Binary
    ("leave_after", "FF82"),  # between two commands: pcscd fails the next with "Transaction failed"
    ("remove_on", "FF86"),  # during a command: no answer at all
    ("leave_after", "FF86"),
    ("remove_on", "FFB0"),
]
PULL_TRIES = 20


def test_a_card_pulled_at_any_moment_of_a_read_is_always_reported_removed(pcscd: Pcscd) -> None:
    async def run() -> None:
        h = await Harness(pcscd, identity="mifare_block", mifare_key=KEY.hex(), mifare_block=5).start()
        try:
            outcomes = []
            for i in range(PULL_TRIES):
                mode, step = PULLS[i % len(PULLS)]
                card = VirtualCard(key=KEY, blocks={5: block(MEMBER)}, **{mode: bytes.fromhex(step)})
                refused = await h.tap(card, CardRefused)
                outcomes.append((mode, step, refused.code, refused.reason))
            assert all(code == "card_removed" for _, _, code, _ in outcomes), outcomes
            read = await h.tap(VirtualCard(key=KEY, blocks={5: block(MEMBER)}), CardRead)
            assert read.number == MEMBER
        finally:
            await h.stop()

    asyncio.run(run())


def test_pcscd_stopped_and_started_again_recovers_without_a_new_reader(pcscd: Pcscd) -> None:
    async def run() -> None:
        h = await Harness(pcscd, identity="mifare_block", mifare_key=KEY.hex(), mifare_block=5).start()
        try:
            await asyncio.to_thread(pcscd.stop)
            down = await h.next(ReaderStatus, "disconnected")
            assert "pcscd" in down.detail or "removed" in down.detail
            await asyncio.to_thread(pcscd.start)
            back = await h.next(ReaderStatus, "connected")
            assert VPCD_READER in back.detail
            read = await h.tap(VirtualCard(key=KEY, blocks={5: block(MEMBER)}), CardRead)
            assert read.number == MEMBER
        finally:
            await h.stop()

    asyncio.run(run())


def test_no_matching_reader_is_reported_and_close_is_prompt_and_idempotent(pcscd: Pcscd) -> None:
    async def run() -> None:
        h = Harness(pcscd, reader_name="No Such Reader")
        h.task = asyncio.create_task(h.pump())
        missing = await h.next(ReaderStatus, "disconnected")
        assert "No Such Reader" in missing.detail
        started = time.monotonic()
        await h.reader.close()
        await h.reader.close()
        assert time.monotonic() - started < CLOSE_BUDGET_S
        await asyncio.wait_for(h.task, WAIT_S)  # the event stream ends after close()

        watching = await Harness(pcscd, identity="uid").start()  # waiting on the real reader
        started = time.monotonic()
        await watching.reader.close()
        assert time.monotonic() - started < CLOSE_BUDGET_S
        await watching.stop()

    asyncio.run(run())
