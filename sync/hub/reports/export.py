"""`loyalty-hub report export`: the chain's workbook, written from one snapshot of the
hub's database (a deferred transaction on SQLite, REPEATABLE READ on PostgreSQL), one
sheet after the other, rows streamed from the database into the file.

Written beside the target and renamed into place at the end: a failed export leaves
no half-written workbook, and never one that looks complete.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jdatetime
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from ledger.progress import NO_PROGRESS, Progress, progress_of
from ledger.reports.lines import shared_points
from ledger.reports.rfm import ACTIONS, SEGMENTS, Ranks
from ledger.reports.workbook import EXCEL_ROWS_MAX, Book, Col, Placed, jalali_text
from ledger.service import mask_card
from ledger.timefmt import parse_utc
from sync.errors import ReportRefused
from sync.hub.messages.campaigns import RESULT_DAYS, results_on
from sync.hub.reports import kpis as kpi
from sync.hub.reports import queries as q
from sync.hub.reports.sql import stream
from sync.hub.retention import pruned_before
from sync.hub.schema import member_tiers, members, sales, stores
from sync.hub.stock import COUNT_COLUMNS, HEAD_OFFICE, stock_counts

SHEETS = ("kpis", "members", "card_issuance", "sales", "sale_lines", "sale_statistics", "cards_out_of_use",
          "card_history", "redemptions", "gift_cards", "card_stock", "segments", "campaigns", "charts")
CHART_MONTHS = 12  # months shown in the charts by month

TITLES = {
    "kpis": ("KPIs", "شاخص‌ها"), "members": ("Members", "اعضا"), "card_issuance": ("Card issuance", "صدور کارت"),
    "sales": ("Sales", "فروش"), "sale_lines": ("Sale lines", "اقلام فروش"),
    "sale_statistics": ("Sale statistics", "آمار فروش"),
    "cards_out_of_use": ("Lost, replaced, blocked", "کارت‌های مفقود، تعویضی، مسدود"),
    "card_history": ("Card history", "سابقه کارت‌ها"),
    "redemptions": ("Redemptions", "استفاده از امتیاز"), "gift_cards": ("Gift cards", "کارت هدیه"),
    "card_stock": ("Card stock", "موجودی کارت"),
    "segments": ("RFM segments", "بخش‌های RFM"), "campaigns": ("Campaigns", "کمپین‌ها"), "charts": ("Charts", "نمودارها"),
}

COLUMNS: dict[str, list[Col]] = {
    "members": [Col("Member", "عضو", width=36), Col("Name", "نام", width=20), Col("Mobile", "موبایل", width=12),
                Col("Tier", "سطح", width=10), Col("Segment", "بخش"), Col("Home store", "فروشگاه"),
                Col("Enrolled", "تاریخ عضویت", "time"), Col("Balance now (points)", "مانده امتیاز فعلی", "int"),
                Col("Last visit", "آخرین خرید", "time"), Col("Purchases", "دفعات خرید", "int"),
                Col("Spend (Rial)", "خرید (ریال)", "int")],
    "card_issuance": [Col("Day", "روز", "day"), Col("Store", "فروشگاه"), Col("User / terminal", "کاربر / پایانه"),
                      Col("Issued", "صادرشده", "int"), Col("Lost", "مفقود", "int"),
                      Col("Replaced", "تعویض‌شده", "int"), Col("Blocked", "مسدود", "int")],
    "sales": [Col("Time", "زمان", "time"), Col("Kind", "نوع", width=8), Col("Receipt", "رسید"),
              Col("Store", "فروشگاه"), Col("Terminal", "پایانه"), Col("Member", "عضو", width=36),
              Col("Tier", "سطح", width=10), Col("Card", "کارت", width=8), Col("Amount (Rial)", "مبلغ (ریال)", "int"),
              Col("Points earned", "امتیاز کسب‌شده", "int"), Col("Points redeemed", "امتیاز خرج‌شده", "int"),
              Col("Redeemed value (Rial)", "ارزش امتیاز خرج‌شده (ریال)", "int"), Col("By", "کاربر")],
    "sale_lines": [Col("Time", "زمان", "time"), Col("Kind", "نوع", width=8), Col("Store", "فروشگاه"),
                   Col("Terminal", "پایانه"), Col("Receipt", "رسید"), Col("Member", "عضو", width=36),
                   Col("Tier", "سطح", width=10), Col("Line", "ردیف", "int", 6), Col("SKU", "کد کالا"),
                   Col("Item", "کالا", width=20), Col("Category", "دسته"), Col("Quantity", "تعداد", "int", 8),
                   Col("Unit price (Rial)", "قیمت واحد (ریال)", "int"), Col("Line total (Rial)", "جمع ردیف (ریال)", "int"),
                   Col("Points earned", "امتیاز کسب‌شده", "int"), Col("Points redeemed", "امتیاز خرج‌شده", "int")],
    "sale_statistics": [Col("Store", "فروشگاه"), Col("Day", "روز", "day"), Col("Category", "دسته"),
                        Col("Tier", "سطح", width=10), Col("Purchases", "تعداد خرید", "int"),
                        Col("Sold (Rial)", "فروش (ریال)", "int"), Col("Refunded (Rial)", "مرجوعی (ریال)", "int"),
                        Col("Quantity", "تعداد کالا", "int"), Col("Average basket (Rial)", "میانگین سبد (ریال)", "int")],
    "cards_out_of_use": [Col("Changed", "زمان تغییر", "time"), Col("Card", "کارت", width=8),
                         Col("Status", "وضعیت", width=10), Col("Reason", "دلیل", width=20),
                         Col("Replaced by", "کارت جایگزین", width=10), Col("Member", "عضو", width=36),
                         Col("Name", "نام", width=20), Col("Home store", "فروشگاه"), Col("Issued", "صدور", "time"),
                         Col("Issued by", "صادرکننده")],
    "card_history": [Col("Card", "کارت", width=8), Col("Time", "زمان", "time"), Col("Event", "رویداد", width=22),
                     Col("By", "کاربر"), Col("Where", "محل"), Col("Terminal", "پایانه"),
                     Col("Member", "عضو", width=36), Col("Detail", "شرح", width=44)],
    "redemptions": [Col("Time", "زمان", "time"), Col("Store", "فروشگاه"), Col("Terminal", "پایانه"),
                    Col("Receipt", "رسید"), Col("Member", "عضو", width=36), Col("Tier", "سطح", width=10),
                    Col("Points", "امتیاز", "int"), Col("Value (Rial)", "ارزش (ریال)", "int"), Col("By", "کاربر")],
    "gift_cards": [Col("Issued", "صدور", "time"), Col("Card", "کارت", width=8), Col("Status", "وضعیت", width=10),
                   Col("Issued by", "صادرکننده"), Col("Loaded in the period (Rial)", "شارژ در دوره (ریال)", "int"),
                   Col("Spent in the period (Rial)", "خرج در دوره (ریال)", "int"),
                   Col("Balance now (Rial)", "مانده فعلی (ریال)", "int")],
    # now, not of the period: where the pre-printed cards are (sync.hub.stock)
    "card_stock": [Col("Where", "محل", width=16), Col("In stock", "موجود", "int"), Col("Issued", "صادرشده", "int"),
                   Col("Lost", "مفقود", "int"), Col("Blocked", "مسدود", "int"), Col("Replaced", "تعویض‌شده", "int"),
                   Col("Issued outside stock", "صادرشده خارج از موجودی", "int")],
    "segments": [Col("Segment", "بخش"), Col("Members", "تعداد اعضا", "int"), Col("Share", "سهم", "percent"),
                 Col("Average purchases", "میانگین دفعات خرید", "number"),
                 Col("Average spend (Rial)", "میانگین خرید (ریال)", "int"),
                 Col("What they should get", "اقدام پیشنهادی", width=70)],
    # campaigns due in the period, each group on a row: what became of the messages,
    # and purchases in the RESULT_DAYS after (campaigns.results_on)
    "campaigns": [Col("Campaign", "کمپین", "int", 9), Col("Due", "زمان ارسال", "time"), Col("Template", "قالب"),
                  Col("Audience", "مخاطبان", width=24), Col("Status", "وضعیت", width=10),
                  Col("Group", "گروه", width=12), Col("Members", "اعضا", "int"), Col("Sent", "ارسال‌شده", "int"),
                  Col("Delivered", "تحویل‌شده", "int"), Col("Undelivered", "تحویل‌نشده", "int"),
                  Col("Failed", "ناموفق", "int"), Col("Opted out", "لغو عضویت پیامک", "int"),
                  Col("Suppressed", "ارسال‌نشده", "int"), Col("Cancelled", "لغوشده", "int"),
                  Col("Waiting", "در انتظار", "int"), Col("Buyers", "خریداران", "int"),
                  Col("Purchases", "خریدها", "int"), Col("Spend (Rial)", "خرید (ریال)", "int"),
                  Col("Bought", "سهم خریداران", "percent")],
}
CAMPAIGN_WORDS = {"messaged": ("messaged", "پیام‌گرفته"), "control": ("control (held out)", "گروه کنترل"),
                  "scheduled": ("scheduled", "زمان‌بندی‌شده"), "cancelled": ("cancelled", "لغوشده"),
                  "everyone": ("every member", "همه اعضا")}
CARD_EVENTS = ("lost", "replaced", "blocked")
# the card history sheet's words: (English, Persian)
STORY_EVENTS = {"imported": ("imported into stock", "ورود به انبار کارت"), "assigned": ("assigned to the store",
                "تخصیص به فروشگاه"), "issued": ("issued to the member", "صدور برای عضو"),
                "stock": ("recorded against the stock", "ثبت در موجودی"),
                "outside": ("issued outside stock", "صدور خارج از موجودی")}
CARD_STATUSES = {"active": ("active", "فعال"), "lost": ("lost", "مفقود"), "blocked": ("blocked", "مسدود"),
                 "replaced": ("replaced", "تعویض‌شده")}
OUTSIDE_WHY = {"not_in_stock": ("a number never in stock", "شماره‌ای که هرگز در موجودی نبود"),
               "head_office": ("a card still at head office", "کارتی که هنوز در دفتر مرکزی بود"),
               "other_store": ("a card of another store's stock", "کارتی از موجودی فروشگاه دیگر")}
HEAD_OFFICE_NAME = {False: "head office", True: "دفتر مرکزی"}


@dataclass
class _Segments:
    """What the members sheet learnt of the segments, for the RFM sheet and its chart."""

    members: Counter[str] = field(default_factory=Counter)
    visits: Counter[str] = field(default_factory=Counter)
    spend: Counter[str] = field(default_factory=Counter)


def _days_since(last: str | None, now: datetime) -> int | None:
    return None if not last else max((now - parse_utc(last)).days, 0)


def _month(day: date, fa: bool) -> tuple[int, int]:
    if fa:
        j = jdatetime.date.fromgregorian(date=day)
        return j.year, j.month
    return day.year, day.month


def _month_label(month: tuple[int, int]) -> str:
    return f"{month[0]}/{month[1]:02d}" if month[0] < 1700 else f"{month[0]}-{month[1]:02d}"


def _months_back(last: date, n: int, fa: bool) -> list[tuple[int, int]]:
    """The n months (Jalali in Persian) ending with the one `last` is in, oldest first."""
    out: list[tuple[int, int]] = []
    y, m = _month(last, fa)
    for _ in range(n):
        out.append((y, m))
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
    return out[::-1]


class _Export:
    def __init__(self, conn: Connection, book: Book, filters: q.Filters, now: datetime, fa: bool) -> None:
        self.conn, self.book, self.f, self.now, self.fa = conn, book, filters, now, fa
        self.written: dict[str, int] = {}
        self.segments = _Segments()
        self.placed: dict[str, Placed] = {}
        self.label = {k: v[1 if fa else 0] for k, v in SEGMENTS.items()}
        # RFM: every purchase up to the period's end, scored against the whole chain
        self.rfm_at = min(filters.days.until, now)
        self.ranks = Ranks((_days_since(last, self.rfm_at) or 0, int(visits), int(spend))
                           for last, visits, spend in stream(conn, q.activity_values(filters.days.until))
                           if last is not None and visits)
        self.counted = False
        self.pruned = pruned_before(conn)
        if filters.segments:
            # every sheet of members, sales, cards and points (and the KPIs) keeps the
            # members of those segments, in SQL; gift cards and the card stock name no member
            self.f = replace(filters, in_segment=q.in_segments(self.ranks, self.rfm_at, filters.days.until,
                                                                filters.segments))

    def note(self) -> str:
        f, fa = self.f, self.fa
        parts = [kpi.period_text(f.days, fa)]
        if f.stores:
            parts.append(("فروشگاه: " if fa else "stores: ") + ", ".join(f.stores))
        if f.tiers:
            parts.append(("سطح: " if fa else "tiers: ") + ", ".join(f.tiers))
        if f.segments:
            parts.append(("بخش: " if fa else "segments: ") + ", ".join(self.label[s] for s in f.segments))
        if self.pruned is not None and f.days.first < self.pruned:  # the period's first sales are gone, not zero
            parts.append(f"فروش‌های پیش از {jalali_text(self.pruned)} از هاب پاک شده‌اند" if fa
                         else f"sales before {self.pruned.isoformat()} were pruned from the hub")
        return " | ".join(parts)

    def table(self, kind: str, rows: Iterable[Sequence[Any]]) -> None:
        placed = self.book.table(TITLES[kind], COLUMNS[kind], rows, self.note())
        self.placed[kind] = placed
        self.written[kind] = placed.rows

    # -- sheets --------------------------------------------------------------------

    def kpis(self) -> None:
        b, fa = self.book, self.fa
        ws = b.worksheet(b.text(*TITLES["kpis"]))
        ws.write_string(0, 0, self.note())
        before = self.f.days.before()
        heads = [b.text("Measure", "شاخص"), b.text("This period", "این دوره") + f"\n{kpi.period_text(self.f.days, fa)}",
                 b.text("Period before", "دوره قبل") + f"\n{kpi.period_text(before, fa)}",
                 b.text("Definition", "تعریف")]
        ws.write_row(1, 0, heads, b.bold)
        ws.set_row(1, 32)
        ws.set_column(0, 0, 34)
        ws.set_column(1, 2, 18)
        ws.set_column(3, 3, 80)
        for i, (row, k) in enumerate(zip(kpi.rows(self.conn, self.f, fa), kpi.KPIS), start=2):
            name, now, then, definition = row
            cell = b.formats.get(k.kind)
            ws.write_string(i, 0, name)
            ws.write_number(i, 1, now, cell)
            ws.write_number(i, 2, then, cell)
            ws.write_string(i, 3, definition, b.wrap)
        ws.freeze_panes(2, 1)
        self.written["kpis"] = len(kpi.KPIS)

    def members(self) -> None:
        seg, label, ranks, at = self.segments, self.label, self.ranks, self.rfm_at
        wanted = set(self.f.segments)

        def rows() -> Iterator[tuple[Any, ...]]:
            for mid, name, mobile, tier, store, enrolled, balance, last, visits, spend in stream(
                    self.conn, q.members_sheet(self.f)):
                visits, spend = int(visits), int(spend)
                segment = ranks.of(_days_since(last, at), visits, spend)[3]
                if wanted and segment not in wanted:
                    continue
                seg.members[segment] += 1
                seg.visits[segment] += visits
                seg.spend[segment] += spend
                yield mid, name, mobile, tier, label[segment], store, enrolled, int(balance), last, visits, spend

        self.table("members", rows())

    def card_issuance(self) -> None:
        counts: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        for day, store, user, n in self.conn.execute(q.card_issues(self.f)):
            counts[(day, store or "", user)][0] += int(n)
        for day, store, terminal, status, n in self.conn.execute(q.card_status_changes(self.f)):
            if status in CARD_EVENTS:
                counts[(day, store or "", terminal)][1 + CARD_EVENTS.index(status)] += int(n)
        self.table("card_issuance", ((date.fromisoformat(day), store, user, *n)
                                     for (day, store, user), n in sorted(counts.items())))

    def sales(self) -> None:
        rows = ((at, kind, receipt, store, terminal, member, tier, mask_card(card) if card else "", int(amount),
                 int(earned), int(redeemed), int(rial), actor)
                for at, kind, receipt, store, terminal, member, tier, card, amount, earned, redeemed, rial, actor
                in stream(self.conn, q.sales_sheet(self.f)))
        self.table("sales", rows)

    def sale_lines(self) -> None:
        rows = stream(self.conn, q.sale_lines_sheet(self.f))
        self.table("sale_lines", shared_points(rows, sale=16, quantity=11, price=12, amount=13, earned=14, redeemed=15,
                                               line_no=7))

    def sale_statistics(self) -> None:
        rows = ((store, date.fromisoformat(day), category, tier, int(n), int(sold), int(refunded), int(qty),
                 int(sold) // int(n) if n else 0)
                for store, day, category, tier, n, sold, refunded, qty in stream(self.conn, q.sale_statistics(self.f)))
        self.table("sale_statistics", rows)

    def cards_out_of_use(self) -> None:
        rows = ((changed, mask_card(number), status, reason or "", mask_card(new) if new else "", member, name, store,
                 issued, by)
                for changed, number, status, reason, new, member, name, store, issued, by
                in stream(self.conn, q.cards_out_of_use(self.f)))
        self.table("cards_out_of_use", rows)

    def word(self, words: dict[str, tuple[str, str]], key: str) -> str:
        """A stored word in the workbook's language (as stored when the table has none)."""
        return words[key][1 if self.fa else 0] if key in words else key

    def card_history(self) -> None:
        fa, word = self.fa, self.word

        def status_change(detail: str) -> tuple[str, str]:
            """(the new status, what is said of it) from the audit's JSON, or from
            "status|replaced_by|reason" for a card that reached the hub out of use."""
            if detail.startswith("{"):
                d = json.loads(detail)
                old, new = (d.get("status") or [None, None])[:2]
                replaced_by, reason = d.get("replaced_by"), d.get("reason")
            else:
                old, (new, replaced_by, reason) = None, detail.split("|", 2)
            text = f"{word(CARD_STATUSES, old)} → {word(CARD_STATUSES, new)}" if old else ""
            if replaced_by:
                text += (", " if text else "") + (f"جایگزین: {mask_card(replaced_by)}" if fa
                                                  else f"replaced by {mask_card(replaced_by)}")
            if reason:
                text += (": " if text else "") + reason
            return word(CARD_STATUSES, str(new or "")), text

        def rows() -> Iterator[tuple[Any, ...]]:
            for number, at, event, by, store, terminal, member, detail in stream(self.conn, q.card_history(self.f)):
                if event == "status":
                    shown, text = status_change(detail or "|")
                elif event == "imported":
                    shown, text = word(STORY_EVENTS, event), (f"سری {detail}" if fa else f"batch {detail}")
                elif event == "outside":
                    why, _, required = (detail or "").partition(" ")
                    text = word(OUTSIDE_WHY, why) + ((" (موجودی الزامی بود)" if fa else " (the chain required stock)")
                                                     if required else "")
                    shown = word(STORY_EVENTS, event)
                else:
                    shown, text = word(STORY_EVENTS, event), ""
                yield (mask_card(number), at, shown, by or "", store or HEAD_OFFICE_NAME[fa], terminal or "",
                       member or "", text)

        self.table("card_history", rows())

    def redemptions(self) -> None:
        rows = ((at, store or "", terminal, receipt or "", member, tier, int(points), int(rial), actor)
                for at, store, terminal, receipt, member, tier, points, rial, actor
                in stream(self.conn, q.redemptions(self.f)))
        self.table("redemptions", rows)

    def gift_cards(self) -> None:
        rows = ((issued, mask_card(number), status, by, int(loaded), int(spent), int(balance))
                for issued, number, status, by, loaded, spent, balance in stream(self.conn, q.gift_cards_sheet(self.f)))
        self.table("gift_cards", rows)

    def card_stock(self) -> None:
        """Pre-printed cards now, by place: head office, then each store (the store
        filter keeps those stores; head office is always shown)."""
        places = stock_counts(self.conn)
        keep = set(self.f.stores)
        rows = [(HEAD_OFFICE_NAME[self.fa] if p["where"] == HEAD_OFFICE else p["where"],
                 *(int(p[c]) for c in COUNT_COLUMNS))
                for p in places if not keep or p["where"] == HEAD_OFFICE or p["where"] in keep]
        self.table("card_stock", rows)

    def campaigns(self) -> None:
        """Campaigns due in the period (the store filter keeps those aimed at its stores,
        and chain-wide ones), the messaged group and the held-out group each a row."""
        def word(key: str) -> str:
            return self.word(CAMPAIGN_WORDS, key)

        rows = []
        for c in self.conn.execute(q.campaigns_due(self.f)):
            audience = ", ".join(x for x in (c.segment and self.label.get(c.segment, c.segment), c.tier, c.store)
                                 if x) or word("everyone")
            for r in results_on(self.conn, c.id, RESULT_DAYS):
                rows.append((c.id, c.due_at, c.template, audience, word(c.status), word(r["group"]), r["members"],
                             r["sent"], r["delivered"], r["undelivered"], r["failed"], r["opted_out"],
                             r["suppressed"], r["cancelled"], r["queued"] + r["sending"], r["buyers"], r["sales"],
                             r["amount_rial"], r["buyer_share"]))
        self.table("campaigns", rows)

    def segment_rows(self) -> list[tuple[Any, ...]]:
        seg = self.segments
        total = sum(seg.members.values())
        out = []
        for key in SEGMENTS:
            n = seg.members[key]
            if self.f.segments and key not in self.f.segments:
                continue
            out.append((self.label[key], n, n / total if total else 0.0, seg.visits[key] / n if n else 0.0,
                        seg.spend[key] // n if n else 0, ACTIONS[key][1 if self.fa else 0]))
        return out

    def _count_segments(self) -> None:
        if "members" not in self.written and not self.counted:  # the counts come from the members' pass
            for _ in self._members_pass():
                pass
            self.counted = True

    def segments_sheet(self) -> None:
        self._count_segments()
        self.table("segments", self.segment_rows())

    def _members_pass(self) -> Iterator[None]:
        wanted = set(self.f.segments)
        for _mid, *_rest, last, visits, spend in stream(self.conn, q.members_sheet(self.f)):
            segment = self.ranks.of(_days_since(last, self.rfm_at), int(visits), int(spend))[3]
            if not wanted or segment in wanted:
                self.segments.members[segment] += 1
                self.segments.visits[segment] += int(visits)
                self.segments.spend[segment] += int(spend)
            yield None

    def charts(self) -> None:
        b, fa, f = self.book, self.fa, self.f
        ws = b.worksheet(b.text(*TITLES["charts"]))
        ws.set_column(0, 0, 16)
        ws.set_column(1, 4, 14, b.formats["int"])
        name = ws.name
        months = _months_back(f.days.last, CHART_MONTHS, fa)
        # members over time: new and total by month
        new: Counter[tuple[int, int]] = Counter()
        earlier = 0
        for day, n in self.conn.execute(q.enrolments_by_day(f)):
            month = _month(date.fromisoformat(day), fa)
            if month < months[0]:
                earlier += int(n)
            else:
                new[month] += int(n)
        ws.write_row(0, 0, [b.text("Month", "ماه"), b.text("New members", "اعضای جدید"),
                            b.text("Members", "کل اعضا")], b.bold)
        total = earlier
        for i, month in enumerate(months, start=1):
            total += new[month]
            ws.write_row(i, 0, [_month_label(month), new[month], total])
        chart = b.book.add_chart({"type": "line"})
        chart.add_series({"name": [name, 0, 2], "categories": [name, 1, 0, len(months), 0],
                          "values": [name, 1, 2, len(months), 2]})
        chart.add_series({"name": [name, 0, 1], "categories": [name, 1, 0, len(months), 0],
                          "values": [name, 1, 1, len(months), 1]})
        chart.set_title({"name": b.text("Members over time", "روند تعداد اعضا")})
        ws.insert_chart(0, 6, chart)
        # redemption rate by month
        top = len(months) + 3
        first_day = date(*months[0], 1) if not fa else jdatetime.date(*months[0], 1).togregorian()
        earned: Counter[tuple[int, int]] = Counter()
        redeemed: Counter[tuple[int, int]] = Counter()
        since = datetime(first_day.year, first_day.month, first_day.day, tzinfo=timezone.utc) - timedelta(hours=4)
        for day, e, r in self.conn.execute(q.points_by_day(f, since)):
            month = _month(date.fromisoformat(day), fa)
            earned[month] += int(e)
            redeemed[month] += int(r)
        ws.write_row(top, 0, [b.text("Month", "ماه"), b.text("Points earned", "امتیاز کسب‌شده"),
                              b.text("Points redeemed", "امتیاز خرج‌شده"), b.text("Redemption rate", "نرخ استفاده")],
                     b.bold)
        for i, month in enumerate(months, start=top + 1):
            e = earned[month]
            ws.write_row(i, 0, [_month_label(month), e, redeemed[month]])
            ws.write_number(i, 3, redeemed[month] / e if e else 0.0, b.formats["percent"])
        chart = b.book.add_chart({"type": "column"})
        chart.add_series({"name": [name, top, 3], "categories": [name, top + 1, 0, top + len(months), 0],
                          "values": [name, top + 1, 3, top + len(months), 3]})
        chart.set_title({"name": b.text("Redemption rate by month", "نرخ استفاده از امتیاز در هر ماه")})
        chart.set_y_axis({"num_format": "0%"})
        ws.insert_chart(16, 6, chart)
        # sales by store in the period
        top2 = top + len(months) + 3
        ws.write_row(top2, 0, [b.text("Store", "فروشگاه"), b.text("Purchases", "تعداد خرید"),
                               b.text("Revenue (Rial)", "فروش (ریال)")], b.bold)
        by_store = self.conn.execute(q.sales_by_store(f)).all()
        for i, (store, n, revenue) in enumerate(by_store, start=top2 + 1):
            ws.write_row(i, 0, [store, int(n), int(revenue)])
        chart = b.book.add_chart({"type": "column"})
        last = top2 + max(len(by_store), 1)
        chart.add_series({"name": [name, top2, 2], "categories": [name, top2 + 1, 0, last, 0],
                          "values": [name, top2 + 1, 2, last, 2]})
        chart.set_title({"name": b.text("Sales by store (Rial)", "فروش هر فروشگاه (ریال)")})
        ws.insert_chart(32, 6, chart)
        # members by segment
        top3 = last + 3
        ws.write_row(top3, 0, [b.text("Segment", "بخش"), b.text("Members", "تعداد اعضا")], b.bold)
        self._count_segments()
        seg_rows = self.segment_rows()
        for i, row in enumerate(seg_rows, start=top3 + 1):
            ws.write_row(i, 0, [row[0], row[1]])
        chart = b.book.add_chart({"type": "pie"})
        chart.add_series({"name": b.text("RFM segments", "بخش‌های RFM"),
                          "categories": [name, top3 + 1, 0, top3 + len(seg_rows), 0],
                          "values": [name, top3 + 1, 1, top3 + len(seg_rows), 1]})
        chart.set_title({"name": b.text("Members by RFM segment", "اعضا در هر بخش RFM")})
        ws.insert_chart(48, 6, chart)
        self.written["charts"] = 4


def check_filters(conn: Connection, f: q.Filters) -> None:
    """Every store, tier and segment named exists: a typo is an error, not an empty report."""
    for wanted, known, what in (
            (f.stores, {*conn.execute(q.known(stores.c.code)).scalars(), *conn.execute(q.known(sales.c.store)).scalars()},
             "store"),
            (f.tiers, {*conn.execute(q.known(members.c.tier)).scalars(),
                       *conn.execute(q.known(member_tiers.c.tier)).scalars()}, "tier"),
            (f.segments, set(SEGMENTS), "segment")):
        for name in wanted:
            if name not in known:
                listed = ", ".join(sorted(known)) or "none yet"
                raise ReportRefused(f"no {what} called {name!r}; the {what}s are: {listed}")


def export(engine: Engine, out: Path, filters: q.Filters, *, locale: str = "fa", now: datetime | None = None,
           sheets: Sequence[str] = SHEETS, rows_max: int = EXCEL_ROWS_MAX,
           progress: Progress = NO_PROGRESS) -> dict[str, int]:
    """Write the workbook; the rows written per sheet."""
    unknown = [s for s in sheets if s not in SHEETS]
    if unknown:
        raise ReportRefused(f"no sheet called {unknown[0]!r}; the sheets are {', '.join(SHEETS)}")
    if not out.parent.is_dir():
        raise ReportRefused(f"cannot write {out}: the folder {out.parent} does not exist")
    if out.suffix.lower() != ".xlsx":
        raise ReportRefused(f"cannot write {out}: the workbook's name must end in .xlsx")
    now = now or datetime.now(timezone.utc)
    partial = out.with_name(f".{out.name}.partial")
    done = False
    book: Book | None = None
    try:
        with engine.connect() as conn, conn.begin(), progress_of(progress) as bar:
            check_filters(conn, filters)
            book = Book(partial, locale, rows_max=rows_max, progress=bar)
            job = _Export(conn, book, filters, now, locale == "fa")
            for kind in sheets:
                {"kpis": job.kpis, "members": job.members, "card_issuance": job.card_issuance, "sales": job.sales,
                 "sale_lines": job.sale_lines, "sale_statistics": job.sale_statistics,
                 "cards_out_of_use": job.cards_out_of_use, "card_history": job.card_history,
                 "redemptions": job.redemptions,
                 "gift_cards": job.gift_cards, "card_stock": job.card_stock, "segments": job.segments_sheet,
                 "campaigns": job.campaigns,
                 "charts": job.charts}[kind]()
            book.close()
            done = True
        return job.written
    except SQLAlchemyError as exc:
        raise ReportRefused(f"cannot read the hub's database: {getattr(exc, 'orig', None) or exc}") from None
    except OSError as exc:
        raise ReportRefused(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        if not done:
            if book is not None:
                with contextlib.suppress(Exception):
                    book.close()
            partial.unlink(missing_ok=True)
        else:
            partial.replace(out)
