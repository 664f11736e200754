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
- aid: an ISO 7816 loyalty application selected by AID (`00 A4 04 00`). Where the
  member number is then depends on the applet (config `aid_read`):
  - get_data (the default): GET DATA for a tag (`00 CA 00 5A 00` for tag 5A); the
    value may come bare or wrapped in its tag and length (`5A 08 ...`);
  - select_data: the SELECT answer's data is the number itself;
  - select_tlv: the number is the value of a tag (5A by default) somewhere in the
    SELECT answer's BER-TLV objects (e.g. inside the FCI template 6F / A5 / BF0C);
  - read_binary: SELECT of an elementary file by its id (`00 A4 02 0C 02 id`), then
    READ BINARY (`00 B0 offset length`).
  The digits are BCD padded with F (as EMV writes an application PAN) or ASCII
  padded with NUL, space or FF (config `aid_encoding`).

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
TLV_DEPTH_MAX = 8  # constructed objects nested deeper than this are not searched (an FCI nests 3)
TLV_TAG_BYTES_MAX = 3  # ISO 7816-4 tags are 1 to 3 bytes
TLV_LENGTH_BYTES_MAX = 3  # 81, 82, 83 length forms: values up to 16 MB, far beyond any APDU
READ_BINARY_OFFSET_MAX = 0x7FFF  # 15 bits: P1 bit 8 set would mean a short EF id instead
APDU_DATA_MAX = 256  # a short APDU's Le: 1 to 256 bytes (256 is written as 00)
ENCODINGS = ("bcd", "ascii")
_ASCII_PADDING = b"\x00 \xff"

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


def bcd_digits(data: bytes) -> str:
    """A member number in BCD padded with F nibbles (as EMV's tag 5A), exactly as given."""
    digits = data.hex().upper().rstrip("F")
    if not digits or not digits.isdigit() or len(digits) > MEMBER_DIGITS_MAX:
        raise CardCommandFailed("the loyalty application returned no valid member number (expected BCD digits)")
    return digits


def ascii_digits(data: bytes) -> str:
    """A member number in ASCII digits, padded at the end with NUL, space or FF bytes."""
    text = data.rstrip(_ASCII_PADDING)
    if not text or not text.isdigit() or len(text) > MEMBER_DIGITS_MAX:
        raise CardCommandFailed("the loyalty application returned no valid member number (expected ASCII digits)")
    return text.decode("ascii")


def digits(data: bytes, encoding: str) -> str:
    """The member number in `data` written as `encoding` (bcd or ascii)."""
    if encoding == "bcd":
        return bcd_digits(data)
    if encoding == "ascii":
        return ascii_digits(data)
    raise ValueError(f"the encoding is one of {ENCODINGS}")


def unwrap(data: bytes, tag: bytes) -> bytes:
    """The value of `data` if it is exactly one TLV object with `tag` (short length form),
    else `data` as it is: GET DATA answers come both ways."""
    n = len(tag)
    if len(data) >= n + 1 and data[:n] == tag and data[n] == len(data) - n - 1 and data[n] < 0x80:
        return data[n + 1:]
    return data


def bcd_number(data: bytes, tag: bytes = bytes([TAG_MEMBER_NUMBER])) -> str:
    """A BCD member number padded with F nibbles (as EMV's tag 5A), bare or as tag-length-value."""
    return bcd_digits(unwrap(data, tag))


