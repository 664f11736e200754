"""The report's queries (SQLAlchemy Core; the same text runs on SQLite and PostgreSQL).

Each builder returns one SELECT for one sheet, narrowed by the filters in SQL: period,
stores, tiers, and segments (scored as ledger.reports.rfm scores them, from the cuts
of the whole chain's population, by `in_segments`).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, String, and_, case, false, func, literal, null, or_, select, union_all
from sqlalchemy.sql.elements import ColumnElement

from ledger.reports.days import Days
from ledger.reports.rfm import Ranks
from ledger.timefmt import format_utc
from sync.hub.reports.sql import local_day
from sync.hub.schema import (
    audit,
    balances,
    campaigns,
    card_batches,
    card_stock,
    card_stock_outside,
    cards,
    entries,
    gift_balances,
    gift_cards,
    member_tiers,
    members,
    sale_lines,
    sales,
    terminals,
)

# entries of a refund (ledger.sales): earned points taken back, redeemed points returned
REVERSE_EARN = "reverse-earn"
RETURN_REDEEM = "return-redeem"
EARNING = ("earn", "bonus")


@dataclass(frozen=True)
class Filters:
    days: Days
    stores: tuple[str, ...] = ()
    tiers: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    # the segments as a condition on members.c.id (in_segments), set by the export
    # once it has scored the chain; None: every member
    in_segment: ColumnElement[bool] | None = field(default=None, compare=False)


def tier_of() -> ColumnElement[Any]:
    """A member's tier now: the last `tier` entry's, or the one they enrolled with."""
    return func.coalesce(member_tiers.c.tier, members.c.tier)


def _between(column: Any, since: datetime | None, until: datetime | None) -> list[ColumnElement[bool]]:
    out = []
    if since is not None:
        out.append(column >= format_utc(since))
    if until is not None:
        out.append(column < format_utc(until))
    return out


def member_filters(f: Filters) -> list[ColumnElement[bool]]:
    """Tier and segment, on a query that joins the member (_with_member)."""
    out: list[ColumnElement[bool]] = []
    if f.tiers:
        out.append(tier_of().in_(f.tiers))
    if f.in_segment is not None:
        out.append(f.in_segment)
    return out


def _member_filters(f: Filters) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    if f.stores:
        out.append(members.c.store_code.in_(f.stores))
    return out + member_filters(f)


def _with_member(stmt: Select[Any], member_id: Any) -> Select[Any]:
    return stmt.outerjoin(members, members.c.id == member_id).outerjoin(
        member_tiers, member_tiers.c.member_id == member_id)


def _with_tier(stmt: Select[Any]) -> Select[Any]:
    """A query of members, with each one's tier now."""
    return stmt.outerjoin(member_tiers, member_tiers.c.member_id == members.c.id)


def activity(until: datetime) -> Any:
    """Per member, their purchases up to `until`: last visit, visits, spend net of refunds."""
    return (select(sales.c.member_id,
                   func.max(case((sales.c.kind == "sale", sales.c.created_at))).label("last_visit"),
                   func.count(case((sales.c.kind == "sale", 1))).label("visits"),
                   func.coalesce(func.sum(case((sales.c.kind == "refund", -sales.c.amount),
                                               else_=sales.c.amount)), 0).label("spend"))
            .where(sales.c.created_at < format_utc(until)).group_by(sales.c.member_id))


def activity_values(until: datetime) -> Select[Any]:
    """The population RFM scores against: every member's activity (a sale without a
    member is no one's)."""
    a = activity(until).subquery()
    return select(a.c.last_visit, a.c.visits, a.c.spend).where(a.c.member_id.is_not(None))


def _scored(value: Any, cuts: tuple[int | None, ...]) -> ColumnElement[Any]:
    """1..5 of a value of the population, as rfm._scorer gives it (cuts: rfm.cuts_of_sorted)."""
    whens = [(value >= cut, score) for score, cut in reversed(list(enumerate(cuts, start=2))) if cut is not None]
    return case(*whens, else_=1) if whens else literal(1)


