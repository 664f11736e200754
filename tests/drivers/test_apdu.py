"""APDUs and card answers: status words, member numbers from UIDs, blocks and BCD."""

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
