"""The evaluation: (ruleset, member snapshot, basket, instant) -> award plan.

Pure and deterministic: no I/O, no clock, no database; integers only. Each rule that
fires adds one line with its points and an explanation in English and Persian, so a
member can be told where every point came from.

Order: redemption (what the basket may pay with points), base earn on what is paid in
money (season rate, category and SKU multipliers, minimum purchase), tier multiplier,
bonuses (birthday, visit streak), targeted offers, caps (per sale, per member per day),
tier upgrade, referral for the referrer, and the offers still open as suggestions.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from operator import attrgetter, mul
from typing import Any

from ledger.rules.dates import anniversary, jalali, local_date
from ledger.rules.model import Basket, MemberSnapshot, Offer, Plan, PlanLine, Ruleset, Season, Suggestion
from ledger.rules.text import en, fa, persian_numbers


def season_at(ruleset: Ruleset, day: date) -> Season | None:
    for s in ruleset.seasons:
        if s.start <= day <= s.end:
            return s
    return None


_LOOKUP_MAX = 50_000  # (sku, category) pairs remembered per table before starting over
_NOTES_MAX = 1_024  # sets of odd categories and SKUs whose notes are kept per table
_TABLES_MAX = 64  # tables kept; a terminal runs one, the hub a few versions

_SKU_CATEGORY = attrgetter("sku", "category")
_QUANTITY = attrgetter("quantity")
_UNIT_PRICE = attrgetter("unit_price")


class _PairLookup(dict):  # type: ignore[type-arg]
    """(sku, category) -> what the table says of it, worked out on first sight. A dict,
    so that a basket's lines are looked up through map() without a Python-level loop."""

    __slots__ = ("_work_out",)

    def __init__(self, work_out: Callable[[tuple[str, str]], Any]) -> None:
        super().__init__()
        self._work_out = work_out

    def __missing__(self, pair: tuple[str, str]) -> Any:
        if len(self) >= _LOOKUP_MAX:
            self.clear()
        value = self[pair] = self._work_out(pair)
        return value


def _multiplier_note(what: str, what_fa: str, pct: int) -> tuple[str, str]:
    if pct == 0:
        return f"{what} earns nothing", persian_numbers(f"{what_fa} امتیازی ندارد")
    return f"{what} earns {pct}%", persian_numbers(f"{what_fa} {pct}٪ امتیاز دارد")