def in_segments(ranks: Ranks, at: datetime, until: datetime, wanted: Collection[str]) -> ColumnElement[bool]:
    """members.c.id is in one of the `wanted` segments, scored as Ranks.of scores a
    member with their purchases up to `until` and days counted to `at`. Recency is
    minus the days: a cut -D (at most D days) is a last visit after at - (D + 1) days,
    since days are whole days rounded down (and none for a visit after `at`)."""
    a = activity(until).subquery()
    bought = and_(a.c.member_id.is_not(None), a.c.last_visit.is_not(None), a.c.visits > 0)
    r_cuts, f_cuts, m_cuts = ranks.cuts
    r_whens = [(a.c.last_visit > format_utc(at - timedelta(days=-cut + 1)), score)
               for score, cut in reversed(list(enumerate(r_cuts, start=2))) if cut is not None]
    scored = select(a.c.member_id, (case(*r_whens, else_=1) if r_whens else literal(1)).label("r"),
                    _scored(a.c.visits, f_cuts).label("f"), _scored(a.c.spend, m_cuts).label("m")
                    ).where(bought).subquery()
    r, f, m = scored.c.r, scored.c.f, scored.c.m
    # rfm.segment_of, case by case in the same order
    segment = case((and_(r >= 4, f >= 4, m >= 4), "champions"), (and_(f >= 4, r >= 3), "loyal"),
                   (f >= 4, "at_risk"), (and_(r >= 4, f <= 2), "new"), (and_(r <= 2, f >= 3), "at_risk"),
                   (r <= 2, "hibernating"), else_="regular")
    buying = sorted(set(wanted) - {"no_purchase"})
    condition: ColumnElement[bool] = (members.c.id.in_(select(scored.c.member_id).where(segment.in_(buying)))
                                      if buying else false())
    if "no_purchase" in wanted:
        b = activity(until).subquery()
        buyers = select(b.c.member_id).where(b.c.member_id.is_not(None), b.c.last_visit.is_not(None), b.c.visits > 0)
        condition = or_(condition, members.c.id.not_in(buyers))
    return condition


def members_sheet(f: Filters) -> Select[Any]:
    a = activity(f.days.until).subquery()
    stmt = select(members.c.id, members.c.name, members.c.mobile, tier_of(), members.c.store_code,
                  members.c.enrolled_at, func.coalesce(balances.c.points, 0), a.c.last_visit,
                  func.coalesce(a.c.visits, 0), func.coalesce(a.c.spend, 0))
    stmt = _with_tier(stmt.select_from(members))
    return (stmt.outerjoin(balances, balances.c.member_id == members.c.id)
            .outerjoin(a, a.c.member_id == members.c.id)
            .where(members.c.enrolled_at < format_utc(f.days.until), *_member_filters(f))
            .order_by(members.c.enrolled_at, members.c.id))


def points_by_sale(f: Filters) -> Any:
    """Per sale or refund of the period: points earned (net of those a refund took
    back), points redeemed (net of those a refund returned) and the Rial they paid."""
    k, p = entries.c.kind, entries.c.points
    return (select(entries.c.sale_id,
                   func.sum(case((k.in_(EARNING), p), (and_(k == "reverse", entries.c.rule_id == REVERSE_EARN), p),
                                 else_=0)).label("earned"),
                   func.sum(case((k == "redeem", -p),
                                 (and_(k == "reverse", entries.c.rule_id == RETURN_REDEEM), -p),
                                 else_=0)).label("redeemed"),
                   func.sum(case((k == "redeem", entries.c.amount), else_=0)).label("redeemed_rial"))
            .where(entries.c.sale_id.is_not(None), *_between(entries.c.created_at, f.days.since, f.days.until))
            .group_by(entries.c.sale_id).subquery())


def _sale_filters(f: Filters) -> list[ColumnElement[bool]]:
    out = _between(sales.c.created_at, f.days.since, f.days.until)
    if f.stores:
        out.append(sales.c.store.in_(f.stores))
    return out + member_filters(f)


