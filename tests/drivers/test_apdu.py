"""APDUs and card answers: status words, member numbers from UIDs, blocks, BCD, ASCII and BER-TLV."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers import apdu
from drivers.errors import CardCommandFailed, DriverError

STATUS = [
    ("6300", "wrong MIFARE key"),
    ("6A82", "not on this card"),
    ("6982", "without authentication"),
    ("6A81", "does not support this function"),
    ("6C10", "the card has 16 bytes"),
    ("6700", "wrong length"),
    ("6D00", "does not know this instruction"),
    ("6E00", "does not support this class"),
    ("6282", "ended the data early"),
    ("6400", "execution error"),
    ("63C2", "2 tries left"),
    ("6110", "16 more bytes"),
    ("6A88", "holds no member number"),
    ("9999", "status 99 99"),
]


@pytest.mark.parametrize("sw,words", STATUS)
def test_every_status_word_has_a_clear_message(sw: str, words: str) -> None:
    with pytest.raises(CardCommandFailed, match=words) as err:
        apdu.check(bytes.fromhex("0102" + sw), "reading block 4")
    assert str(err.value).startswith("reading block 4: ")
    assert (err.value.sw1, err.value.sw2) == (int(sw[:2], 16), int(sw[2:], 16))


def test_every_other_status_word_fails_with_its_hex_and_only_9000_succeeds() -> None:
    for sw in range(0x10000):
        sw1, sw2 = sw >> 8, sw & 0xFF
        if (sw1, sw2) == (0x90, 0x00):
            assert apdu.check(b"\x01\x90\x00", "x") == b"\x01"
            continue
        with pytest.raises(CardCommandFailed) as err:
            apdu.check(bytes([sw1, sw2]), "x")
        assert len(str(err.value)) > len("x: ") + 10 and (err.value.sw1, err.value.sw2) == (sw1, sw2)


def test_an_answer_without_a_status_word_is_a_clear_failure() -> None:
    for short in (b"", b"\x90"):
        with pytest.raises(CardCommandFailed, match="too short"):
            apdu.check(short, "reading the UID")


def test_commands_are_encoded_as_the_pcsc_part_3_spec_says() -> None:
    assert apdu.GET_UID.hex().upper() == "FFCA000000"
    assert apdu.load_key(bytes.fromhex("A0A1A2A3A4A5")).hex().upper() == "FF82000006A0A1A2A3A4A5"
    assert apdu.authenticate(5, "A").hex().upper() == "FF860000050100056000"
    assert apdu.authenticate(5, "B", slot=1).hex().upper() == "FF860000050100056101"
    assert apdu.read_block(5).hex().upper() == "FFB0000510"
    assert apdu.select_aid(bytes.fromhex("F0010203040506")).hex().upper() == "00A4040007F001020304050600"
    assert apdu.GET_MEMBER_NUMBER.hex().upper() == "00CA005A00"
    for bad in (lambda: apdu.load_key(b"\x00" * 5), lambda: apdu.authenticate(4, "C"),
                lambda: apdu.select_aid(b"\x01\x02")):
        with pytest.raises(ValueError):
            bad()


def test_member_numbers_from_uid_block_and_bcd() -> None:
    assert apdu.uid_number(bytes.fromhex("DEADBEEF")) == f"{0xDEADBEEF:010d}"
    assert apdu.uid_number(bytes.fromhex("04A1B2C3D4E5F6"), "99") == "99" + f"{0x04A1B2C3D4E5F6:017d}"
    assert apdu.block_number(b"6395000000000042" + b"") == "6395000000000042"
    assert apdu.block_number(b"12345678" + b"\x00" * 8) == "12345678"
    assert apdu.block_number(b"12345678" + b" " * 8) == "12345678"
    assert apdu.bcd_number(bytes.fromhex("6395000000000042")) == "6395000000000042"
    assert apdu.bcd_number(bytes.fromhex("123456789F")) == "123456789"
    assert apdu.bcd_number(bytes.fromhex("5A08") + bytes.fromhex("6395000000000042")) == "6395000000000042"
    assert apdu.uid_number(bytes.fromhex("0102030405060708")) == f"{0x0102030405060708:020d}"
    assert apdu.uid_number(b"\xff" * 10) == str(int.from_bytes(b"\xff" * 10, "big"))  # the widest fits
    for bad_bcd in (b"", b"\xff" * 4, bytes.fromhex("12A4"), bytes.fromhex("5A03123F")):
        with pytest.raises(CardCommandFailed):
            apdu.bcd_number(bad_bcd)
    for bad in (b"\x00" * 16, b"ABCD" + b"\x00" * 12, b"123"):
        with pytest.raises(CardCommandFailed):
            apdu.block_number(bad)
    with pytest.raises(CardCommandFailed, match="expected 4, 7, 8 or 10"):
        apdu.uid_number(b"\x01\x02")


@settings(max_examples=300)
@given(st.binary(max_size=20), st.integers(0, 255), st.integers(0, 255))
def test_any_response_apdu_gives_its_data_or_a_card_command_failure(data: bytes, sw1: int, sw2: int) -> None:
    try:
        assert apdu.check(data + bytes([sw1, sw2]), "x") == data and (sw1, sw2) == (0x90, 0x00)
    except CardCommandFailed as exc:
        assert (exc.sw1, exc.sw2) == (sw1, sw2)


@settings(max_examples=1000)
@given(st.one_of(st.binary(max_size=40), st.binary(min_size=16, max_size=16),
                 st.builds(lambda n, tail: bytes([0x5A, n]) + tail, st.integers(0, 255), st.binary(max_size=20))))
def test_parsers_of_card_bytes_give_a_result_or_a_driver_error(data: bytes) -> None:
    for parse in (lambda: apdu.check(data, "x"), lambda: apdu.uid_number(data), lambda: apdu.block_number(data),
                  lambda: apdu.bcd_number(data)):
        try:
            result = parse()
        except DriverError:
            continue
        assert isinstance(result, (bytes, str))


# -- the AID read recipes: SELECT answers, TLV, files, ASCII and BCD digits -----------

def _tlv(tag: bytes, value: bytes) -> bytes:
    n = len(value)
    length = bytes([n]) if n < 0x80 else bytes([0x81, n]) if n < 0x100 else bytes([0x82, n >> 8, n & 0xFF])
    return tag + length + value


def test_aid_recipe_commands_are_encoded_as_iso_7816_4_says() -> None:
    assert apdu.get_data(b"\x5a") == apdu.GET_MEMBER_NUMBER
    assert apdu.get_data(bytes.fromhex("DF20")).hex().upper() == "00CADF2000"
    assert apdu.select_file(bytes.fromhex("0101")).hex().upper() == "00A4020C020101"
    assert apdu.read_binary(0, 0).hex().upper() == "00B0000000"
    assert apdu.read_binary(0x1234, 256).hex().upper() == "00B0123400"
    assert apdu.read_binary(3, 8).hex().upper() == "00B0000308"
    assert apdu.get_response(0x10).hex().upper() == "00C0000010"
    assert apdu.with_le(bytes.fromhex("00B0000340"), 8).hex().upper() == "00B0000308"
    select = apdu.select_aid(bytes.fromhex("F0010203040506"))
    assert apdu.with_le(select, 0x20).hex().upper() == "00A4040007F001020304050620"
    assert apdu.with_le(apdu.select_file(b"\x01\x01"), 0x10).hex().upper() == "00A4020C02010110"  # Le added
    for bad in (lambda: apdu.get_data(b""), lambda: apdu.get_data(b"\x01\x02\x03"), lambda: apdu.select_file(b"\x01"),
                lambda: apdu.read_binary(0x8000, 1), lambda: apdu.read_binary(0, 257), lambda: apdu.tlv_find(b"", b""),
                lambda: apdu.digits(b"1", "ebcdic")):
        with pytest.raises(ValueError):
            bad()


def test_member_numbers_in_bcd_and_ascii() -> None:
    assert apdu.digits(bytes.fromhex("6395000000000042"), "bcd") == "6395000000000042"
    assert apdu.digits(bytes.fromhex("123456789FFF"), "bcd") == "123456789"
    assert apdu.digits(b"6395000000000042", "ascii") == "6395000000000042"
    assert apdu.digits(b"12345678\x00\x00  \xff\xff", "ascii") == "12345678"
    for data, encoding in ((b"", "bcd"), (b"\xff\xff", "bcd"), (bytes.fromhex("12A4"), "bcd"),
                           (bytes.fromhex("5A08") + b"\x63" * 8, "bcd"),  # select_data takes no wrapper
                           (b"", "ascii"), (b"\x00  ", "ascii"), (b"12 34", "ascii"), (b"1" * 33, "ascii"),
                           ("١٢٣".encode(), "ascii")):
        with pytest.raises(CardCommandFailed, match="no valid member number"):
            apdu.digits(data, encoding)


def test_unwrap_takes_a_value_out_of_its_own_tag_only() -> None:
    assert apdu.unwrap(bytes.fromhex("5A03123456"), b"\x5a") == bytes.fromhex("123456")
    assert apdu.unwrap(bytes.fromhex("DF2002") + b"42", bytes.fromhex("DF20")) == b"42"
    assert apdu.unwrap(bytes.fromhex("5A04123456"), b"\x5a") == bytes.fromhex("5A04123456")  # length disagrees
    assert apdu.unwrap(bytes.fromhex("123456"), b"\x5a") == bytes.fromhex("123456")
    assert apdu.bcd_number(bytes.fromhex("DF20021234"), bytes.fromhex("DF20")) == "1234"


def test_tlv_find_searches_nested_templates_and_skips_padding() -> None:
    aid = bytes.fromhex("F0010203040506")
    pan = bytes.fromhex("6395000000000042")
    fci = _tlv(b"\x6f", _tlv(b"\x84", aid) + _tlv(b"\xa5", _tlv(b"\x50", b"LOYALTY")
                                                   + _tlv(b"\xbf\x0c", _tlv(b"\x5a", pan))))
    assert apdu.tlv_find(fci, b"\x5a") == pan
    assert apdu.tlv_find(fci, b"\x84") == aid
    assert apdu.tlv_find(b"\x00\xff" + _tlv(b"\x9f\x7f", b"1" * 200) + b"\x00", b"\x9f\x7f") == b"1" * 200  # 81 form
    assert apdu.tlv_find(_tlv(b"\x5a", b"\x01") + _tlv(b"\x5a", b"\x02"), b"\x5a") == b"\x01"  # the first one
    assert apdu.tlv_find(_tlv(b"\xbf\x81\x01", b"x"), b"\xbf\x81\x01") == b"x"  # 3-byte tag
    assert apdu.tlv_find(bytes.fromhex("5A820002") + b"\x12\x34", b"\x5a") == b"\x12\x34"  # 82 length form
    with pytest.raises(CardCommandFailed, match="no tag 5A"):
        apdu.tlv_find(_tlv(b"\x6f", _tlv(b"\x84", aid)), b"\x5a")
    with pytest.raises(CardCommandFailed, match="no tag 5A"):
        apdu.tlv_find(b"", b"\x5a")
    nested = _tlv(b"\x5a", pan)
    for _ in range(apdu.TLV_DEPTH_MAX + 1):
        nested = _tlv(b"\xa5", nested)
    with pytest.raises(CardCommandFailed, match="no tag 5A"):  # deeper than any real answer: not searched
        apdu.tlv_find(nested, b"\x5a")
    for broken, why in ((b"\x6f", "length is missing"), (b"\x6f\x05\x84", "value is cut off"),
                        (b"\x9f", "tag is cut off"), (b"\x9f\x81\x81\x01\x00", "tag is too long"),
                        (b"\x5a\x80", "bad length"), (b"\x5a\x85\x01", "bad length"),
                        (b"\x5a\x82\x01", "bad length"), (b"\x6f\x04\x5a\x05\x01\x02", "value is cut off")):
        with pytest.raises(CardCommandFailed, match=why):
            apdu.tlv_find(broken, b"\x5a")


TAGS = st.sampled_from([b"\x5a", b"\x84", b"\x50", b"\x9f\x7f", b"\xdf\x20", b"\x6f", b"\xa5", b"\xbf\x0c"])


@st.composite
def tlv_trees(draw: st.DrawFn, depth: int = 0) -> bytes:
    """Well-formed BER-TLV: primitive objects and constructed ones holding more."""
    out = b""
    for _ in range(draw(st.integers(0, 3))):
        if depth < 3 and draw(st.booleans()):
            out += _tlv(draw(st.sampled_from([b"\x6f", b"\xa5", b"\xbf\x0c", b"\x70"])), draw(tlv_trees(depth + 1)))
        else:
            tag = draw(st.sampled_from([b"\x84", b"\x50", b"\x9f\x7f", b"\xdf\x20"]))
            out += _tlv(tag, draw(st.binary(max_size=150)))
    return out


@settings(max_examples=500)
@given(tlv_trees(), tlv_trees(), st.binary(max_size=20))
def test_a_number_anywhere_in_well_formed_tlv_is_found(before: bytes, after: bytes, value: bytes) -> None:
    data = _tlv(b"\x6f", before + _tlv(b"\xa5", _tlv(b"\x5a", value)) + after)
    assert apdu.tlv_find(data, b"\x5a") == value


@settings(max_examples=3000)
@given(st.one_of(st.binary(max_size=300), tlv_trees(),
                 st.builds(lambda tree, cut: tree[:cut], tlv_trees(), st.integers(0, 300)),
                 st.builds(lambda tree, i, b: tree[:i] + bytes([b]) + tree[i + 1:], tlv_trees(),
                           st.integers(0, 300), st.integers(0, 255))),
       TAGS, st.sampled_from(["bcd", "ascii"]))
def test_any_select_answer_gives_a_number_or_a_driver_error(data: bytes, tag: bytes, encoding: str) -> None:
    """Random, truncated and corrupted TLV through every recipe's parsing: a value or a
    DriverError, never another exception."""
    for parse in (lambda: apdu.tlv_find(data, tag), lambda: apdu.digits(data, encoding),
                  lambda: apdu.digits(apdu.unwrap(data, tag), encoding),
                  lambda: apdu.digits(apdu.tlv_find(data, tag), encoding)):
        try:
            result = parse()
        except DriverError:
            continue
        assert isinstance(result, (bytes, str))