def _tlv_objects(data: bytes, depth: int, tag: bytes) -> bytes | None:
    """Depth first, the value of the first object with `tag` in `data`; None when absent."""
    if depth > TLV_DEPTH_MAX:
        return None  # nested too deep to be a real answer: not searched
    i, end = 0, len(data)
    while i < end:
        if data[i] in (0x00, 0xFF):  # padding between objects (ISO 7816-4)
            i += 1
            continue
        start = i
        i += 1
        if data[start] & 0x1F == 0x1F:  # the tag goes on: subsequent bytes while bit 8 is set
            while True:
                if i >= end:
                    raise CardCommandFailed("the card's answer is not valid BER-TLV (a tag is cut off)")
                i += 1
                if not data[i - 1] & 0x80:
                    break
                if i - start >= TLV_TAG_BYTES_MAX:
                    raise CardCommandFailed("the card's answer is not valid BER-TLV (a tag is too long)")
        found = data[start:i]
        if i >= end:
            raise CardCommandFailed("the card's answer is not valid BER-TLV (a length is missing)")
        first = data[i]
        i += 1
        if first < 0x80:
            length = first
        else:
            size = first & 0x7F
            if not 1 <= size <= TLV_LENGTH_BYTES_MAX or i + size > end:
                raise CardCommandFailed("the card's answer is not valid BER-TLV (a bad length field)")
            length = int.from_bytes(data[i:i + size], "big")
            i += size
        if i + length > end:
            raise CardCommandFailed("the card's answer is not valid BER-TLV (a value is cut off)")
        value = data[i:i + length]
        i += length
        if found == tag:
            return value
        if found[0] & 0x20:  # constructed: its value is more objects
            inner = _tlv_objects(value, depth + 1, tag)
            if inner is not None:
                return inner
    return None


def tlv_find(data: bytes, tag: bytes) -> bytes:
    """The value of `tag` in BER-TLV `data`, searching inside constructed objects (FCI
    6F, A5, BF0C ...). CardCommandFailed when the data is not BER-TLV or has no such tag."""
    if not 1 <= len(tag) <= TLV_TAG_BYTES_MAX:
        raise ValueError(f"a BER-TLV tag is 1 to {TLV_TAG_BYTES_MAX} bytes")
    value = _tlv_objects(data, 0, tag)
    if value is None:
        raise CardCommandFailed(f"the card's answer holds no tag {tag.hex().upper()} (no member number)")
    return value


def get_data(tag: bytes) -> bytes:
    """GET DATA for a 1- or 2-byte tag: P1 P2 are the tag."""
    if len(tag) == 1:
        return bytes([0x00, 0xCA, 0x00, tag[0], 0x00])
    if len(tag) == 2:
        return bytes([0x00, 0xCA, tag[0], tag[1], 0x00])
    raise ValueError("GET DATA takes a 1- or 2-byte tag")


def select_file(file_id: bytes) -> bytes:
    """SELECT an elementary file by its 2-byte id in the current application, no answer data."""
    if len(file_id) != 2:
        raise ValueError("a file id is 2 bytes")
    return bytes([0x00, 0xA4, 0x02, 0x0C, 0x02]) + file_id


def read_binary(offset: int, length: int) -> bytes:
    """READ BINARY of `length` bytes (1 to 256; 0: Le 00, as many as the file has) at `offset`."""
    if not 0 <= offset <= READ_BINARY_OFFSET_MAX:
        raise ValueError(f"a READ BINARY offset is 0 to {READ_BINARY_OFFSET_MAX}")
    if not 0 <= length <= APDU_DATA_MAX:
        raise ValueError(f"a READ BINARY length is 0 to {APDU_DATA_MAX}")
    return bytes([0x00, 0xB0, offset >> 8, offset & 0xFF, length & 0xFF])


def get_response(length: int) -> bytes:
    """GET RESPONSE for the `length` bytes a card announced with 61 xx (T=0)."""
    return bytes([0x00, 0xC0, 0x00, 0x00, length & 0xFF])


def with_le(command: bytes, le: int) -> bytes:
    """`command` sent again with the Le the card asked for with 6C xx."""
    if len(command) < 5:
        raise ValueError("a command APDU is at least 5 bytes here")
    has_le = len(command) == 5 or len(command) == 5 + command[4] + 1
    return (command[:-1] if has_le else command) + bytes([le & 0xFF])
