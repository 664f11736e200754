"""The APDUs the PC/SC reader sends, and what a card's answers mean. Pure.

Identities a loyalty programme can use (config `identity`):
- uid: the contactless UID (`FF CA 00 00 00`), as decimal digits after an optional
  prefix, zero-padded to a fixed width by UID length (4 bytes: 10 digits, 7: 17,
  8: 20, 10: 25). Decimal rather than hex because the range check of
  drivers.cards applies to the resulting number and ranges are digits: a programme
  using 7-byte NTAG UIDs with `uid_prefix = "99"` configures a range with prefix
  "99" and length 19;
- mifare_block: the member number written in ASCII digits in one MIFARE Classic
  block, padded with NUL or spaces; read with Load Keys (`FF 82`), General
  Authenticate (`FF 86`) and Read Binary (`FF B0`);
- aid: an ISO 7816 loyalty application selected by AID (`00 A4 04 00`), whose
  member number is read with GET DATA for tag 5A (`00 CA 00 5A 00`), in BCD padded
  with F as EMV writes an application PAN. The value may come bare or wrapped in
  its tag and length (`5A 08 ...`); both are accepted.

Every parser here takes arbitrary card bytes and returns a value or raises
CardCommandFailed (a DriverError), never anything else.
"""

from __future__ import annotations

from drivers.errors import CardCommandFailed

UID_WIDTHS = {4: 10, 7: 17, 8: 20, 10: 25}  # UID bytes -> decimal digits of the largest UID
KEY_BYTES = 6
TAG_MEMBER_NUMBER = 0x5A
BLOCK_BYTES = 16
MEMBER_DIGITS_MAX = 32

GET_UID = bytes.fromhex("FFCA000000")
GET_MEMBER_NUMBER = bytes.fromhex("00CA005A00")

_STATUS: dict[tuple[int, int], str] = {
    (0x62, 0x82): "the card ended the data early (end of file reached)",
    (0x63, 0x00): "authentication failed: the card refused the key (wrong MIFARE key or key type)",
    (0x64, 0x00): "the card reports an execution error; present the card again",
    (0x65, 0x81): "the card reports a memory failure",
    (0x67, 0x00): "wrong length in the command (check the reader configuration)",
    (0x68, 0x00): "the card does not support this class of command",
    (0x69, 0x81): "the command is incompatible with the card's file structure",
    (0x69, 0x82): "security status not satisfied: the block was read without authentication",
    (0x69, 0x83): "the key is blocked on this card",
    (0x69, 0x85): "conditions of use not satisfied",
    (0x69, 0x86): "command not allowed (no current file or block)",
    (0x6A, 0x81): "the reader or card does not support this function",
    (0x6A, 0x82): "the loyalty application (AID) or file is not on this card",
    (0x6A, 0x86): "wrong parameters P1/P2 (check the configured block number)",
    (0x6A, 0x88): "the card holds no member number (referenced data not found)",
    (0x6B, 0x00): "wrong parameters: the block is outside the card",
    (0x6D, 0x00): "the card does not know this instruction (not the expected kind of card)",
    (0x6E, 0x00): "the card does not support this class (not the expected kind of card)",
    (0x6F, 0x00): "the card failed without a precise diagnosis",
}


def status_message(sw1: int, sw2: int) -> str:
    if (sw1, sw2) in _STATUS:
        return _STATUS[(sw1, sw2)]
    if sw1 == 0x61:
        return f"the card has {sw2} more bytes to send (the reader did not fetch them with GET RESPONSE)"
    if sw1 == 0x6C:
        return f"wrong expected length: the card has {sw2} bytes (check the reader configuration)"
    if sw1 == 0x63 and sw2 & 0xF0 == 0xC0:
        return f"verification failed; {sw2 & 0x0F} tries left"
    return f"the card answered with status {sw1:02X} {sw2:02X}"


def check(response: bytes, what: str) -> bytes:
    """The data of a response APDU if its status word is 90 00; CardCommandFailed otherwise."""
    if len(response) < 2:
        raise CardCommandFailed(f"{what}: the card's answer is too short ({len(response)} bytes)")
    sw1, sw2 = response[-2], response[-1]
    if (sw1, sw2) != (0x90, 0x00):
        raise CardCommandFailed(f"{what}: {status_message(sw1, sw2)}", sw1, sw2)
    return response[:-2]


def uid_number(uid: bytes, prefix: str = "") -> str:
    if len(uid) not in UID_WIDTHS:
        raise CardCommandFailed(f"the card's UID is {len(uid)} bytes; expected 4, 7, 8 or 10")
    return f"{prefix}{int.from_bytes(uid, 'big'):0{UID_WIDTHS[len(uid)]}d}"


def load_key(key: bytes, slot: int = 0) -> bytes:
    """Load Keys into the reader's volatile key slot (PC/SC part 3)."""
    if len(key) != KEY_BYTES:
        raise ValueError("a MIFARE Classic key is 6 bytes")
    return bytes([0xFF, 0x82, 0x00, slot, 0x06]) + key


def authenticate(block: int, key_type: str = "A", slot: int = 0) -> bytes:
    """General Authenticate of `block` with the key in `slot`, as key A (60) or B (61)."""
    if key_type not in ("A", "B"):
        raise ValueError("the MIFARE key type is A or B")
    return bytes([0xFF, 0x86, 0x00, 0x00, 0x05, 0x01, 0x00, block, 0x60 if key_type == "A" else 0x61, slot])


def read_block(block: int) -> bytes:
    return bytes([0xFF, 0xB0, 0x00, block, BLOCK_BYTES])


def select_aid(aid: bytes) -> bytes:
    if not 5 <= len(aid) <= 16:
        raise ValueError("an AID is 5 to 16 bytes")
    return bytes([0x00, 0xA4, 0x04, 0x00, len(aid)]) + aid + b"\x00"


def block_number(data: bytes) -> str:
    """The member number in a MIFARE block: ASCII digits, then NUL or space padding."""
    if len(data) != BLOCK_BYTES:
        raise CardCommandFailed(f"a MIFARE block is {BLOCK_BYTES} bytes; the card sent {len(data)}")
    text = data.rstrip(b"\x00 ")
    if not text or not text.isdigit():
        raise CardCommandFailed("the configured block holds no member number (expected ASCII digits)")
    return text.decode("ascii")


def bcd_number(data: bytes) -> str:
    """A BCD member number padded with F nibbles (as EMV's tag 5A), bare or as 5A-length-value."""
    if len(data) >= 2 and data[0] == TAG_MEMBER_NUMBER and data[1] == len(data) - 2:
        data = data[2:]
    digits = data.hex().upper().rstrip("F")
    if not digits or not digits.isdigit() or len(digits) > MEMBER_DIGITS_MAX:
        raise CardCommandFailed("the loyalty application returned no valid member number")
    return digits
