"""Where a batch of printed card numbers comes from (sync/hub/stockfile.py): a range,
stepping the serial part of a Luhn range; a text file; the first column of an .xlsx
workbook, refusing a long number Excel stored as a number (its last digits are lost).
And the batch's check by the card policy, which shows a refused number masked only."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.cardpolicy import CardPolicy, CardRange, luhn_ok
from sync.errors import HubRefused
from sync.hub.stock import check_numbers
from sync.hub.stockfile import (
    STOCK_BATCH_MAX,
    check_digit,
    file_numbers,
    range_numbers,
    text_numbers,
    xlsx_numbers,
)

LUHN = CardPolicy((CardRange("6395", (16,), True),))
PLAIN = CardPolicy((CardRange("77", (10,), False),))


def card(serial: int) -> str:
    body = "6395" + str(serial).zfill(11)
    return body + check_digit(body)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 9 * 10**10), st.integers(0, 150))  # (639599... are Shetab bank cards, refused in any range)
def test_a_luhn_range_steps_the_serial_and_every_number_is_valid(start: int, extra: int) -> None:
    numbered = range_numbers(card(start), card(start + extra), LUHN)
    numbers = [n for _, n in numbered]
    assert len(numbers) == extra + 1 and numbers[0] == card(start) and numbers[-1] == card(start + extra)
    assert all(luhn_ok(n) and len(n) == 16 for n in numbers) and numbers == sorted(set(numbers))
    assert check_numbers(LUHN, numbered) == (numbers, [])


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10**8 - 1000), st.integers(0, 500))
def test_a_plain_range_is_every_number_between_with_its_leading_zeros(start: int, extra: int) -> None:
    first, last = "77" + str(start).zfill(8), "77" + str(start + extra).zfill(8)
    numbers = [n for _, n in range_numbers(first, last, PLAIN)]
    assert len(numbers) == extra + 1 and all(len(n) == 10 for n in numbers)
    assert [int(n) for n in numbers] == list(range(int(first), int(last) + 1))


def test_a_range_is_refused_when_it_cannot_be_one_batch() -> None:
    with pytest.raises(HubRefused, match="at most 100,000"):
        range_numbers("7700000000", str(7700000000 + STOCK_BATCH_MAX), PLAIN)
    with pytest.raises(HubRefused, match="before"):
        range_numbers("7700000010", "7700000001", PLAIN)
    with pytest.raises(HubRefused, match="same length"):
        range_numbers("770000001", "7700000010", PLAIN)
    with pytest.raises(HubRefused, match="check digit"):
        range_numbers("6395000000000010", card(5), LUHN)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 9 * 10**10), max_size=40),
       st.lists(st.sampled_from(["", "   ", "# a comment", "\t"]), max_size=10), st.randoms())
def test_a_text_file_gives_each_number_with_its_line(serials: list[int], noise: list[str], rnd) -> None:  # type: ignore[no-untyped-def]
    lines = [f"  {card(s)}\r" for s in serials] + noise
    rnd.shuffle(lines)
    numbered = text_numbers("\n".join(lines).encode(), "f.txt")
    assert [n for _, n in numbered] == [line.strip() for line in lines if line.strip() and
                                        not line.strip().startswith("#")]
    for where, number in numbered:
        assert lines[int(where.split()[1]) - 1].strip() == number


def test_a_file_that_is_neither_text_nor_a_workbook_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cards.bin"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(HubRefused, match="neither UTF-8 text nor an .xlsx"):
        file_numbers(path)
    with pytest.raises(HubRefused, match="cannot read"):
        file_numbers(tmp_path / "missing.txt")
    with pytest.raises(HubRefused, match="not an .xlsx"):
        xlsx_numbers(b"PK\x03\x04 not really a zip", "cards.xlsx")


def _workbook(values: list[object], header: str | None = None) -> bytes:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    if header is not None:
        sheet.append([header, "note"])
    for v in values:
        sheet.append([v, "printed 1405"])  # a second column that is not read
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_the_first_column_of_a_workbook_text_or_short_numbers(tmp_path: Path) -> None:
    path = tmp_path / "cards.xlsx"
    path.write_bytes(_workbook([card(1), card(2), 7700000123]))
    assert file_numbers(path) == [("row 1", card(1)), ("row 2", card(2)), ("row 3", "7700000123")]


def test_a_long_number_stored_as_a_number_in_excel_is_refused_not_rounded() -> None:
    with pytest.raises(HubRefused, match="row 2 .* 16 digits stored as a number"):
        xlsx_numbers(_workbook([card(1), 6395000000000012]), "cards.xlsx")


def test_a_header_row_is_refused_like_any_bad_number_naming_its_row() -> None:
    numbered = xlsx_numbers(_workbook([card(1)], header="card number"), "cards.xlsx")
    numbers, problems = check_numbers(LUHN, numbered)
    assert numbers == [card(1)] and len(problems) == 1 and problems[0].startswith("row 1:")


def test_a_batch_check_shows_refused_numbers_masked_and_names_where_they_were() -> None:
    numbered = [("line 1", card(1)), ("line 2", "4111 1111 1111 1111"), ("line 3", "7700000000000000"),
                ("line 4", card(1)), ("line 5", card(2)[:-1] + str((int(card(2)[-1]) + 1) % 10)),
                ("line 6", "not a card!")]
    numbers, problems = check_numbers(LUHN, numbered)
    assert numbers == [card(1)]
    assert [p.split(":")[0] for p in problems] == ["line 2", "line 3", "line 4", "line 5", "line 6"]
    assert "bank card (Visa 411111******1111)" in problems[0] and "twice (also line 1)" in problems[2]
    assert not any("4111111111111111" in p for p in problems)