def sales_sheet(f: Filters) -> Select[Any]:
    pts = points_by_sale(f)
    stmt = select(sales.c.created_at, sales.c.kind, sales.c.receipt_ref, sales.c.store, sales.c.terminal_code,
                  sales.c.member_id, tier_of(), sales.c.card_number, sales.c.amount,
                  func.coalesce(pts.c.earned, 0), func.coalesce(pts.c.redeemed, 0),
                  func.coalesce(pts.c.redeemed_rial, 0), sales.c.actor)
    stmt = _with_member(stmt.select_from(sales), sales.c.member_id)
    return (stmt.outerjoin(pts, pts.c.sale_id == sales.c.id).where(*_sale_filters(f))
            .order_by(sales.c.created_at, sales.c.id))


def sale_lines_sheet(f: Filters) -> Select[Any]:
    """Lines in sale order (the caller shares each sale's points among its lines)."""
    pts = points_by_sale(f)
    stmt = select(sales.c.created_at, sales.c.kind, sales.c.store, sales.c.terminal_code, sales.c.receipt_ref,
                  sales.c.member_id, tier_of(), sale_lines.c.line_no, sale_lines.c.sku, sale_lines.c.name,
                  sale_lines.c.category, sale_lines.c.quantity, sale_lines.c.unit_price, sales.c.amount,
                  func.coalesce(pts.c.earned, 0), func.coalesce(pts.c.redeemed, 0), sales.c.id)
    stmt = stmt.select_from(sale_lines).join(sales, sales.c.id == sale_lines.c.sale_id)
    stmt = _with_member(stmt, sales.c.member_id).outerjoin(pts, pts.c.sale_id == sales.c.id)
    return (stmt.where(*_between(sale_lines.c.created_at, f.days.since, f.days.until), *_sale_filters(f))
            .order_by(sale_lines.c.created_at, sale_lines.c.sale_id, sale_lines.c.line_no))


def sale_statistics(f: Filters) -> Select[Any]:
    """By store, local day, category and tier: sales, Rial sold and refunded, quantity."""
    day = local_day(sales.c.created_at)
    line_total = sale_lines.c.quantity * sale_lines.c.unit_price
    is_sale = sales.c.kind == "sale"
    stmt = select(sales.c.store, day, sale_lines.c.category, tier_of(),
                  func.count(func.distinct(case((is_sale, sales.c.id)))),
                  func.coalesce(func.sum(case((is_sale, line_total), else_=0)), 0),
                  func.coalesce(func.sum(case((is_sale, 0), else_=line_total)), 0),
                  func.coalesce(func.sum(case((is_sale, sale_lines.c.quantity), else_=0)), 0))
    stmt = stmt.select_from(sale_lines).join(sales, sales.c.id == sale_lines.c.sale_id)
    stmt = _with_member(stmt, sales.c.member_id).where(*_sale_filters(f))
    return stmt.group_by(sales.c.store, day, sale_lines.c.category, tier_of()).order_by(
        day, sales.c.store, sale_lines.c.category, tier_of())


def sales_by_store(f: Filters) -> Select[Any]:
    is_sale = sales.c.kind == "sale"
    stmt = select(sales.c.store, func.count(case((is_sale, 1))),
                  func.coalesce(func.sum(case((is_sale, sales.c.amount), else_=-sales.c.amount)), 0))
    stmt = _with_member(stmt.select_from(sales), sales.c.member_id).where(*_sale_filters(f))
    return stmt.group_by(sales.c.store).order_by(sales.c.store)


def card_issues(f: Filters) -> Select[Any]:
    """Cards issued in the period by local day, store and user. The store is the
    issuing terminal's (from the hub's audit of the sync that brought the card), else
    the member's home store."""
    day = local_day(cards.c.issued_at)
    issuer = (select(audit.c.target, func.min(audit.c.actor).label("terminal"))
              .where(audit.c.action == "card.issue").group_by(audit.c.target).subquery())
    store = func.coalesce(terminals.c.store, members.c.store_code)
    stmt = (select(day, store, cards.c.issued_by, func.count())
            .select_from(cards).outerjoin(issuer, issuer.c.target == cards.c.number)
            .outerjoin(terminals, terminals.c.id == issuer.c.terminal))
    stmt = _with_member(stmt, cards.c.member_id).where(*_between(cards.c.issued_at, f.days.since, f.days.until))
    if f.stores:
        stmt = stmt.where(store.in_(f.stores))
    return stmt.where(*member_filters(f)).group_by(day, store, cards.c.issued_by)


