"""The back office's Excel workbook from a ledger: members, sales, entries, RFM and
KPIs, one sheet each, in Persian or English.

Rows stream from SQLite in chunks into XlsxWriter's constant-memory mode, so a
million-row sheet costs the time of writing it, not the memory of holding it. Money
and points stay integers (shown with thousands separators); times are the store's
local time, as Excel dates in English and as Jalali text in Persian, whose sheets
read right to left. Card numbers appear masked, as everywhere outside the till.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jdatetime

from ledger.errors import ValidationFailed
from ledger.service import mask_card
from ledger.reports.rfm import SEGMENTS, Activity, Rfm, score
from ledger.timefmt import IRAN_OFFSET, format_utc, parse_utc

SHEETS = ("kpis", "members", "sales", "entries", "rfm")
CHUNK_ROWS = 5_000  # rows fetched from SQLite at a time
EXCEL_ROWS_MAX = 1_048_575  # a sheet's rows below its header
JALALI_DAYS_MAX = 10_000  # days whose Jalali form is kept while one sheet is written

HEADERS: dict[str, list[tuple[str, str]]] = {  # (English, Persian) per column
    "members": [("Member", "عضو"), ("Name", "نام"), ("Mobile", "موبایل"), ("Tier", "سطح"),
                ("Segment", "بخش"), ("Enrolled", "تاریخ عضویت"), ("Store", "فروشگاه"), ("Balance", "مانده امتیاز")],
    "sales": [("Time", "زمان"), ("Kind", "نوع"), ("Receipt", "رسید"), ("Terminal", "پایانه"), ("Member", "عضو"),
              ("Card", "کارت"), ("Amount (Rial)", "مبلغ (ریال)"), ("By", "کاربر")],
    "entries": [("Time", "زمان"), ("Terminal", "پایانه"), ("Seq", "ردیف"), ("Kind", "نوع"), ("Member", "عضو"),
                ("Points", "امتیاز"), ("Amount (Rial)", "مبلغ (ریال)"), ("Rule", "قانون"), ("Reason", "دلیل")],
    "rfm": [("Member", "عضو"), ("Name", "نام"), ("Days since last visit", "روز از آخرین خرید"),
            ("Visits", "دفعات خرید"), ("Spend (Rial)", "خرید (ریال)"), ("R", "R"), ("F", "F"), ("M", "M"),
            ("Segment", "بخش")],
    "kpis": [("Measure", "شاخص"), ("Value", "مقدار")],
}
SHEET_NAMES = {"members": ("Members", "اعضا"), "sales": ("Sales", "فروش"), "entries": ("Entries", "تراکنش‌ها"),
               "rfm": ("RFM", "RFM"), "kpis": ("KPIs", "شاخص‌ها")}
INT_COLUMNS = {"members": {7}, "sales": {6}, "entries": {2, 5, 6}, "rfm": {2, 3, 4, 5, 6, 7}, "kpis": {1}}


@dataclass(frozen=True)
class Period:
    since: datetime | None = None  # aware UTC, inclusive
    until: datetime | None = None  # aware UTC, exclusive

    def conditions(self, column: str) -> tuple[list[str], list[str]]:
        where, params = [], []
        if self.since:
            where.append(f"{column} >= ?")
            params.append(format_utc(self.since))
        if self.until:
            where.append(f"{column} < ?")
            params.append(format_utc(self.until))
        return where, params

    def sql(self, column: str) -> tuple[str, list[str]]:
        where, params = self.conditions(column)
        return (" WHERE " + " AND ".join(where)) if where else "", params


def _rows(db: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
    cur = db.execute(sql, params)
    while chunk := cur.fetchmany(CHUNK_ROWS):
        yield from chunk


class _Book:
    def __init__(self, path: Path, locale: str) -> None:
        import xlsxwriter

        self.locale = locale
        self.fa = locale == "fa"
        self.book = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_numbers": False,
                                                    "strings_to_formulas": False, "strings_to_urls": False})
        self.bold = self.book.add_format({"bold": True})
        self.number = self.book.add_format({"num_format": "#,##0"})
        self.when = self.book.add_format({"num_format": "yyyy-mm-dd hh:mm"})

    def local_time(self) -> Callable[[str | None], Any]:
        """A ledger time as the cell shows it: Jalali text (fa) or an Excel date (en)."""
        fa = self.fa
        jalali_days: dict[date, str] = {}  # a report spans few days and many rows: one conversion a day

        def convert(text: str | None) -> Any:
            if not text:
                return ""
            local = (parse_utc(text) + IRAN_OFFSET).replace(tzinfo=None)
            if not fa:
                return local
            day = local.date()
            jalali = jalali_days.get(day)
            if jalali is None:
                if len(jalali_days) >= JALALI_DAYS_MAX:
                    jalali_days.clear()
                jalali = jalali_days[day] = jdatetime.date.fromgregorian(date=day).strftime("%Y/%m/%d")
            return f"{jalali} {local.hour:02d}:{local.minute:02d}"

        return convert

    def sheet(self, kind: str, rows: Iterator[Sequence[Any]], time_col: int | None = None) -> int:
        ws = self.book.add_worksheet(SHEET_NAMES[kind][1 if self.fa else 0])
        if self.fa:
            ws.right_to_left()
        ws.write_row(0, 0, [h[1 if self.fa else 0] for h in HEADERS[kind]], self.bold)
        for col in INT_COLUMNS[kind]:
            ws.set_column(col, col, 14, self.number)
        if time_col is not None:
            ws.set_column(time_col, time_col, 17)
        convert = self.local_time()
        write_row, write_datetime = ws.write_row, ws.write_datetime
        n = 0
        for n, row in enumerate(rows, start=1):
            if n > EXCEL_ROWS_MAX:
                raise ValidationFailed(f"the {kind} sheet would have more than {EXCEL_ROWS_MAX:,} rows, more than "
                                       "Excel can open; export a shorter period (--from/--to)")
            if time_col is None:
                write_row(n, 0, row)
                continue
            when = convert(row[time_col])
            if self.fa or when == "":
                write_row(n, 0, (*row[:time_col], when, *row[time_col + 1:]))
            else:  # a real Excel date, with its format, between the cells around it
                if time_col:
                    write_row(n, 0, row[:time_col])
                write_datetime(n, time_col, when, self.when)
                write_row(n, time_col + 1, row[time_col + 1:])
        ws.freeze_panes(1, 0)
        return n

    def close(self) -> None:
        self.book.close()


def _activity(db: sqlite3.Connection, period: Period) -> list[Activity]:
    where, params = period.conditions("s.created_at")
    join = " AND ".join(["LEFT JOIN sales s ON s.member_id = m.id", *where])
    rows = db.execute(
        "SELECT m.id, max(CASE WHEN s.kind = 'sale' THEN s.created_at END), "
        "count(CASE WHEN s.kind = 'sale' THEN 1 END), "
        "coalesce(sum(CASE WHEN s.kind = 'refund' THEN -s.amount ELSE s.amount END), 0) "
        f"FROM members m {join} GROUP BY m.id ORDER BY m.id", params).fetchall()
    return [Activity(mid, parse_utc(last) if last else None, int(visits), int(spend))
            for mid, last, visits, spend in rows]


def _totals(rows: Iterable[tuple[int, ...]], width: int) -> list[int]:
    sums = [0] * width
    for row in rows:
        for i in range(width):
            sums[i] += row[i]
    return sums


def kpis(db: sqlite3.Connection, period: Period, now: datetime, locale: str) -> list[tuple[str, int]]:
    """The headline numbers of the period (whole history without one)."""
    fa = locale == "fa"
    where, params = period.sql("created_at")
    # SQL sums per member only (each bounded by ledger.limits); the ledger's totals are
    # added here in Python, where no number of members can overflow them
    sales, revenue, refunds = _totals(db.execute(
        "SELECT count(CASE WHEN kind = 'sale' THEN 1 END), "
        "coalesce(sum(CASE WHEN kind = 'sale' THEN amount END), 0), "
        f"coalesce(sum(CASE WHEN kind = 'refund' THEN amount END), 0) FROM sales{where} GROUP BY member_id",
        params), 3)
    earned, redeemed = _totals(db.execute(
        "SELECT coalesce(sum(CASE WHEN kind IN ('earn', 'bonus') THEN points END), 0), "
        f"coalesce(-sum(CASE WHEN kind = 'redeem' THEN points END), 0) FROM entries{where} GROUP BY member_id",
        params), 2)
    members = db.execute("SELECT count(*) FROM members").fetchone()[0]
    outstanding, owed, in_debt = 0, 0, 0
    for (points,) in db.execute("SELECT points FROM balances"):
        outstanding += points
        if points < 0:
            owed, in_debt = owed - points, in_debt + 1
    active = {days: db.execute("SELECT count(DISTINCT member_id) FROM sales WHERE kind = 'sale' AND created_at >= ?",
                               (format_utc(now - timedelta(days=days)),)).fetchone()[0] for days in (30, 90)}
    names = [
        ("Members", "تعداد اعضا", members),
        ("Members who bought in the last 30 days", "اعضای فعال ۳۰ روز اخیر", active[30]),
        ("Members who bought in the last 90 days", "اعضای فعال ۹۰ روز اخیر", active[90]),
        ("Sales", "تعداد خرید", sales),
        ("Revenue (Rial)", "فروش (ریال)", revenue),
        ("Refunds (Rial)", "مرجوعی (ریال)", refunds),
        ("Average basket (Rial)", "میانگین سبد (ریال)", revenue // sales if sales else 0),
        ("Points earned", "امتیاز کسب‌شده", earned),
        ("Points redeemed", "امتیاز خرج‌شده", redeemed),
        ("Points redeemed per 100 earned", "امتیاز خرج‌شده از هر ۱۰۰", 100 * redeemed // earned if earned else 0),
        ("Points outstanding (all members)", "امتیاز مانده (همه اعضا)", outstanding),
        ("Members owing points (refunds of spent points, offline branches)", "اعضای بدهکار امتیاز", in_debt),
        ("Points owed by members", "امتیاز بدهی اعضا", owed),
    ]
    return [(fa_name if fa else en_name, int(value)) for en_name, fa_name, value in names]


def export(db_path: Path, out: Path, *, sheets: Sequence[str] = SHEETS, locale: str = "fa",
           period: Period = Period(), now: datetime | None = None) -> dict[str, int]:
    """Write the workbook; the rows written per sheet. Reads the ledger read-only."""
    unknown = [s for s in sheets if s not in SHEETS]
    if unknown:
        raise ValidationFailed(f"no sheet called {unknown[0]!r}; the sheets are {', '.join(SHEETS)}")
    if period.since and period.until and period.since >= period.until:
        raise ValidationFailed("the period's start must come before its end")
    if not out.parent.is_dir():
        raise ValidationFailed(f"cannot write {out}: the folder {out.parent} does not exist")
    if not db_path.is_file():
        raise ValidationFailed(f"no ledger at {db_path}")
    now = now or datetime.now(timezone.utc)
    db = sqlite3.connect(f"file:{db_path.resolve()}?mode=ro", uri=True)
    # written beside the target and renamed into place at the end: a failed export
    # leaves no half-written workbook behind, and never one that looks complete
    partial = out.with_name(f".{out.name}.partial")
    book = _Book(partial, locale)
    written: dict[str, int] = {}
    label = {k: v[1 if locale == "fa" else 0] for k, v in SEGMENTS.items()}
    rfm: list[Rfm] = []  # scored once, for whichever of the members and rfm sheets comes first
    done = False
    try:
        for kind in sheets:
            if kind in ("members", "rfm") and not rfm:
                rfm = score(_activity(db, period), now)
            if kind == "kpis":
                written[kind] = book.sheet(kind, iter(kpis(db, period, now, locale)))
            elif kind == "members":
                segments = {r.member_id: r.segment for r in rfm}
                rows = ((mid, name, mobile, tier, label[segments.get(mid, "no_purchase")], enrolled, store, balance)
                        for mid, name, mobile, tier, enrolled, store, balance in _rows(
                            db, "SELECT m.id, m.name, m.mobile, m.tier, m.enrolled_at, m.store_code, "
                                "coalesce(b.points, 0) FROM members m LEFT JOIN balances b ON b.member_id = m.id "
                                "ORDER BY m.enrolled_at, m.id"))
                written[kind] = book.sheet(kind, rows, time_col=5)
            elif kind == "sales":
                where, params = period.sql("created_at")
                rows = ((at, kind_, receipt, terminal, member, mask_card(card) if card else "", amount, actor)
                        for at, kind_, receipt, terminal, member, card, amount, actor in _rows(
                            db, "SELECT created_at, kind, receipt_ref, terminal_code, member_id, card_number, "
                                f"amount, actor FROM sales{where} ORDER BY created_at, id", params))
                written[kind] = book.sheet(kind, rows, time_col=0)
            elif kind == "entries":
                where, params = period.sql("created_at")
                written[kind] = book.sheet(kind, _rows(
                    db, "SELECT created_at, terminal_code, seq, kind, member_id, points, amount, rule_id, reason "
                        f"FROM entries{where} ORDER BY created_at, terminal_code, seq", params), time_col=0)
            elif kind == "rfm":
                names = dict(db.execute("SELECT id, name FROM members").fetchall())
                written[kind] = book.sheet(kind, iter(
                    (r.member_id, names.get(r.member_id, ""), r.recency_days if r.recency_days is not None else "",
                     r.visits, r.spend, r.r, r.f, r.m, label[r.segment]) for r in rfm))
        book.close()
        done = True
    except sqlite3.DatabaseError as exc:
        raise ValidationFailed(f"cannot read {db_path}: {exc}") from None
    finally:
        db.close()
        if not done:
            with contextlib.suppress(Exception):
                book.close()
            partial.unlink(missing_ok=True)
    partial.replace(out)
    return written
