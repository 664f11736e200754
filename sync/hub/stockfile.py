"""Where a batch of pre-printed card numbers comes from, as `loyalty-hub cards stock
import` reads it: a range (--first, --last) or a file (one number per line, or the
first column of an .xlsx workbook's first sheet). Each number comes with where it was
(`line 12`, `row 12`, `number 12 of the range`), so a refusal names it. Pure but for
reading the file; the numbers are checked by the card policy in sync.hub.stock.

A range in a Luhn range of the programme steps through the serial part and appends
each number's check digit (printers number cards so: only one in ten consecutive
numbers has a valid check digit).
"""

from __future__ import annotations

import re
import zipfile
from decimal import Decimal, InvalidOperation
from pathlib import Path
from xml.etree import ElementTree

from ledger.cardpolicy import CardPolicy, luhn_ok, mask, normalise_card_number
from ledger.errors import ValidationFailed
from sync.errors import HubRefused

STOCK_BATCH_MAX = 100_000  # numbers in one batch: one transaction, one look at every number
STOCK_FILE_BYTES_MAX = 50 * 1024 * 1024  # a file (or an xlsx's sheet, unpacked) larger than this is refused
EXCEL_DIGITS_MAX = 15  # Excel keeps 15 significant digits of a number: a longer one has lost its last digits

Numbered = list[tuple[str, str]]  # (where, the number as written)


def check_digit(body: str) -> str:
    """The Luhn digit that makes body + digit valid."""
    for d in "0123456789":
        if luhn_ok(body + d):
            return d
    raise AssertionError("a Luhn digit always exists")  # pragma: no cover


def _luhn_range(policy: CardPolicy, number: str) -> bool:
    return any(r.luhn and number.startswith(r.prefix) and len(number) in r.lengths for r in policy.ranges)


def range_numbers(first: str, last: str, policy: CardPolicy) -> Numbered:
    """The numbers from `first` to `last` inclusive, of the same length (leading zeros
    kept); in a Luhn range, the serial part steps and each number gets its check digit."""
    try:
        a, b = normalise_card_number(first, "--first"), normalise_card_number(last, "--last")
    except ValidationFailed as exc:
        raise HubRefused(str(exc)) from None
    if not (a.isdigit() and b.isdigit()) or len(a) != len(b):
        raise HubRefused("--first and --last must be numbers of the same length")
    luhn = _luhn_range(policy, a)
    if luhn and not (luhn_ok(a) and luhn_ok(b)):
        raise HubRefused(f"--first {mask(a)} and --last {mask(b)} lie in a range with a check digit: both must "
                         "be valid card numbers (the range steps the part before the check digit)")
    lo, hi = (int(a[:-1]), int(b[:-1])) if luhn else (int(a), int(b))
    if hi < lo:
        raise HubRefused("--last comes before --first")
    if hi - lo + 1 > STOCK_BATCH_MAX:
        raise HubRefused(f"the range holds {hi - lo + 1:,} numbers; a batch holds at most {STOCK_BATCH_MAX:,}: "
                         "split it into several batches")
    width = len(a) - 1 if luhn else len(a)
    out: Numbered = []
    for i, serial in enumerate(range(lo, hi + 1), 1):
        body = str(serial).zfill(width)
        out.append((f"number {i} of the range", body + check_digit(body) if luhn else body))
    return out