def card_status_changes(f: Filters) -> Select[Any]:
    """Cards lost, replaced or blocked in the period, by local day, store, the terminal
    that told the hub and the status. The hub keeps a card's latest status (with the
    till's time of the change): a card lost and then replaced counts as replaced. The
    store is that terminal's, else the member's home store."""
    day = local_day(cards.c.status_changed_at)
    last = (select(audit.c.target, func.max(audit.c.id).label("id"))
            .where(audit.c.action.in_(("card.issue", "card.status"))).group_by(audit.c.target).subquery())
    told = audit.alias("told")
    store = func.coalesce(terminals.c.store, members.c.store_code)
    stmt = (select(day, store, func.coalesce(told.c.actor, ""), cards.c.status, func.count())
            .select_from(cards).outerjoin(last, last.c.target == cards.c.number)
            .outerjoin(told, told.c.id == last.c.id).outerjoin(terminals, terminals.c.id == told.c.actor))
    stmt = _with_member(stmt, cards.c.member_id).where(
        cards.c.status != "active", *_between(cards.c.status_changed_at, f.days.since, f.days.until))
    if f.stores:
        stmt = stmt.where(store.in_(f.stores))
    return stmt.where(*member_filters(f)).group_by(day, store, told.c.actor, cards.c.status)


def cards_out_of_use(f: Filters) -> Select[Any]:
    stmt = select(cards.c.status_changed_at, cards.c.number, cards.c.status, cards.c.status_reason,
                  cards.c.replaced_by, cards.c.member_id, members.c.name, members.c.store_code, cards.c.issued_at,
                  cards.c.issued_by)
    stmt = _with_member(stmt.select_from(cards), cards.c.member_id)
    return (stmt.where(cards.c.status != "active",
                       *_between(cards.c.status_changed_at, f.days.since, f.days.until), *_member_filters(f))
            .order_by(cards.c.status_changed_at, cards.c.number))


# what happened to a card, in the order of its story (sync.hub.stock.card_history
# tells the same story of one card at the command line)
CARD_STORY = ("imported", "assigned", "issued", "stock", "outside", "status")
_STORY_COLUMNS = ("number", "at", "event", "by", "store", "terminal", "member", "detail")


def _story(*columns: Any) -> Select[Any]:
    """One part of the card history's union, its columns named: a part's several NULLs
    would otherwise be one column of the union."""
    return select(*(column.label(name) for column, name in zip(columns, _STORY_COLUMNS, strict=True)))


