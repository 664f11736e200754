"""The store's Excel workbook from its ledger: KPIs, members, sales, entries, RFM,
card issuance, sale lines, lost/replaced/blocked cards, redemptions and gift cards,
one sheet each, in Persian or English. The store's own only: members enrolled here,
this ledger's own terminals' entries, and points as this store's share (a balance's
part from other branches, which the hub reports, is left out); the chain's report is
the hub's (`loyalty-hub report export`).

Rows stream from SQLite in chunks into XlsxWriter's constant-memory mode, so a
million-row sheet costs the time of writing it, not the memory of holding it, and a
sheet past Excel's last row goes on in "Title (2)". Money and points stay integers
(shown with thousands separators); times are the store's local time, as Excel date
cells, with the Jalali text beside each in Persian, whose sheets read right to left.
Card numbers appear masked, as everywhere outside the till.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ledger.errors import ValidationFailed
from ledger.progress import NO_PROGRESS, Progress, progress_of
from ledger.reports.lines import shared_points
from ledger.reports.rfm import SEGMENTS, Activity, Rfm, score
from ledger.reports.workbook import EXCEL_ROWS_MAX as SHEET_ROWS_MAX
from ledger.reports.workbook import Book, Col
from ledger.service import mask_card
from ledger.timefmt import IRAN_OFFSET, format_utc, parse_utc

SHEETS = ("kpis", "members", "sales", "entries", "rfm", "card_issuance", "sale_lines", "cards_out_of_use",
          "redemptions", "gift_cards")
CHUNK_ROWS = 5_000  # rows fetched from SQLite at a time

# every sheet is written with ledger.reports.workbook: in Persian a Jalali text beside
# each date cell (so sorting and filtering work), and past Excel's last row the sheet
# goes on as "Title (2)"
TITLES = {"kpis": ("KPIs", "شاخص‌ها"), "members": ("Members", "اعضا"), "sales": ("Sales", "فروش"),
          "entries": ("Entries", "تراکنش‌ها"), "rfm": ("RFM", "RFM"), "card_issuance": ("Card issuance", "صدور کارت"), "sale_lines": ("Sale lines", "اقلام فروش"),
          "cards_out_of_use": ("Lost, replaced, blocked", "کارت‌های مفقود، تعویضی، مسدود"),
          "redemptions": ("Redemptions", "استفاده از امتیاز"), "gift_cards": ("Gift cards", "کارت هدیه")}
COLUMNS: dict[str, list[Col]] = {
    "kpis": [Col("Measure", "شاخص", width=44), Col("Value", "مقدار", "int", 18)],
    "members": [Col("Member", "عضو", width=36), Col("Name", "نام", width=20), Col("Mobile", "موبایل", width=13),
                Col("Tier", "سطح", width=10), Col("Segment", "بخش", width=18), Col("Enrolled", "تاریخ عضویت", "time"),
                Col("Store", "فروشگاه"), Col("Points from this store", "امتیاز از این فروشگاه", "int"),
                Col("Balance (whole chain)", "مانده کل امتیاز", "int")],
    "sales": [Col("Time", "زمان", "time"), Col("Kind", "نوع", width=8), Col("Receipt", "رسید"),
              Col("Terminal", "پایانه"), Col("Member", "عضو", width=36), Col("Card", "کارت", width=8),
              Col("Amount (Rial)", "مبلغ (ریال)", "int"), Col("By", "کاربر")],
    "entries": [Col("Time", "زمان", "time"), Col("Terminal", "پایانه"), Col("Seq", "ردیف", "int", 8),
                Col("Kind", "نوع", width=8), Col("Member", "عضو", width=36), Col("Points", "امتیاز", "int"),
                Col("Amount (Rial)", "مبلغ (ریال)", "int"), Col("Rule", "قانون"), Col("Reason", "دلیل", width=20)],
    "rfm": [Col("Member", "عضو", width=36), Col("Name", "نام", width=20),
            Col("Days since last visit", "روز از آخرین خرید", "int"), Col("Visits", "دفعات خرید", "int"),
            Col("Spend (Rial)", "خرید (ریال)", "int"), Col("R", "R", "int", 5), Col("F", "F", "int", 5),
            Col("M", "M", "int", 5), Col("Segment", "بخش", width=18)],
    "card_issuance": [Col("Day", "روز", "day"), Col("User", "کاربر"), Col("Issued", "صادرشده", "int"),
                      Col("Lost", "مفقود", "int"), Col("Replaced", "تعویض‌شده", "int"), Col("Blocked", "مسدود", "int")],
    "sale_lines": [Col("Time", "زمان", "time"), Col("Kind", "نوع", width=8), Col("Receipt", "رسید"),
                   Col("Terminal", "پایانه"), Col("Member", "عضو", width=36), Col("Tier", "سطح", width=10),
                   Col("Line", "ردیف", "int", 6), Col("SKU", "کد کالا"), Col("Item", "کالا", width=20),
                   Col("Category", "دسته"), Col("Quantity", "تعداد", "int", 8),
                   Col("Unit price (Rial)", "قیمت واحد (ریال)", "int"), Col("Line total (Rial)", "جمع ردیف (ریال)", "int"),
                   Col("Points earned", "امتیاز کسب‌شده", "int"), Col("Points redeemed", "امتیاز خرج‌شده", "int")],
    "cards_out_of_use": [Col("Changed", "زمان تغییر", "time"), Col("Card", "کارت", width=8),
                         Col("Status", "وضعیت", width=10), Col("Reason", "دلیل", width=20),
                         Col("Replaced by", "کارت جایگزین", width=10), Col("Member", "عضو", width=36),
                         Col("Name", "نام", width=20), Col("Issued", "صدور", "time"), Col("Issued by", "صادرکننده")],
    "redemptions": [Col("Time", "زمان", "time"), Col("Terminal", "پایانه"), Col("Receipt", "رسید"),
                    Col("Member", "عضو", width=36), Col("Points", "امتیاز", "int"), Col("Value (Rial)", "ارزش (ریال)", "int"),
                    Col("By", "کاربر")],
    "gift_cards": [Col("Issued", "صدور", "time"), Col("Card", "کارت", width=8), Col("Status", "وضعیت", width=10),
                   Col("Issued by", "صادرکننده"), Col("Loaded here (Rial)", "شارژ در این فروشگاه (ریال)", "int"),
                   Col("Spent here (Rial)", "خرج در این فروشگاه (ریال)", "int"),
                   Col("Balance (whole chain, Rial)", "مانده کل (ریال)", "int")],
}
OWN_TERMINALS = "terminal_code IN (SELECT code FROM terminals)"  # not other branches' (old protocol)
OWN_MEMBERS = "store_code IN (SELECT store_code FROM terminals)"


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


def _activity(db: sqlite3.Connection, period: Period) -> list[Activity]:
    where, params = period.conditions("s.created_at")
    join = " AND ".join(["LEFT JOIN sales s ON s.member_id = m.id", *where])
    rows = db.execute(
        "SELECT m.id, max(CASE WHEN s.kind = 'sale' THEN s.created_at END), "
        "count(CASE WHEN s.kind = 'sale' THEN 1 END), "
        "coalesce(sum(CASE WHEN s.kind = 'refund' THEN -s.amount ELSE s.amount END), 0) "
        f"FROM members m {join} WHERE m.{OWN_MEMBERS} GROUP BY m.id ORDER BY m.id", params).fetchall()
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
    own = f"{where} AND {OWN_TERMINALS}" if where else f" WHERE {OWN_TERMINALS}"
    earned, redeemed = _totals(db.execute(
        "SELECT coalesce(sum(CASE WHEN kind IN ('earn', 'bonus') THEN points END), 0), "
        f"coalesce(-sum(CASE WHEN kind = 'redeem' THEN points END), 0) FROM entries{own} GROUP BY member_id",
        params), 2)
    members = db.execute(f"SELECT count(*) FROM members WHERE {OWN_MEMBERS}").fetchone()[0]
    outstanding, owed, in_debt = 0, 0, 0
    # points: this store's share of each balance (what other branches gave or took is
    # theirs, in the hub's report); a debt is the whole balance's, of this store's members
    for share, whole, ours in db.execute(f"SELECT b.points - b.elsewhere, b.points, m.{OWN_MEMBERS} "
                                         "FROM balances b JOIN members m ON m.id = b.member_id"):
        outstanding += share
        if whole < 0 and ours:
            owed, in_debt = owed - whole, in_debt + 1
    active = {days: db.execute("SELECT count(DISTINCT member_id) FROM sales WHERE kind = 'sale' AND created_at >= ?",
                               (format_utc(now - timedelta(days=days)),)).fetchone()[0] for days in (30, 90)}
    names = [
        ("Members enrolled here", "اعضای عضوشده در این فروشگاه", members),
        ("Members who bought in the last 30 days", "اعضای فعال ۳۰ روز اخیر", active[30]),
        ("Members who bought in the last 90 days", "اعضای فعال ۹۰ روز اخیر", active[90]),
        ("Sales", "تعداد خرید", sales),
        ("Revenue (Rial)", "فروش (ریال)", revenue),
        ("Refunds (Rial)", "مرجوعی (ریال)", refunds),
        ("Average basket (Rial)", "میانگین سبد (ریال)", revenue // sales if sales else 0),
        ("Points earned", "امتیاز کسب‌شده", earned),
        ("Points redeemed", "امتیاز خرج‌شده", redeemed),
        ("Points redeemed per 100 earned", "امتیاز خرج‌شده از هر ۱۰۰", 100 * redeemed // earned if earned else 0),
        ("Points outstanding from this store", "امتیاز مانده از این فروشگاه", outstanding),
        ("Members of this store owing points (refunds of spent points, offline branches)",
         "اعضای بدهکار امتیاز این فروشگاه", in_debt),
        ("Points owed by members of this store", "امتیاز بدهی اعضای این فروشگاه", owed),
    ]
    return [(fa_name if fa else en_name, int(value)) for en_name, fa_name, value in names]


def _card_issuance(db: sqlite3.Connection, period: Period) -> Iterator[tuple[Any, ...]]:
    """Cards issued, lost, replaced and blocked here, by local day and user: the
    ledger's audit of its own managers' actions (a replacement issues a card too)."""
    where, params = period.conditions("at")
    sql = ("SELECT at, actor, action, detail FROM audit_log WHERE action IN ('card.issue', 'card.replace', "
           "'card.block')" + "".join(f" AND {w}" for w in where))
    counts: dict[tuple[date, str], list[int]] = {}
    for at, actor, action, detail in _rows(db, sql, params):
        day = (parse_utc(at) + IRAN_OFFSET).date()
        row = counts.setdefault((day, actor), [0, 0, 0, 0])
        if action in ("card.issue", "card.replace"):
            row[0] += 1
        if action == "card.replace":
            row[2] += 1
        elif action == "card.block":
            row[1 if json.loads(detail).get("status", "lost") == "lost" else 3] += 1
    return ((day, actor, *n) for (day, actor), n in sorted(counts.items()))


def _sale_lines(db: sqlite3.Connection, period: Period) -> Iterator[tuple[Any, ...]]:
    where, params = period.conditions("s.created_at")
    points_where, points_params = period.conditions("created_at")
    sql = ("SELECT s.created_at, s.kind, s.receipt_ref, s.terminal_code, s.member_id, coalesce(m.tier, ''), "
           "l.line_no, l.sku, l.name, l.category, l.quantity, l.unit_price, s.amount, coalesce(p.earned, 0), "
           "coalesce(p.redeemed, 0), s.id FROM sale_lines l JOIN sales s ON s.id = l.sale_id "
           "LEFT JOIN members m ON m.id = s.member_id LEFT JOIN ("
           "SELECT sale_id, sum(CASE WHEN kind IN ('earn', 'bonus') OR (kind = 'reverse' AND rule_id = "
           "'reverse-earn') THEN points ELSE 0 END) AS earned, sum(CASE WHEN kind = 'redeem' OR (kind = 'reverse' "
           "AND rule_id = 'return-redeem') THEN -points ELSE 0 END) AS redeemed FROM entries "
           f"WHERE sale_id IS NOT NULL AND {OWN_TERMINALS}" + "".join(f" AND {w}" for w in points_where) +
           " GROUP BY sale_id) p ON p.sale_id = s.id" + (" WHERE " + " AND ".join(where) if where else "") +
           " ORDER BY s.created_at, s.id, l.line_no")
    return shared_points(_rows(db, sql, [*points_params, *params]), sale=15, quantity=10, price=11, amount=12,
                         earned=13, redeemed=14, line_no=6)


def _new_sheet(db: sqlite3.Connection, kind: str, period: Period) -> Iterator[tuple[Any, ...]]:
    """The rows of a sheet written with ledger.reports.workbook."""
    if kind == "card_issuance":
        return _card_issuance(db, period)
    if kind == "sale_lines":
        return _sale_lines(db, period)
    if kind == "cards_out_of_use":
        where, params = period.conditions("c.status_changed_at")
        return ((changed, mask_card(number), status, reason or "", mask_card(new) if new else "", member, name,
                 issued, by)
                for changed, number, status, reason, new, member, name, issued, by in _rows(
                    db, "SELECT c.status_changed_at, c.number, c.status, c.status_reason, c.replaced_by, c.member_id, "
                        "m.name, c.issued_at, c.issued_by FROM cards c JOIN members m ON m.id = c.member_id "
                        f"WHERE c.status != 'active' AND m.{OWN_MEMBERS}" + "".join(f" AND {w}" for w in where) +
                        " ORDER BY c.status_changed_at, c.number", params))
    if kind == "redemptions":
        where, params = period.conditions("created_at")
        return _rows(db, "SELECT created_at, terminal_code, coalesce(receipt_ref, ''), member_id, -points, amount, "
                         f"actor FROM entries WHERE kind = 'redeem' AND {OWN_TERMINALS}" +
                     "".join(f" AND {w}" for w in where) + " ORDER BY created_at, terminal_code, seq", params)
    where, params = period.conditions("created_at")
    return ((issued, mask_card(number), status, by, loaded, spent, balance)
            for issued, number, status, by, loaded, spent, balance in _rows(
                db, "SELECT g.issued_at, g.number, g.status, g.issued_by, coalesce(e.loaded, 0), "
                    "coalesce(e.spent, 0), g.balance FROM gift_cards g LEFT JOIN (SELECT gift_card_number, "
                    "sum(CASE WHEN kind = 'gift_load' THEN amount ELSE 0 END) AS loaded, "
                    "sum(CASE WHEN kind = 'gift_spend' THEN -amount ELSE 0 END) AS spent FROM entries "
                    f"WHERE gift_card_number IS NOT NULL AND {OWN_TERMINALS}" + "".join(f" AND {w}" for w in where) +
                    " GROUP BY gift_card_number) e ON e.gift_card_number = g.number ORDER BY g.issued_at, g.number",
                params))


def export(db_path: Path, out: Path, *, sheets: Sequence[str] = SHEETS, locale: str = "fa",
           period: Period = Period(), now: datetime | None = None, rows_max: int = SHEET_ROWS_MAX,
           progress: Progress = NO_PROGRESS) -> dict[str, int]:
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
    fa = locale == "fa"
    db = sqlite3.connect(f"file:{db_path.resolve()}?mode=ro", uri=True)
    # written beside the target and renamed into place at the end: a failed export
    # leaves no half-written workbook behind, and never one that looks complete
    partial = out.with_name(f".{out.name}.partial")
    written: dict[str, int] = {}
    label = {k: v[1 if fa else 0] for k, v in SEGMENTS.items()}
    rfm: list[Rfm] = []  # scored once, for whichever of the members and rfm sheets comes first
    done = False
    book: Book | None = None
    try:
        with progress_of(progress) as bar:
            stores = ", ".join(r[0] for r in db.execute("SELECT DISTINCT store_code FROM terminals ORDER BY 1"))
            title = f"فقط فروشگاه {stores}" if fa else f"store {stores} only"
            book = Book(partial, locale, rows_max=rows_max, progress=bar)
            book.book.set_properties({"title": (f"گزارش باشگاه مشتریان، {title}" if fa else
                                                f"Loyalty report, {title}")})
            for kind in sheets:
                if kind in ("members", "rfm") and not rfm:
                    rfm = score(_activity(db, period), now)
                rows: Iterable[Sequence[Any]]
                if kind == "kpis":
                    rows = kpis(db, period, now, locale)
                elif kind == "members":
                    segments = {r.member_id: r.segment for r in rfm}
                    rows = ((mid, name, mobile, tier, label[segments.get(mid, "no_purchase")], enrolled, store, share,
                             balance)
                            for mid, name, mobile, tier, enrolled, store, share, balance in _rows(
                                db, "SELECT m.id, m.name, m.mobile, m.tier, m.enrolled_at, m.store_code, "
                                    "coalesce(b.points - b.elsewhere, 0), coalesce(b.points, 0) FROM members m "
                                    f"LEFT JOIN balances b ON b.member_id = m.id WHERE m.{OWN_MEMBERS} "
                                    "ORDER BY m.enrolled_at, m.id"))
                elif kind == "sales":
                    where, params = period.sql("created_at")
                    rows = ((at, kind_, receipt, terminal, member, mask_card(card) if card else "", amount, actor)
                            for at, kind_, receipt, terminal, member, card, amount, actor in _rows(
                                db, "SELECT created_at, kind, receipt_ref, terminal_code, member_id, card_number, "
                                    f"amount, actor FROM sales{where} ORDER BY created_at, id", params))
                elif kind == "entries":
                    where, params = period.sql("created_at")
                    own = f"{where} AND {OWN_TERMINALS}" if where else f" WHERE {OWN_TERMINALS}"
                    rows = _rows(db, "SELECT created_at, terminal_code, seq, kind, member_id, points, amount, "
                                     f"rule_id, reason FROM entries{own} ORDER BY created_at, terminal_code, seq",
                                 params)
                elif kind == "rfm":
                    names = dict(db.execute("SELECT id, name FROM members").fetchall())
                    rows = ((r.member_id, names.get(r.member_id, ""),
                             r.recency_days if r.recency_days is not None else "", r.visits, r.spend, r.r, r.f, r.m,
                             label[r.segment]) for r in rfm)
                else:
                    rows = _new_sheet(db, kind, period)
                written[kind] = book.table(TITLES[kind], COLUMNS[kind], rows, note=title).rows
            book.close()
            done = True
    except sqlite3.DatabaseError as exc:
        raise ValidationFailed(f"cannot read {db_path}: {exc}") from None
    finally:
        db.close()
        if not done:
            if book is not None:
                with contextlib.suppress(Exception):
                    book.close()
            partial.unlink(missing_ok=True)
    partial.replace(out)
    return written
