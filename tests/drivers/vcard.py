"""A virtual smart card for vpcd (vsmartcard): connects to the vpcd driver inside a
real pcscd and answers APDUs like a contactless or ISO 7816 loyalty card would.

vpcd framing: a 2-byte big-endian length, then the payload. A 1-byte payload is a
control code (0 power off, 1 power on, 2 reset, 4 send the ATR); a longer one is a
command APDU, answered with the response APDU (data, SW1, SW2). Closing the socket
removes the card from the reader.
"""

from __future__ import annotations

import socket
import struct
import threading
import time

VPCD_HOST = "127.0.0.1"
VPCD_PORT = 35963
CONNECT_TIMEOUT_S = 10.0  # vpcd may still be starting inside pcscd
REMOVE_JOIN_S = 5.0
DEFAULT_KEY = bytes.fromhex("FFFFFFFFFFFF")  # MIFARE Classic transport key
ATR_CONTACTLESS = bytes.fromhex("3B8F8001804F0CA000000306030001000000006A")
SW_OK = b"\x90\x00"


class VirtualCard:
    """One card: a UID, MIFARE Classic blocks behind one key (any sector), and optionally
    an ISO 7816 application (`aid`) whose GET DATA 5A gives `member_bcd`.

    `remove_on`: an APDU prefix on which the card leaves the field (the socket closes
    before answering), i.e. a card pulled away mid-read. `leave_after`: an APDU prefix
    after whose answer the card leaves, i.e. a card pulled away between two commands
    (pcscd then fails the next command before its presence poll has seen the card go)."""

    def __init__(self, *, uid: bytes = bytes.fromhex("04A1B2C3D4E5F6"), key: bytes = DEFAULT_KEY,
                 blocks: dict[int, bytes] | None = None, aid: bytes | None = None, member_bcd: bytes | None = None,
                 remove_on: bytes | None = None, leave_after: bytes | None = None,
                 atr: bytes = ATR_CONTACTLESS) -> None:
        self.uid = uid
        self.key = key
        self.blocks = blocks or {}
        self.aid = aid
        self.member_bcd = member_bcd
        self.remove_on = remove_on  # an APDU prefix: on it the card "leaves the field"
        self.leave_after = leave_after  # an APDU prefix: after answering it the card leaves
        self.atr = atr
        self.apdus: list[bytes] = []
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._loaded_key: bytes | None = None
        self._authenticated: int | None = None
        self._selected = False

    # -- protocol -----------------------------------------------------------------

    def answer(self, apdu: bytes) -> bytes:
        if len(apdu) < 4:
            return b"\x67\x00"
        cla, ins, p1, p2 = apdu[0], apdu[1], apdu[2], apdu[3]
        if cla == 0xFF and ins == 0xCA:
            return self.uid + SW_OK
        if cla == 0xFF and ins == 0x82:  # load key into the reader
            self._loaded_key = apdu[5:11]
            return SW_OK
        if cla == 0xFF and ins == 0x86:  # general authenticate
            if len(apdu) < 10:
                return b"\x67\x00"
            block = apdu[7]
            if self._loaded_key != self.key:
                self._authenticated = None
                return b"\x63\x00"
            self._authenticated = block // 4  # the sector (4 blocks each in the first 32 sectors)
            return SW_OK
        if cla == 0xFF and ins == 0xB0:  # read binary
            block = p2
            if self._authenticated != block // 4:
                return b"\x69\x82"
            return self.blocks.get(block, bytes(16)) + SW_OK
        if cla == 0x00 and ins == 0xA4 and p1 == 0x04:  # select by AID
            if len(apdu) < 5:
                return b"\x67\x00"
            aid = apdu[5:5 + apdu[4]]
            if self.aid is None or aid != self.aid:
                self._selected = False
                return b"\x6A\x82"
            self._selected = True
            return SW_OK
        if cla == 0x00 and ins == 0xCA and p1 == 0x00 and p2 == 0x5A:  # GET DATA: application PAN
            if not self._selected or self.member_bcd is None:
                return b"\x6A\x88"
            return self.member_bcd + SW_OK
        return b"\x6D\x00"

    def _serve(self) -> None:
        sock = self._sock
        assert sock is not None
        try:
            while True:
                head = self._recv(sock, 2)
                if head is None:
                    return
                (size,) = struct.unpack(">H", head)
                payload = self._recv(sock, size)
                if payload is None:
                    return
                if size == 1:
                    if payload[0] == 4:
                        sock.sendall(struct.pack(">H", len(self.atr)) + self.atr)
                    continue
                self.apdus.append(payload)
                if self.remove_on is not None and payload.startswith(self.remove_on):
                    sock.close()
                    return
                reply = self.answer(payload)
                sock.sendall(struct.pack(">H", len(reply)) + reply)
                if self.leave_after is not None and payload.startswith(self.leave_after):
                    sock.shutdown(socket.SHUT_RDWR)
                    return
        except OSError:
            return

    @staticmethod
    def _recv(sock: socket.socket, n: int) -> bytes | None:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    # -- in and out of the field ----------------------------------------------------

    def insert(self) -> "VirtualCard":
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while True:
            try:
                self._sock = socket.create_connection((VPCD_HOST, VPCD_PORT), timeout=2.0)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self._sock.settimeout(None)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self

    def remove(self) -> None:
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._sock.close()
            self._sock = None
        if self._thread is not None:
            self._thread.join(timeout=REMOVE_JOIN_S)
            self._thread = None


def bcd(number: str) -> bytes:
    """A member number as BCD, padded with F like EMV's tag 5A."""
    digits = number + ("F" if len(number) % 2 else "")
    return bytes.fromhex(digits)
