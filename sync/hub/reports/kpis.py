"""The programme's headline numbers for a period and the one before it, each with its
definition (written beside it on the sheet). The database sums; the ratios are
computed here, in integers where they are money."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, case, exists, func, select

from ledger.reports.days import Days
from ledger.rules import default_ruleset, parse_ruleset, point_value_at
from ledger.timefmt import format_utc
from sync.hub.reports.queries import (EARNING, Filters, _member_filters, _sale_filters, _with_member, _with_tier,
                                      member_filters)
from sync.hub.schema import entries, members, rulesets, sales, terminals


@dataclass(frozen=True)
class Kpi:
    key: str
    en: str
    fa: str
    definition_en: str
    definition_fa: str
    kind: str  # a workbook column kind: int | percent | number


KPIS = (
    Kpi("members", "Members at the period's end", "اعضا در پایان دوره",
        "Members enrolled before the period ended (of the chosen stores and tiers).",
        "اعضایی که تا پایان دوره عضو شده‌اند (فروشگاه‌ها و سطوح انتخاب‌شده).", "int"),
    Kpi("new_members", "New members", "اعضای جدید", "Members enrolled during the period.",
        "اعضایی که در این دوره عضو شده‌اند.", "int"),
    Kpi("growth", "Member growth", "رشد اعضا", "New members ÷ members at the period's start.",
        "اعضای جدید ÷ اعضا در آغاز دوره.", "percent"),
    Kpi("active", "Active members", "اعضای فعال", "Members with at least one purchase in the period.",
        "اعضایی که در این دوره دست‌کم یک خرید داشته‌اند.", "int"),
    Kpi("retention", "Retention", "ماندگاری",
        "Of the members active in the period before, the share who bought again in this one.",
        "از اعضای فعال دوره قبل، سهمی که در این دوره هم خرید کرده‌اند.", "percent"),
    Kpi("churn", "Churn", "ریزش", "1 − retention: active before, no purchase in this period.",
        "۱ − ماندگاری: فعال در دوره قبل و بدون خرید در این دوره.", "percent"),
    Kpi("sales", "Purchases", "تعداد خرید", "Sales (not refunds) in the period.",
        "فروش‌های دوره (بدون مرجوعی).", "int"),
    Kpi("revenue", "Members' revenue (Rial)", "فروش به اعضا (ریال)", "Sales minus refunds, in Rial.",
        "فروش منهای مرجوعی، به ریال.", "int"),
    Kpi("frequency", "Purchase frequency", "تناوب خرید", "Purchases ÷ active members.",
        "تعداد خرید ÷ اعضای فعال.", "number"),
    Kpi("aov", "Average order value (Rial)", "میانگین مبلغ خرید (ریال)",
        "Sales in Rial ÷ purchases (refunds not subtracted).", "مبلغ فروش ÷ تعداد خرید (بدون کسر مرجوعی).", "int"),
    Kpi("earned", "Points earned", "امتیاز کسب‌شده", "Points given for purchases and bonuses in the period.",
        "امتیاز داده‌شده برای خرید و جایزه در دوره.", "int"),
    Kpi("redeemed", "Points redeemed", "امتیاز خرج‌شده", "Points that paid for part of a purchase in the period.",
        "امتیازی که در دوره بخشی از خرید را پرداخت کرده است.", "int"),
    Kpi("redeemed_rial", "Redeemed value (Rial)", "ارزش امتیاز خرج‌شده (ریال)",
        "The Rial the redeemed points paid at the tills.", "ریالی که امتیازهای خرج‌شده در صندوق پرداخت کرده‌اند.",
        "int"),
    Kpi("redemption_rate", "Redemption rate", "نرخ استفاده از امتیاز", "Points redeemed ÷ points earned.",
        "امتیاز خرج‌شده ÷ امتیاز کسب‌شده.", "percent"),
    Kpi("outstanding", "Points outstanding at the period's end", "امتیاز مانده در پایان دوره",
        "Every point the chosen members hold at the period's end (all entries before it).",
        "همه امتیاز اعضای انتخاب‌شده در پایان دوره (همه تراکنش‌های پیش از آن).", "int"),
    Kpi("point_value", "Point value (Rial)", "ارزش هر امتیاز (ریال)",
        "What one point pays at a till, from the loyalty table in force at the period's end.",
        "مبلغی که هر امتیاز در صندوق می‌پردازد، طبق جدول باشگاه در پایان دوره.", "int"),
    Kpi("liability", "Points liability (Rial)", "بدهی امتیاز (ریال)", "Points outstanding × point value.",
        "امتیاز مانده × ارزش هر امتیاز.", "int"),
    Kpi("cost", "Programme cost (Rial)", "هزینه باشگاه (ریال)",
        "Points earned in the period × point value: what they will cost when redeemed.",
        "امتیاز کسب‌شده در دوره × ارزش هر امتیاز: هزینه آن‌ها هنگام خرج شدن.", "int"),
    Kpi("return", "Revenue per Rial of programme cost", "فروش به ازای هر ریال هزینه",
        "Members' revenue ÷ programme cost.", "فروش به اعضا ÷ هزینه باشگاه.", "number"),
)


def point_value(conn: Connection, at: datetime) -> int:
    """Rial per point at `at`, from the newest loyalty table published to the hub
    (the built-in default table when none was)."""
    text = conn.execute(select(rulesets.c.toml).where(rulesets.c.published_at < format_utc(at))
                        .order_by(rulesets.c.version.desc()).limit(1)).scalar()
    ruleset = parse_ruleset(tomllib.loads(text), "the hub's loyalty table") if text else default_ruleset()
    return int(point_value_at(ruleset, at - timedelta(microseconds=1)))


def _scalar(conn: Connection, stmt: Any) -> int:
    return int(conn.execute(stmt).scalar() or 0)


def _members_before(conn: Connection, f: Filters, at: datetime) -> int:
    stmt = _with_tier(select(func.count()).select_from(members))
    return _scalar(conn, stmt.where(members.c.enrolled_at < format_utc(at), *_member_filters(f)))


def _active(conn: Connection, f: Filters) -> Any:
    stmt = _with_member(select(sales.c.member_id).select_from(sales), sales.c.member_id)
    return stmt.where(sales.c.kind == "sale", *_sale_filters(f)).distinct()


def _retained(conn: Connection, before: Filters, now: Filters) -> int:
    prev = _active(conn, before).subquery()
    again = sales.alias("again")
    later = [again.c.member_id == prev.c.member_id, again.c.kind == "sale",
             again.c.created_at >= format_utc(now.days.since), again.c.created_at < format_utc(now.days.until)]
    if now.stores:
        later.append(again.c.store.in_(now.stores))
    return _scalar(conn, select(func.count()).select_from(prev).where(exists().where(and_(*later))))


def _entry_where(f: Filters) -> list[Any]:
    out = [entries.c.created_at >= format_utc(f.days.since), entries.c.created_at < format_utc(f.days.until)]
    if f.stores:
        out.append(terminals.c.store.in_(f.stores))
    return out + member_filters(f)


def measure(conn: Connection, f: Filters) -> dict[str, int | float]:
    """The KPIs of f's period."""
    days = f.days
    before = replace(f, days=days.before())
    at_start, at_end = _members_before(conn, f, days.since), _members_before(conn, f, days.until)
    active = _scalar(conn, select(func.count()).select_from(_active(conn, f).subquery()))
    active_before = _scalar(conn, select(func.count()).select_from(_active(conn, before).subquery()))
    retained = _retained(conn, before, f)
    is_sale = sales.c.kind == "sale"
    money = _with_member(select(func.count(case((is_sale, 1))),
                                func.coalesce(func.sum(case((is_sale, sales.c.amount), else_=0)), 0),
                                func.coalesce(func.sum(case((is_sale, 0), else_=sales.c.amount)), 0))
                         .select_from(sales), sales.c.member_id).where(*_sale_filters(f))
    purchases, sold, refunded = (int(v or 0) for v in conn.execute(money).one())
    k, p = entries.c.kind, entries.c.points
    pts = (select(func.coalesce(func.sum(case((k.in_(EARNING), p), else_=0)), 0),
                  func.coalesce(func.sum(case((k == "redeem", -p), else_=0)), 0),
                  func.coalesce(func.sum(case((k == "redeem", entries.c.amount), else_=0)), 0))
           .select_from(entries).outerjoin(terminals, terminals.c.id == entries.c.terminal_code))
    earned, redeemed, redeemed_rial = (int(v or 0) for v in conn.execute(
        _with_member(pts, entries.c.member_id).where(*_entry_where(f))).one())
    held = _with_member(select(func.coalesce(func.sum(entries.c.points), 0)).select_from(entries),
                        entries.c.member_id)
    outstanding = _scalar(conn, held.where(entries.c.created_at < format_utc(days.until),
                                           entries.c.member_id.is_not(None), *_member_filters(f)))
    value = point_value(conn, days.until)
    revenue = sold - refunded
    cost = earned * value
    retention = retained / active_before if active_before else 0.0
    return {
        "members": at_end, "new_members": at_end - at_start, "growth": (at_end - at_start) / at_start if at_start else 0.0,
        "active": active, "retention": retention, "churn": (1.0 - retention) if active_before else 0.0,
        "sales": purchases, "revenue": revenue, "frequency": purchases / active if active else 0.0,
        "aov": sold // purchases if purchases else 0, "earned": earned, "redeemed": redeemed,
        "redeemed_rial": redeemed_rial, "redemption_rate": redeemed / earned if earned else 0.0,
        "outstanding": outstanding, "point_value": value, "liability": outstanding * value, "cost": cost,
        "return": revenue / cost if cost else 0.0,
    }


def rows(conn: Connection, f: Filters, fa: bool) -> list[tuple[Any, ...]]:
    """(measure, this period, the period before, definition) for the KPI sheet."""
    now, before = measure(conn, f), measure(conn, replace(f, days=f.days.before()))
    return [(k.fa if fa else k.en, now[k.key], before[k.key], k.definition_fa if fa else k.definition_en)
            for k in KPIS]


def period_text(days: Days, fa: bool) -> str:
    from ledger.reports.workbook import jalali_text

    if fa:
        return f"{jalali_text(days.first)} تا {jalali_text(days.last)}"
    return f"{days.first.isoformat()} to {days.last.isoformat()}"
