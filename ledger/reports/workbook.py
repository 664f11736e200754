"""A streaming workbook of typed tables, shared by the terminal's and the hub's reports.

Rows go straight from a query into XlsxWriter's constant-memory mode: a sheet of a
million rows costs the time of writing it, not the memory of holding it. Each column
has a kind: money and counts stay integers (shown with thousands separators), times
are the stores' local time as real Excel dates, and in Persian a Jalali text column
stands beside each date (the text to read, the date to sort and filter by), on sheets
that read right to left. A table longer than a sheet continues on the next one,
"Sale lines (2)", with its header repeated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import jdatetime

from ledger.progress import NO_PROGRESS, Progress
from ledger.timefmt import IRAN_OFFSET

EXCEL_SHEET_ROWS = 1_048_576  # rows of an Excel sheet, header included
EXCEL_ROWS_MAX = EXCEL_SHEET_ROWS - 1  # a sheet's data rows below a one-row header
SHEET_NAME_MAX = 31  # characters Excel allows in a sheet's name
PROGRESS_EVERY = 10_000  # rows between two reports to the progress bar
JALALI_DAYS_MAX = 10_000  # days whose Jalali form is kept while one table is written

KINDS = ("text", "int", "time", "day", "percent", "number")


@dataclass(frozen=True)
class Col:
    """A column: its header in both languages and what its cells hold.
    text: as given; int: Rial, points or a count (an integer); time: a UTC instant
    (the ledger's text form or an aware datetime) shown as the stores' local time;
    day: a local calendar date; percent: a float 0..1 shown as a percentage;
    number: a float with two decimals."""

    en: str
    fa: str
    kind: str = "text"
    width: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"column {self.en!r}: no kind {self.kind!r}")


@dataclass
class Placed:
    """Where a table went: the sheets it filled and the output column of each source
    column (a Persian date column is two: the Jalali text, then the date)."""

    sheets: list[str] = field(default_factory=list)
    rows: int = 0
    columns: list[int] = field(default_factory=list)
    last_rows: list[int] = field(default_factory=list)  # data rows on each sheet


def jalali_text(day: date) -> str:
    return jdatetime.date.fromgregorian(date=day).strftime("%Y/%m/%d")


def local_datetime(value: Any) -> datetime | None:
    """A ledger time (UTC text 'YYYY-MM-DDTHH:MM:SS.ffffffZ' or an aware datetime) as the
    stores' local wall-clock time, naive (what an Excel date cell holds)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return datetime.fromisoformat(value[:26]) + IRAN_OFFSET  # the ledger's one fixed form, without its Z
    return (value + IRAN_OFFSET).replace(tzinfo=None)


_EXCEL_EPOCH = datetime(1899, 12, 30)  # day 0 of Excel's 1900 date system (as XlsxWriter counts)
_EXCEL_EPOCH_ORDINAL = _EXCEL_EPOCH.toordinal()
_DAY = timedelta(days=1)


def excel_serial(at: datetime) -> float:
    """A naive local time as Excel stores a date: days since its epoch. Written as a
    number under a date format it is a date cell (what XlsxWriter's write_datetime
    writes), for a fraction of the cost on a million rows."""
    return (at - _EXCEL_EPOCH) / _DAY


class Book:
    """One workbook being written. Tables come one after the other (constant memory
    writes a sheet's rows in order, and a sheet once left is closed)."""

    def __init__(self, path: Path, locale: str, *, rows_max: int = EXCEL_ROWS_MAX,
                 progress: Progress = NO_PROGRESS) -> None:
        import xlsxwriter

        if rows_max < 1:
            raise ValueError("rows_max must be at least 1")
        self.fa = locale == "fa"
        self.rows_max = rows_max
        self.progress = progress
        self.book = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_numbers": False,
                                                    "strings_to_formulas": False, "strings_to_urls": False})
        self.bold = self.book.add_format({"bold": True, "text_wrap": True, "valign": "top"})
        self.wrap = self.book.add_format({"text_wrap": True, "valign": "top"})
        self.formats = {
            "int": self.book.add_format({"num_format": "#,##0"}),
            "time": self.book.add_format({"num_format": "yyyy-mm-dd hh:mm"}),
            "day": self.book.add_format({"num_format": "yyyy-mm-dd"}),
            "percent": self.book.add_format({"num_format": "0.0%"}),
            "number": self.book.add_format({"num_format": "#,##0.00"}),
        }
        self.names: set[str] = set()

    def text(self, en: str, fa: str) -> str:
        return fa if self.fa else en

    def _name(self, title: str, part: int) -> str:
        suffix = f" ({part})" if part > 1 else ""
        name = title[:SHEET_NAME_MAX - len(suffix)] + suffix
        for c in "[]:*?/\\":
            name = name.replace(c, " ")
        if name.lower() in self.names:
            raise ValueError(f"two sheets called {name!r}")
        self.names.add(name.lower())
        return name

    def worksheet(self, title: str, part: int = 1) -> Any:
        ws = self.book.add_worksheet(self._name(title, part))
        if self.fa:
            ws.right_to_left()
        return ws

    def _converter(self, cols: Sequence[Col]) -> tuple[list[Col], Callable[[Sequence[Any]], list[Any]], list[int]]:
        """The output columns, a function from a source row to its output cells, and
        the output column of each source column."""
        fa = self.fa
        out: list[Col] = []
        where: list[int] = []
        for c in cols:
            if fa and c.kind in ("time", "day"):
                out.append(Col(c.en, c.fa + " (شمسی)", "text", 16 if c.kind == "time" else 11))
            where.append(len(out))
            out.append(c)
        times = [i for i, c in enumerate(cols) if c.kind == "time"]
        days = [i for i, c in enumerate(cols) if c.kind == "day"]
        if not times and not days:
            return out, list, where
        spots = sorted(times + days)
        jalali: dict[date, str] = {}

        def jalali_of(day: date) -> str:
            text = jalali.get(day)
            if text is None:
                if len(jalali) >= JALALI_DAYS_MAX:
                    jalali.clear()
                text = jalali[day] = jalali_text(day)
            return text

        def convert(row: Sequence[Any]) -> list[Any]:
            # rows are slices put together, not cells appended: this runs a million times
            cells = row if type(row) is list else list(row)
            wide: list[Any] = []
            start = 0
            for i in spots:
                v = cells[i]
                if v is None or v == "":
                    shown, serial = "", None
                elif i in days:
                    shown, serial = (jalali_of(v) if fa else ""), v.toordinal() - _EXCEL_EPOCH_ORDINAL
                else:
                    at = local_datetime(v)
                    serial = excel_serial(at)  # type: ignore[arg-type]
                    shown = f"{jalali_of(at.date())} {at.hour:02d}:{at.minute:02d}" if fa else ""  # type: ignore[union-attr]
                wide += cells[start:i]
                if fa:
                    wide.append(shown)
                wide.append(serial)
                start = i + 1
            wide += cells[start:]
            return wide

        return out, convert, where

    def _begin(self, title: str, part: int, out: Sequence[Col], note: str | None) -> tuple[Any, int]:
        ws = self.worksheet(title, part)
        first = 0
        if note:  # a line above the header saying what the sheet holds (filters, period)
            ws.write_string(0, 0, note)
            first = 1
        ws.write_row(first, 0, [self.text(c.en, c.fa) for c in out], self.bold)
        for j, c in enumerate(out):
            width = c.width or {"time": 17, "day": 11, "int": 14, "percent": 9, "number": 12}.get(c.kind, 16)
            ws.set_column(j, j, width, self.formats.get(c.kind))
        ws.freeze_panes(first + 1, 0)
        return ws, first

    def table(self, title: tuple[str, str], cols: Sequence[Col], rows: Iterable[Sequence[Any]],
              note: str | None = None) -> Placed:
        """Write the rows under a header; past `rows_max` rows, on to "Title (2)"."""
        name = self.text(*title)
        out, convert, where = self._converter(cols)
        placed = Placed(columns=where)
        part = 1
        ws, first = self._begin(name, part, out, note)
        placed.sheets.append(ws.name)
        # a sheet holds its header (and note) too: past Excel's last row XlsxWriter
        # would drop the rows without a word
        rows_max = min(self.rows_max, EXCEL_SHEET_ROWS - first - 1)
        write_row, advance = ws.write_row, self.progress.advance
        n = on_sheet = 0
        for row in rows:
            if on_sheet == rows_max:
                placed.last_rows.append(on_sheet)
                part += 1
                ws, first = self._begin(name, part, out, note)
                placed.sheets.append(ws.name)
                write_row, on_sheet = ws.write_row, 0
            on_sheet += 1
            n += 1
            write_row(first + on_sheet, 0, convert(row))
            if n % PROGRESS_EVERY == 0:
                advance(PROGRESS_EVERY)
        advance(n % PROGRESS_EVERY)
        placed.last_rows.append(on_sheet)
        placed.rows = n
        return placed

    def close(self) -> None:
        self.book.close()