class _Table:
    """What every evaluation under one loyalty table shares: the multiplier of each
    (sku, category) pair and the parts of the explanations that depend on the table
    alone, their Persian digits already in place. Built once per table hash."""

    def __init__(self, rs: Ruleset) -> None:
        cats = {m.key: m.percent for m in rs.earn.categories}
        skus = {m.key: m.percent for m in rs.earn.skus}

        # the note on each SKU and category that earns other than the base rate, in
        # English (which names the rule uniquely) -> Persian, Persian digits in place
        sku_notes = {k: _multiplier_note(f"SKU {k}", f"کالای {k}", pct) for k, pct in skus.items() if pct != 100}
        cat_notes = {k: _multiplier_note(f"category {k}", f"دسته {k}", pct) for k, pct in cats.items() if pct != 100}
        self.note_fa = dict([*sku_notes.values(), *cat_notes.values()])
        sku_note = {k: note for k, (note, _) in sku_notes.items()}
        cat_note = {k: note for k, (note, _) in cat_notes.items()}

        def odd(pair: tuple[str, str]) -> str | None:
            """The English note on a pair that earns other than the base rate, or None. A
            string keeps its hash, so a basket's notes are gathered without hashing tuples."""
            sku, category = pair
            if sku in skus:
                return sku_note.get(sku)
            return cat_note.get(category)

        def percent(pair: tuple[str, str]) -> int:
            pct = skus.get(pair[0])
            return cats.get(pair[1], 100) if pct is None else pct

        self.percent = _PairLookup(percent)
        self.odd = _PairLookup(odd)
        self.notes: dict[tuple[str, ...], tuple[str, str]] = {}
        # the first tier of an id wins, as in Ruleset.tier and Ruleset.rank
        self.tiers = {t.id: t for t in reversed(rs.tiers)}
        self.ranks = {t.id: len(rs.tiers) - 1 - i for i, t in enumerate(reversed(rs.tiers))}

        e, b = rs.earn, rs.bonuses
        self.below_minimum = PlanLine(
            "earn", "earn", 0, f"Purchases under {e.minimum_purchase:,} Rial earn no points",
            persian_numbers(f"خرید کمتر از {e.minimum_purchase:,} ریال امتیازی ندارد"))
        # "1 point per N Rial (season)" by season id, None outside every season
        self.earn_head: dict[str | None, tuple[str, str]] = {
            None: (f"1 point per {e.rial_per_point:,} Rial", persian_numbers(f"هر {e.rial_per_point:,} ریال یک امتیاز"))}
        for s in rs.seasons:
            self.earn_head[s.id] = (
                f"1 point per {s.earn_rial_per_point:,} Rial ({s.name_en} season)",
                persian_numbers(f"هر {s.earn_rial_per_point:,} ریال یک امتیاز (فصل {s.name_fa})"))
        self.tier_head = {t.id: (f"{t.name_en} tier earns {t.earn_percent}%: ",
                                 persian_numbers(f"سطح {t.name_fa}: {t.earn_percent}٪ امتیاز: "))
                          for t in self.tiers.values()}
        self.discount_head = {t.id: (f"{t.name_en} tier discount {t.discount_percent}%: ",
                                     persian_numbers(f"تخفیف سطح {t.name_fa} {t.discount_percent}٪: "))
                              for t in self.tiers.values()}
        self.birthday = PlanLine("birthday", "bonus", b.birthday_points,
                                 f"Happy birthday: {b.birthday_points:,} points",
                                 persian_numbers(f"تولدتان مبارک: {b.birthday_points:,} امتیاز"))
        self.streak = PlanLine(
            "streak", "bonus", b.streak_points,
            f"Visit {b.streak_every} within {b.streak_within_days} days: {b.streak_points:,} points",
            persian_numbers(f"{b.streak_every}مین خرید در {b.streak_within_days} روز: {b.streak_points:,} امتیاز"))

    def notes_for(self, odd: tuple[str, ...]) -> tuple[str, str]:
        """The earn line's notes on the categories and SKUs that earn other than the base."""
        notes = self.notes.get(odd)
        if notes is None:
            if len(self.notes) >= _NOTES_MAX:
                self.notes.clear()
            notes = self.notes[odd] = (" (" + "; ".join(odd) + ")",
                                       " (" + "؛ ".join(map(self.note_fa.__getitem__, odd)) + ")")
        return notes


_TABLES: dict[str, _Table] = {}


def _table(ruleset: Ruleset) -> _Table:
    table = _TABLES.get(ruleset.hash) if ruleset.hash else None
    if table is None:
        table = _Table(ruleset)
        if ruleset.hash:  # a table built in code without a hash is not cached: nothing names it
            if len(_TABLES) >= _TABLES_MAX:
                _TABLES.clear()
            _TABLES[ruleset.hash] = table
    return table


def _weighted_amount(table: _Table, basket: Basket) -> tuple[int, int, str, str]:
    """(basket total, sum of line totals times their multiplier percent (still x100),
    notes in English and Persian on each category or SKU earning other than the base).
    Runs for every line of every basket, so the lines are walked by map() in C."""
    lines = basket.lines
    amounts = list(map(mul, map(_QUANTITY, lines), map(_UNIT_PRICE, lines)))
    pairs = list(map(_SKU_CATEGORY, lines))
    weighted = sum(map(mul, amounts, map(table.percent.__getitem__, pairs)))
    odd = dict.fromkeys(map(table.odd.__getitem__, pairs))  # first appearance order, once each
    odd.pop(None, None)
    notes_en, notes_fa = table.notes_for(tuple(odd)) if odd else ("", "")
    return sum(amounts), weighted, notes_en, notes_fa