def text_numbers(data: bytes, name: str) -> Numbered:
    """One number per line; blank lines and lines starting with # are skipped."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise HubRefused(f"{name}: is neither UTF-8 text nor an .xlsx workbook") from None
    out: Numbered = []
    for i, line in enumerate(text.splitlines(), 1):
        value = line.strip()
        if value and not value.startswith("#"):
            out.append((f"line {i}", value))
            if len(out) > STOCK_BATCH_MAX:
                raise HubRefused(f"{name}: more than {STOCK_BATCH_MAX:,} numbers; a batch holds at most that many: "
                                 "split the file")
    return out


_NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
_CELL_COLUMN = re.compile(r"[A-Z]+")


def _xml(book: zipfile.ZipFile, member: str, name: str) -> ElementTree.Element:
    try:
        info = book.getinfo(member)
    except KeyError:
        raise HubRefused(f"{name}: the workbook has no {member}") from None
    if info.file_size > STOCK_FILE_BYTES_MAX:
        raise HubRefused(f"{name}: the workbook's {member} is larger than {STOCK_FILE_BYTES_MAX // 2**20} MB "
                         "unpacked") from None
    try:
        return ElementTree.fromstring(book.read(member))
    except ElementTree.ParseError as exc:
        raise HubRefused(f"{name}: {member} is not valid XML: {exc}") from None


def _first_sheet(book: zipfile.ZipFile, name: str) -> str:
    """The first sheet's part, by the workbook's own order (its relationships)."""
    workbook = _xml(book, "xl/workbook.xml", name)
    sheet = workbook.find("m:sheets/m:sheet", _NS)
    rid = sheet.get("{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id") \
        if sheet is not None else None
    if rid and "xl/_rels/workbook.xml.rels" in book.namelist():
        rels = _xml(book, "xl/_rels/workbook.xml.rels", name)
        for rel in rels:
            if rel.get("Id") == rid:
                target = rel.get("Target", "").lstrip("/")
                return target if target.startswith("xl/") else f"xl/{target}"
    return "xl/worksheets/sheet1.xml"


def _cell_text(cell: ElementTree.Element, shared: list[str], where: str, name: str) -> str | None:
    kind = cell.get("t", "n")
    if kind == "inlineStr":
        return "".join(t.text or "" for t in cell.iter(f"{{{_NS['m']}}}t"))
    value = cell.find("m:v", _NS)
    if value is None or value.text is None:
        return None
    if kind == "s":
        try:
            return shared[int(value.text)]
        except (ValueError, IndexError):
            raise HubRefused(f"{name}: {where} names a shared string the workbook lacks") from None
    if kind in ("str", "e", "b"):
        return value.text
    try:  # a number: Excel wrote it as 6.3950000000000012E+15 or 6395000000000012
        number = Decimal(value.text)
    except InvalidOperation:
        raise HubRefused(f"{name}: {where} is not a number Excel writes") from None
    if number != number.to_integral_value() or number < 0:
        raise HubRefused(f"{name}: {where} holds {value.text}, not a card number")
    digits = str(int(number))
    if len(digits) > EXCEL_DIGITS_MAX:
        raise HubRefused(f"{name}: {where} holds a number of {len(digits)} digits stored as a number: Excel keeps "
                         f"only {EXCEL_DIGITS_MAX}, so its last digits are lost; format the column as text and "
                         "type the numbers again (or export it as a text file)")
    return digits


def xlsx_numbers(data: bytes, name: str) -> Numbered:
    """The first column of the first sheet, from row 1 (a header row that is not a
    number is refused like any other bad number: leave it out)."""
    import io

    try:
        book = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise HubRefused(f"{name}: is not an .xlsx workbook") from None
    with book:
        shared: list[str] = []
        if "xl/sharedStrings.xml" in book.namelist():
            for si in _xml(book, "xl/sharedStrings.xml", name).findall("m:si", _NS):
                shared.append("".join(t.text or "" for t in si.iter(f"{{{_NS['m']}}}t")))
        sheet = _xml(book, _first_sheet(book, name), name)
        out: Numbered = []
        for row in sheet.iterfind("m:sheetData/m:row", _NS):
            for cell in row.findall("m:c", _NS):
                ref = cell.get("r", "")
                column = _CELL_COLUMN.match(ref)
                if column is not None and column.group() != "A":
                    continue
                where = f"row {row.get('r') or len(out) + 1}"
                text = _cell_text(cell, shared, where, name)
                if text is not None and text.strip():
                    out.append((where, text.strip()))
                    if len(out) > STOCK_BATCH_MAX:
                        raise HubRefused(f"{name}: more than {STOCK_BATCH_MAX:,} numbers; a batch holds at most "
                                         "that many: split the workbook")
                break  # only the first column (a row without a ref: its first cell)
        return out


def file_numbers(path: Path) -> Numbered:
    """The numbers of a text file or an .xlsx workbook (told apart by their bytes)."""
    try:
        size = path.stat().st_size
        if size > STOCK_FILE_BYTES_MAX:
            raise HubRefused(f"{path}: larger than {STOCK_FILE_BYTES_MAX // 2**20} MB; split it into several batches")
        data = path.read_bytes()
    except OSError as exc:
        raise HubRefused(f"cannot read {path}: {exc.strerror or exc}") from None
    if data[:4] == b"PK\x03\x04":
        return xlsx_numbers(data, str(path))
    return text_numbers(data, str(path))