def card_history(f: Filters) -> Any:
    """Every event of every member card in the period, card by card and in time order:
    imported into head office's stock (its batch), assigned to a store, issued to a
    member (the terminal that sent it), recorded against the stock, issued outside the
    stock, and each change of status (lost, blocked, replaced: the hub's audit of the
    sync that brought it; a card that reached the hub already out of use, from its
    row). Columns: number, at, event, by, store (None: head office), terminal, member,
    detail (a status change's audit JSON, the batch, why outside). The store filter
    keeps the events at those stores; tier and segment do not narrow it (stock has no
    member)."""
    issuer = (select(audit.c.target, func.min(audit.c.actor).label("terminal"))
              .where(audit.c.action == "card.issue").group_by(audit.c.target).subquery())
    issuing = terminals.alias("issuing")
    told = terminals.alias("told")
    no_text = null().cast(String)
    told_store = func.coalesce(told.c.store, members.c.store_code)
    audited = select(audit.c.target).where(audit.c.action == "card.status", audit.c.target == cards.c.number)
    parts: list[Select[Any]] = [
        _story(card_stock.c.number, card_batches.c.imported_at, literal("imported"), card_batches.c.imported_by,
               no_text, no_text, no_text, card_stock.c.batch)
        .select_from(card_stock.join(card_batches, card_batches.c.name == card_stock.c.batch))
        .where(*_between(card_batches.c.imported_at, f.days.since, f.days.until),
               *([false()] if f.stores else [])),
        _story(card_stock.c.number, card_stock.c.assigned_at, literal("assigned"), card_stock.c.assigned_by,
               card_stock.c.store, no_text, no_text, no_text)
        .where(card_stock.c.assigned_at.is_not(None), *_between(card_stock.c.assigned_at, f.days.since, f.days.until),
               *([card_stock.c.store.in_(f.stores)] if f.stores else [])),
        _story(cards.c.number, cards.c.issued_at, literal("issued"), cards.c.issued_by,
               func.coalesce(issuing.c.store, members.c.store_code), issuer.c.terminal, cards.c.member_id, no_text)
        .select_from(cards.outerjoin(issuer, issuer.c.target == cards.c.number)
                     .outerjoin(issuing, issuing.c.id == issuer.c.terminal)
                     .outerjoin(members, members.c.id == cards.c.member_id))
        .where(*_between(cards.c.issued_at, f.days.since, f.days.until),
               *([func.coalesce(issuing.c.store, members.c.store_code).in_(f.stores)] if f.stores else [])),
        _story(card_stock.c.number, card_stock.c.issued_at, literal("stock"), literal("hub"), card_stock.c.store,
               card_stock.c.issued_terminal, no_text, no_text)
        .where(card_stock.c.issued_at.is_not(None), *_between(card_stock.c.issued_at, f.days.since, f.days.until),
               *([card_stock.c.store.in_(f.stores)] if f.stores else [])),
        _story(card_stock_outside.c.number, card_stock_outside.c.received_at, literal("outside"), literal("hub"),
               card_stock_outside.c.store, card_stock_outside.c.terminal_code, card_stock_outside.c.member_id,
               card_stock_outside.c.why + case((card_stock_outside.c.required.is_(True), " required"), else_=""))
        .where(*_between(card_stock_outside.c.received_at, f.days.since, f.days.until),
               *([card_stock_outside.c.store.in_(f.stores)] if f.stores else [])),
        _story(audit.c.target, audit.c.at, literal("status"), audit.c.actor, told_store, audit.c.actor,
               cards.c.member_id, audit.c.detail)
        .select_from(audit.outerjoin(told, told.c.id == audit.c.actor)
                     .outerjoin(cards, cards.c.number == audit.c.target)
                     .outerjoin(members, members.c.id == cards.c.member_id))
        .where(audit.c.action == "card.status", *_between(audit.c.at, f.days.since, f.days.until),
               *([told_store.in_(f.stores)] if f.stores else [])),
        # out of use with no audited change: it reached the hub that way
        _story(cards.c.number, cards.c.status_changed_at, literal("status"), no_text, members.c.store_code, no_text,
               cards.c.member_id, func.coalesce(cards.c.status, "") + "|" + func.coalesce(cards.c.replaced_by, "")
               + "|" + func.coalesce(cards.c.status_reason, ""))
        .select_from(cards.outerjoin(members, members.c.id == cards.c.member_id))
        .where(cards.c.status != "active", cards.c.status_changed_at.is_not(None), ~audited.exists(),
               *_between(cards.c.status_changed_at, f.days.since, f.days.until),
               *([members.c.store_code.in_(f.stores)] if f.stores else [])),
    ]
    story = union_all(*parts).subquery()
    c = list(story.c)
    order = case(*((c[2] == name, i) for i, name in enumerate(CARD_STORY)), else_=len(CARD_STORY))
    return select(*c).order_by(c[0], c[1], order)


