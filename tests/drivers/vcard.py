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
    an ISO 7816 application (`aid`) whose GET DATA 5A gives `member_bcd`. The application
    can also answer its SELECT with data (`select_answer`: a bare number or BER-TLV),
    other GET DATA tags (`data_objects`), and elementary files (`files`: id -> content)
    for SELECT by file id and READ BINARY (a Le beyond the file is answered 6C xx, as
    cards do). `t0`: answer data is handed out as T=0 cards do (61 xx, then GET RESPONSE
    in pieces of at most `t0_piece` bytes).

    `remove_on`: an APDU prefix on which the card leaves the field (the socket closes
    before answering), i.e. a card pulled away mid-read. `leave_after`: an APDU prefix
    after whose answer the card leaves, i.e. a card pulled away between two commands
    (pcscd then fails the next command before its presence poll has seen the card go)."""

    def __init__(self, *, uid: bytes = bytes.fromhex("04A1B2C3D4E5F6"), key: bytes = DEFAULT_KEY,
                 blocks: dict[int, bytes] | None = None, aid: bytes | None = None, member_bcd: bytes | None = None,
                 remove_on: bytes | None = None, leave_after: bytes | None = None,
                 atr: bytes = ATR_CONTACTLESS, select_answer: bytes = b"",
                 data_objects: dict[bytes, bytes] | None = None, files: dict[bytes, bytes] | None = None,
                 t0: bool = False, t0_piece: int = 256) -> None:
        self.uid = uid
        self.key = key
        self.blocks = blocks or {}
        self.aid = aid
        self.member_bcd = member_bcd
        self.select_answer = select_answer
        self.data_objects = dict(data_objects or {})
        if member_bcd is not None:
            self.data_objects.setdefault(b"\x5a", member_bcd)
        self.files = files or {}
        self.t0 = t0
        self.t0_piece = t0_piece
        self._pending = b""  # T=0: answer data not yet fetched with GET RESPONSE
        self._file: bytes | None = None  # the selected elementary file's id
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
        if len(apdu) >= 4 and apdu[:2] == b"\x00\xc0":  # GET RESPONSE (T=0)
            piece, self._pending = self._pending[:self.t0_piece], self._pending[self.t0_piece:]
            if not piece:
                return b"\x69\x85"
            return piece + (bytes([0x61, min(len(self._pending), 256) & 0xFF]) if self._pending else SW_OK)
        reply = self._answer(apdu)
        if self.t0 and len(reply) > 2 and reply[-2:] == SW_OK:
            self._pending = reply[:-2]
            return bytes([0x61, min(len(self._pending), self.t0_piece) & 0xFF])
        return reply

    def _answer(self, apdu: bytes) -> bytes:
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
            self._file = None
            return self.select_answer + SW_OK
        if cla == 0x00 and ins == 0xA4 and p1 == 0x02:  # select an elementary file by id
            if len(apdu) < 7 or not self._selected:
                return b"\x6A\x82" if len(apdu) >= 7 else b"\x67\x00"
            file_id = apdu[5:7]
            if file_id not in self.files:
                return b"\x6A\x82"
            self._file = file_id
            return SW_OK
        if cla == 0x00 and ins == 0xB0:  # READ BINARY of the selected file
            if self._file is None:
                return b"\x69\x86"
            content, offset = self.files[self._file], (p1 << 8) | p2
            if offset > len(content):
                return b"\x6B\x00"
            le = apdu[4] if len(apdu) > 4 else 0
            rest = content[offset:]
            if le and le > len(rest):
                return bytes([0x6C, len(rest)])
            return rest[:le or 256] + SW_OK
        if cla == 0x00 and ins == 0xCA:  # GET DATA: P1 P2 are the tag (5A: application PAN)
            tag = bytes([p2]) if p1 == 0 else bytes([p1, p2])
            if not self._selected or tag not in self.data_objects:
                return b"\x6A\x88"
            return self.data_objects[tag] + SW_OK
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


def tlv(tag: str, value: bytes) -> bytes:
    """One BER-TLV object (short or 81/82 length form); `tag` in hex."""
    n = len(value)
    length = bytes([n]) if n < 0x80 else bytes([0x81, n]) if n < 0x100 else bytes([0x82, n >> 8, n & 0xFF])
    return bytes.fromhex(tag) + length + value


def bcd(number: str) -> bytes:
    """A member number as BCD, padded with F like EMV's tag 5A."""
    digits = number + ("F" if len(number) % 2 else "")
    return bytes.fromhex(digits)
