"""The members workbook, read as a stream (openpyxl's read-only mode: rows are parsed
as they are read, never held as a sheet), and the error workbook written beside it.

Every way a file can be unusable becomes an `ImportRefused` with one line that says
what to do; no openpyxl exception reaches the person.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sync.errors import ImportRefused
from sync.hub.memberimport.check import Problem
from sync.hub.memberimport.columns import Columns, HeaderProblem, read_header

IMPORT_ROWS_MAX = 1_000_000  # data rows in one file; a larger chain imports in several files
ERRORS_LISTED_MAX = 100_000  # problems written to the error workbook (the count says how many more)
FILE_BYTES_MAX = 512 * 1024 * 1024  # an .xlsx this large is no members list
HASH_CHUNK_BYTES = 1 << 20

# what openpyxl raises on a damaged workbook (an XML ParseError is a SyntaxError)
_DAMAGED = (zipfile.BadZipFile, KeyError, ValueError, TypeError, OSError, SyntaxError, EOFError)

ERROR_HEADERS = ("Row / ردیف", "Column / ستون", "Value / مقدار", "Code / کد", "Reason", "دلیل")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


class Sheet:
    """The first sheet of a workbook: its columns, a guess of its data rows (from the
    sheet's own dimension, which some writers leave out), and its rows after the
    header as (Excel row number, cells)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.is_file():
            raise ImportRefused(f"{path}: no such file")
        size = path.stat().st_size
        if size == 0:
            raise ImportRefused(f"{path}: the file is empty")
        if size > FILE_BYTES_MAX:
            raise ImportRefused(f"{path}: {size:,} bytes is more than a members workbook holds "
                                f"({FILE_BYTES_MAX // 2**20} MB at most); split it")
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise ImportRefused(f"{path}: cannot be read: {exc.strerror}") from None
        if not zipfile.is_zipfile(path):
            raise ImportRefused(f"{path}: not an Excel workbook (.xlsx); save it from Excel or LibreOffice as "
                                "\"Excel Workbook (.xlsx)\"")
        import openpyxl
        from openpyxl.utils.exceptions import InvalidFileException

        try:
            self.book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except (InvalidFileException, *_DAMAGED) as exc:
            raise ImportRefused(f"{path}: not a readable Excel workbook (.xlsx): {type(exc).__name__}") from None
        try:
            if not self.book.worksheets:
                raise ImportRefused(f"{path}: the workbook has no sheet")
            self.sheet = self.book.worksheets[0]
            self._rows = self.sheet.iter_rows(values_only=True)
            try:
                header = next(self._rows, None)
            except _DAMAGED as exc:
                raise ImportRefused(f"{path}: its first row cannot be read ({type(exc).__name__}); the workbook is "
                                    "damaged: save it again from Excel") from None
            if header is None or all(c is None for c in header):
                raise ImportRefused(f"{path}: the first sheet is empty; its first row names the columns "
                                    "(name / نام, mobile / موبایل, ...)")
            try:
                self.columns: Columns = read_header(header)
            except HeaderProblem as exc:
                raise ImportRefused(f"{path}: {exc}") from None
            try:
                dimension = int(self.sheet.max_row or 0) - 1
            except (TypeError, ValueError):
                dimension = 0
            self.estimated_rows = dimension if dimension > 0 else None
        except BaseException:
            self.close()
            raise

    def rows(self) -> Iterator[tuple[int, tuple[Any, ...]]]:
        """(row number, cells) for each row after the header, at most IMPORT_ROWS_MAX of
        them (ImportRefused past that, before anything is written)."""
        number = 1
        try:
            for values in self._rows:
                number += 1
                if number - 1 > IMPORT_ROWS_MAX:
                    if all(v is None for v in values):
                        continue  # formatted empty rows below the data
                    raise ImportRefused(f"{self.path}: more than {IMPORT_ROWS_MAX:,} rows (IMPORT_ROWS_MAX); split "
                                        "the file and import each part")
                yield number, values
        except _DAMAGED as exc:  # a damaged sheet, found while reading
            raise ImportRefused(f"{self.path}: row {number + 1} cannot be read ({type(exc).__name__}); the workbook "
                                "is damaged: save it again from Excel") from None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.book.close()


def default_errors_path(path: Path) -> Path:
    """members.xlsx -> members.errors.xlsx, beside it."""
    return path.with_name(f"{path.stem}.errors.xlsx")


def write_errors(path: Path, problems: list[Problem], source: Path) -> None:
    """The error workbook: one row per problem (row, column, value, reason in English
    and Persian), written whole under a temporary name and then renamed."""
    import xlsxwriter
    import xlsxwriter.exceptions

    tmp = path.with_name(f".{path.name}.partial")
    try:
        book = xlsxwriter.Workbook(str(tmp), {"constant_memory": True, "strings_to_numbers": False,
                                              "strings_to_formulas": False, "strings_to_urls": False})
        bold = book.add_format({"bold": True})
        ws = book.add_worksheet("Errors - خطاها")
        ws.write_row(0, 0, ERROR_HEADERS, bold)
        ws.set_column(0, 0, 10)
        ws.set_column(1, 3, 18)
        ws.set_column(4, 5, 60)
        ws.freeze_panes(1, 0)
        n = 0
        for n, p in enumerate(problems[:ERRORS_LISTED_MAX], 1):
            ws.write_number(n, 0, p.row)
            ws.write_string(n, 1, p.column)
            ws.write_string(n, 2, p.value)
            ws.write_string(n, 3, p.code)
            ws.write_string(n, 4, p.en)
            ws.write_string(n, 5, p.fa)
        if len(problems) > ERRORS_LISTED_MAX:
            more = len(problems) - ERRORS_LISTED_MAX
            ws.write_string(n + 1, 4, f"... and {more:,} more problems not listed (ERRORS_LISTED_MAX); fix these "
                            f"and check {source.name} again")
            ws.write_string(n + 1, 5, f"... و {more:,} ایراد دیگر که فهرست نشده است")
        book.close()
        os.replace(tmp, path)
    except (OSError, xlsxwriter.exceptions.FileCreateError) as exc:
        raise ImportRefused(f"cannot write the error workbook {path}: {exc}") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