def redemptions(f: Filters) -> Select[Any]:
    stmt = select(entries.c.created_at, terminals.c.store, entries.c.terminal_code, entries.c.receipt_ref,
                  entries.c.member_id, tier_of(), -entries.c.points, entries.c.amount, entries.c.actor)
    stmt = stmt.select_from(entries).outerjoin(terminals, terminals.c.id == entries.c.terminal_code)
    stmt = _with_member(stmt, entries.c.member_id).where(
        entries.c.kind == "redeem", *_between(entries.c.created_at, f.days.since, f.days.until))
    if f.stores:
        stmt = stmt.where(terminals.c.store.in_(f.stores))
    return stmt.where(*member_filters(f)).order_by(entries.c.created_at, entries.c.terminal_code, entries.c.seq)


def campaigns_due(f: Filters) -> Select[Any]:
    """Campaigns due in the period, oldest first; with a store filter, those aimed at
    its stores and those aimed at every store (whose results are the chain's)."""
    stmt = select(campaigns).where(*_between(campaigns.c.due_at, f.days.since, f.days.until))
    if f.stores:
        stmt = stmt.where(or_(campaigns.c.store.in_(f.stores), campaigns.c.store.is_(None)))
    return stmt.order_by(campaigns.c.due_at, campaigns.c.id)


def gift_cards_sheet(f: Filters) -> Select[Any]:
    """Each gift card: loaded and spent in the period, and its balance now. Gift cards
    name no member: the store filter applies to where it was loaded or spent."""
    moved = (select(entries.c.gift_card_number.label("number"),
                    func.sum(case((entries.c.kind == "gift_load", entries.c.amount), else_=0)).label("loaded"),
                    func.sum(case((entries.c.kind == "gift_spend", -entries.c.amount), else_=0)).label("spent"))
             .select_from(entries).outerjoin(terminals, terminals.c.id == entries.c.terminal_code)
             .where(entries.c.gift_card_number.is_not(None),
                    *_between(entries.c.created_at, f.days.since, f.days.until),
                    *([terminals.c.store.in_(f.stores)] if f.stores else []))
             .group_by(entries.c.gift_card_number).subquery())
    balance = (select(gift_balances.c.number, func.sum(gift_balances.c.amount).label("balance"))
               .group_by(gift_balances.c.number).subquery())
    stmt = (select(gift_cards.c.issued_at, gift_cards.c.number, gift_cards.c.status, gift_cards.c.issued_by,
                   func.coalesce(moved.c.loaded, 0), func.coalesce(moved.c.spent, 0),
                   func.coalesce(balance.c.balance, 0))
            .select_from(gift_cards).outerjoin(moved, moved.c.number == gift_cards.c.number)
            .outerjoin(balance, balance.c.number == gift_cards.c.number))
    if f.stores:  # only the cards that moved at those stores in the period
        stmt = stmt.where(moved.c.number.is_not(None))
    else:  # every card issued before the period's end
        stmt = stmt.where(gift_cards.c.issued_at < format_utc(f.days.until))
    return stmt.order_by(gift_cards.c.issued_at, gift_cards.c.number)


def enrolments_by_day(f: Filters) -> Select[Any]:
    day = local_day(members.c.enrolled_at)
    stmt = _with_tier(select(day, func.count()).select_from(members))
    return (stmt.where(members.c.enrolled_at < format_utc(f.days.until), *_member_filters(f))
            .group_by(day).order_by(day))


def points_by_day(f: Filters, since: datetime) -> Select[Any]:
    """Points earned and redeemed by local day, from `since` to the period's end."""
    day = local_day(entries.c.created_at)
    k, p = entries.c.kind, entries.c.points
    stmt = select(day, func.coalesce(func.sum(case((k.in_(EARNING), p), else_=0)), 0),
                  func.coalesce(func.sum(case((k == "redeem", -p), else_=0)), 0))
    stmt = stmt.select_from(entries).outerjoin(terminals, terminals.c.id == entries.c.terminal_code)
    stmt = _with_member(stmt, entries.c.member_id).where(*_between(entries.c.created_at, since, f.days.until))
    if f.stores:
        stmt = stmt.where(terminals.c.store.in_(f.stores))
    return stmt.where(*member_filters(f)).group_by(day).order_by(day)


def known(column: Any) -> Select[Any]:
    return select(column).distinct().order_by(column)

