"""The shared streaming writer: a table never runs past a sheet's last row (its
header and note count), and each date is a real Excel date, with its Jalali text
beside it in Persian."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import openpyxl
import pytest

from ledger.reports import workbook
from ledger.reports.workbook import Book, Col

COLS = [Col("When", "زمان", "time"), Col("Day", "روز", "day"), Col("Rial", "ریال", "int")]


def test_a_sheet_keeps_its_header_and_note_inside_excels_last_row(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workbook, "EXCEL_SHEET_ROWS", 5)  # as if Excel had five rows a sheet
    out = tmp_path / "t.xlsx"
    book = Book(out, "en")  # the default limit: Excel's
    placed = book.table(("Lines", "اقلام"), COLS, ((f"2026-03-01T09:00:0{i}.000000Z", date(2026, 3, 1), i)
                                                  for i in range(7)), note="period")
    book.close()
    assert placed.sheets == ["Lines", "Lines (2)", "Lines (3)"] and placed.last_rows == [3, 3, 1]
    wb = openpyxl.load_workbook(out)
    assert all(ws.max_row <= 5 for ws in wb.worksheets)
    values = [r[2] for ws in wb.worksheets for r in ws.iter_rows(min_row=3, values_only=True)]
    assert values == list(range(7))


def test_persian_puts_the_jalali_text_beside_a_real_date(tmp_path: Path) -> None:
    out = tmp_path / "fa.xlsx"
    book = Book(out, "fa")
    book.table(("Lines", "اقلام"), COLS, [("2026-03-20T21:00:00.000000Z", date(2026, 3, 21), 1_000_000),
                                          (None, None, 0)])
    book.close()
    ws = openpyxl.load_workbook(out).worksheets[0]
    assert ws.title == "اقلام" and ws.sheet_view.rightToLeft
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0] == ("زمان (شمسی)", "زمان", "روز (شمسی)", "روز", "ریال")
    assert rows[1] == ("1405/01/01 00:30", datetime(2026, 3, 21, 0, 30), "1405/01/01", datetime(2026, 3, 21),
                       1_000_000)  # Nowruz, in Tehran
    assert rows[2][:4] == (None, None, None, None) and rows[2][4] == 0
    assert ws.cell(2, 4).number_format == "yyyy-mm-dd" and ws.cell(2, 5).number_format == "#,##0"