def _redemption(ruleset: Ruleset, snap: MemberSnapshot, basket: Basket, total: int, point_value: int
                ) -> tuple[int, int, int, str | None]:
    """(redeem points, max points, max Rial, problem with the request or None)."""
    red = ruleset.redemption
    share_rial = total * red.max_share_percent // 100
    most = min(max(snap.balance, 0), share_rial // point_value)
    most -= most % red.step
    if most < red.minimum_points:
        most = 0
    asked = basket.redeem_points
    if asked == 0:
        return 0, most, most * point_value, None
    if asked < red.minimum_points:
        return 0, most, most * point_value, f"at least {red.minimum_points} points must be redeemed at once; {asked} were asked"
    if asked > most:
        return 0, most, most * point_value, (f"at most {most} points may pay for this basket; {asked} were asked")
    if asked % red.step:
        return 0, most, most * point_value, f"points are redeemed in steps of {red.step}; {asked} is not a multiple"
    return asked, most, most * point_value, None


def _offer_open(offer: Offer, snap: MemberSnapshot, day: date, uses: dict[str, int]) -> bool:
    """Whether the member may use the offer today (window, audience, usage limit)."""
    if offer.valid_from and day < offer.valid_from:
        return False
    if offer.valid_to and day > offer.valid_to:
        return False
    if offer.tiers and snap.tier not in offer.tiers:
        return False
    if offer.segments and (snap.segment or "") not in offer.segments:
        return False
    if offer.max_uses and uses.get(offer.id, 0) >= offer.max_uses:
        return False
    if snap.purchase_count < offer.min_history_visits:
        return False
    if offer.min_average_gap_days and snap.average_gap_days < offer.min_average_gap_days:
        return False
    if offer.max_average_gap_days and (snap.purchase_count < 2 or snap.average_gap_days > offer.max_average_gap_days):
        return False
    return True


def _credit(percent: int, paid: int, point_value: int) -> tuple[int, int]:
    """A credit of `percent` of the money paid, as points at the season's point value."""
    rial = paid * percent // 100
    return rial // point_value, rial


def _offers(ruleset: Ruleset, snap: MemberSnapshot, total: int, at: datetime, day: date, paid: int,
            point_value: int) -> tuple[list[PlanLine], list[Suggestion]]:
    lines: list[PlanLine] = []
    suggestions: list[Suggestion] = []
    since_last = (at - snap.last_visit_at) if snap.last_visit_at else None
    uses = dict(snap.rule_uses)
    for offer in ruleset.offers:
        if not _offer_open(offer, snap, day, uses):
            continue
        p = offer.credit_percent
        if offer.kind == "spend_up":
            threshold = max(snap.average_basket * offer.basket_ratio_percent // 100, offer.minimum_amount)
            if threshold <= 0:
                continue
            if total >= threshold:
                points, rial = _credit(p, paid, point_value)
                th, r, pts = en(threshold), en(rial), en(points)
                lines.append(PlanLine(
                    offer.id, "offer", points,
                    f"Offer {offer.id}: a purchase of at least {th} Rial earns {p}% credit: {r} Rial = {pts} points",
                    persian_numbers(f"پیشنهاد {offer.id}: خرید دست‌کم {th} ریال، {p}٪ اعتبار: {r} ریال = {pts} امتیاز"),
                    rial))
            else:
                th = en(threshold)
                suggestions.append(Suggestion(
                    offer.id, f"A purchase of at least {th} Rial earns {p}% credit",
                    persian_numbers(f"خرید دست‌کم {th} ریال، {p}٪ اعتبار می‌گیرد")))
        elif offer.kind == "come_back":
            if since_last is not None and since_last <= timedelta(days=offer.within_days):
                points, rial = _credit(p, paid, point_value)
                r, pts = en(rial), en(points)
                lines.append(PlanLine(
                    offer.id, "offer", points,
                    f"Offer {offer.id}: back within {offer.within_days} days, {p}% credit: {r} Rial = {pts} points",
                    persian_numbers(f"پیشنهاد {offer.id}: بازگشت در کمتر از {offer.within_days} روز، {p}٪ اعتبار: "
                                    f"{r} ریال = {pts} امتیاز"), rial))
            used_now = 1 if lines and lines[-1].rule_id == offer.id else 0
            if offer.max_uses == 0 or uses.get(offer.id, 0) + used_now < offer.max_uses:
                until = jalali(day + timedelta(days=offer.within_days))
                suggestions.append(Suggestion(
                    offer.id, f"Come back within {offer.within_days} days for {p}% credit",
                    persian_numbers(f"تا {offer.within_days} روز دیگر (تا {until}) برگردید و {p}٪ اعتبار بگیرید")))
        elif offer.kind == "win_back":
            if since_last is not None and since_last > timedelta(days=offer.inactive_days):
                lines.append(PlanLine(
                    offer.id, "offer", offer.points,
                    f"Offer {offer.id}: welcome back after {since_last.days} days: {offer.points:,} points",
                    persian_numbers(f"پیشنهاد {offer.id}: خوش برگشتید پس از {since_last.days:,} روز: "
                                    f"{offer.points:,} امتیاز")))
    return lines, suggestions


def _birthday(ruleset: Ruleset, table: _Table, snap: MemberSnapshot, day: date) -> PlanLine | None:
    b = ruleset.bonuses
    if not b.birthday_points or snap.birth_date is None:
        return None
    for year in (day.year - 1, day.year, day.year + 1):
        occasion = anniversary(snap.birth_date, year)
        if abs((day - occasion).days) <= b.birthday_window_days:
            last = snap.last_used("birthday")
            if last is not None and local_date(last, ruleset.utc_offset_minutes) >= occasion - timedelta(
                    days=b.birthday_window_days):
                return None  # once a year: already credited for this birthday
            return table.birthday
    return None


def _streak(ruleset: Ruleset, table: _Table, snap: MemberSnapshot, at: datetime) -> PlanLine | None:
    b = ruleset.bonuses
    if not b.streak_points:
        return None
    since = at - timedelta(days=b.streak_within_days)
    last = snap.last_used("streak")
    if last is not None and last > since:
        since = last
    visits = sum(1 for v in snap.recent_visits if since < v <= at) + 1  # this visit counts
    if visits < b.streak_every:
        return None
    return table.streak


def _apply_caps(ruleset: Ruleset, snap: MemberSnapshot, lines: list[PlanLine]) -> list[PlanLine]:
    """Trim points from the last rules first so the total respects the caps; the
    withheld points are explained on a zero-point `cap` line."""
    caps = ruleset.caps
    allowed, why_en, why_fa = caps.points_per_sale, "per sale", "در هر خرید"
    if caps.points_per_member_per_day:
        left = max(caps.points_per_member_per_day - snap.points_today, 0)
        if not caps.points_per_sale or left < allowed:
            allowed, why_en, why_fa = left, "per day", "در روز"
    elif not caps.points_per_sale:
        return lines
    total = sum(x.points for x in lines)
    if total <= allowed:
        return lines
    over = total - allowed
    out = list(lines)
    for i in range(len(out) - 1, -1, -1):
        if over == 0:
            break
        cut = min(out[i].points, over)
        if cut:
            out[i] = out[i]._replace(points=out[i].points - cut)
            over -= cut
    withheld = total - allowed
    out.append(PlanLine("cap", "cap", 0, f"Capped at {allowed:,} points {why_en}: {withheld:,} points not credited",
                        persian_numbers(f"سقف {allowed:,} امتیاز {why_fa}: {withheld:,} امتیاز منظور نشد")))
    return out


def qualifying_tier(ruleset: Ruleset, spend: int, points: int) -> str:
    metric = spend if ruleset.tier_policy.basis == "spend" else points
    best = ruleset.tiers[0].id
    for t in ruleset.tiers:
        if metric >= t.threshold:
            best = t.id
    return best


def point_value_at(ruleset: Ruleset, at: datetime) -> int:
    """What one point pays, in Rial, at `at` (the season's value, else the table's)."""
    season = season_at(ruleset, local_date(at, ruleset.utc_offset_minutes))
    return season.redeem_rial_per_point if season else ruleset.redemption.rial_per_point


def evaluate(ruleset: Ruleset, snap: MemberSnapshot, basket: Basket, at: datetime) -> Plan:
    table = _table(ruleset)
    day = local_date(at, ruleset.utc_offset_minutes)
    season = season_at(ruleset, day)
    earn_rate = season.earn_rial_per_point if season else ruleset.earn.rial_per_point
    point_value = season.redeem_rial_per_point if season else ruleset.redemption.rial_per_point
    total, weighted, notes_en, notes_fa = _weighted_amount(table, basket)

    redeem, most, most_rial, problem = _redemption(ruleset, snap, basket, total, point_value)
    redeem_rial = redeem * point_value
    paid = total - redeem_rial  # what the member pays in money: points do not earn points

    # Persian explanations: the table's fixed parts come with Persian digits already;
    # each sale's own numbers are converted once per text
    lines: list[PlanLine] = []
    # the share of the weighted amount paid in money, then the rate; floor once at the end
    eligible_x100 = weighted * paid // total if total else 0
    tier = table.tiers.get(snap.tier) or ruleset.tiers[0]  # a tier the table no longer has: the entry tier
    if total < ruleset.earn.minimum_purchase:
        lines.append(table.below_minimum)
    else:
        base = eligible_x100 // (100 * earn_rate)
        head_en, head_fa = table.earn_head[season.id if season else None]
        if redeem_rial:
            tail_en = f", {redeem_rial:,} Rial paid with points earns nothing: {base:,} points"
            tail_fa = persian_numbers(f"، {redeem_rial:,} ریال پرداخت با امتیاز امتیازی ندارد: {base:,} امتیاز")
        else:
            tail_en = f": {base:,} points"
            tail_fa = f": {fa(base)} امتیاز"
        lines.append(PlanLine("earn", "earn", base, head_en + notes_en + tail_en, head_fa + notes_fa + tail_fa))
        if tier.earn_percent != 100:
            boosted = eligible_x100 * tier.earn_percent // (100 * 100 * earn_rate)
            tier_en, tier_fa = table.tier_head[tier.id]
            lines.append(PlanLine(f"tier:{tier.id}", "bonus", boosted - base, f"{tier_en}{boosted - base:,} more points",
                                  f"{tier_fa}{fa(boosted - base)} امتیاز بیشتر"))
        birthday = _birthday(ruleset, table, snap, day)
        if birthday:
            lines.append(birthday)
        streak = _streak(ruleset, table, snap, at)
        if streak:
            lines.append(streak)
    offer_lines, suggestions = _offers(ruleset, snap, total, at, day, paid, point_value)
    lines.extend(offer_lines)
    lines = _apply_caps(ruleset, snap, lines)

    discount = 0
    if tier.discount_percent:
        discount = paid * tier.discount_percent // 100
        discount_en, discount_fa = table.discount_head[tier.id]
        lines.append(PlanLine(f"discount:{tier.id}", "discount", 0, f"{discount_en}{discount:,} Rial",
                              f"{discount_fa}{fa(discount)} ریال", discount))

    total_points = sum(x.points for x in lines if x.kind != "discount")
    new_tier = None
    target = qualifying_tier(ruleset, snap.tier_window_spend + paid, snap.tier_window_points + total_points)
    if table.ranks[target] > table.ranks.get(snap.tier, 0):  # upgrades at once; downgrades wait for the review day
        new_tier = target

    referrer_points = 0
    b = ruleset.bonuses
    if (b.referral_points and snap.has_referrer and snap.purchase_count == 0
            and paid >= b.referral_minimum_purchase):
        referrer_points = b.referral_points

    return Plan(
        lines=tuple(lines), total_points=total_points, redeem_points=redeem, redeem_rial=redeem_rial,
        max_redeem_points=most, max_redeem_rial=most_rial, redeem_problem=problem, discount_rial=discount,
        point_value_rial=point_value, new_tier=new_tier, referrer_points=referrer_points,
        referrer_rule_id="referral", suggestions=tuple(suggestions), ruleset_hash=ruleset.hash,
    )
