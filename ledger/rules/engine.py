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

import functools
from datetime import date, datetime, timedelta

from ledger.rules.dates import anniversary, jalali, local_date
from ledger.rules.model import Basket, MemberSnapshot, Offer, Plan, PlanLine, Ruleset, Season, Suggestion
from ledger.rules.text import en, persian_numbers


def season_at(ruleset: Ruleset, day: date) -> Season | None:
    for s in ruleset.seasons:
        if s.start <= day <= s.end:
            return s
    return None


_MAPS: dict[str, tuple[dict[str, int], dict[str, int]]] = {}
_MAPS_MAX = 64  # tables kept; a terminal runs one, the hub a few versions


def _multiplier_maps(ruleset: Ruleset) -> tuple[dict[str, int], dict[str, int]]:
    maps = _MAPS.get(ruleset.hash)
    if maps is None:
        if len(_MAPS) >= _MAPS_MAX:
            _MAPS.clear()
        maps = ({m.key: m.percent for m in ruleset.earn.categories}, {m.key: m.percent for m in ruleset.earn.skus})
        if ruleset.hash:
            _MAPS[ruleset.hash] = maps
    return maps


def _weighted_amount(ruleset: Ruleset, basket: Basket) -> tuple[int, int, str, str]:
    """(basket total, sum of line totals times their multiplier percent (still x100),
    notes in English and Persian on each category or SKU earning other than the base)."""
    cats, skus = _multiplier_maps(ruleset)
    sku_pct, cat_pct = skus.get, cats.get  # bound once: this loop runs for every line of every basket
    total = 0
    weighted = 0
    odd: dict[tuple[bool, str], int] = {}
    for line in basket.lines:
        amount = line.quantity * line.unit_price
        total += amount
        pct = sku_pct(line.sku)
        if pct is None:
            pct = cat_pct(line.category, 100)
            if pct != 100:
                odd[(False, line.category)] = pct
        elif pct != 100:
            odd[(True, line.sku)] = pct
        weighted += amount * pct
    notes_en, notes_fa = _notes(tuple(odd.items())) if odd else ("", "")
    return total, weighted, notes_en, notes_fa


@functools.lru_cache(maxsize=1024)  # the same few categories recur basket after basket
def _notes(odd: tuple[tuple[tuple[bool, str], int], ...]) -> tuple[str, str]:
    """The earn line's notes on categories and SKUs that earn other than the base rate."""
    notes_en: list[str] = []
    notes_fa: list[str] = []
    for (is_sku, key), pct in odd:
        what, what_fa = (f"SKU {key}", f"کالای {key}") if is_sku else (f"category {key}", f"دسته {key}")
        if pct == 0:
            notes_en.append(f"{what} earns nothing")
            notes_fa.append(f"{what_fa} امتیازی ندارد")
        else:
            notes_en.append(f"{what} earns {pct}%")
            notes_fa.append(f"{what_fa} {pct}٪ امتیاز دارد")
    return " (" + "; ".join(notes_en) + ")", " (" + "؛ ".join(notes_fa) + ")"


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


def _offer_open(offer: Offer, snap: MemberSnapshot, day: date) -> bool:
    """Whether the member may use the offer today (window, audience, usage limit)."""
    if offer.valid_from and day < offer.valid_from:
        return False
    if offer.valid_to and day > offer.valid_to:
        return False
    if offer.tiers and snap.tier not in offer.tiers:
        return False
    if offer.segments and (snap.segment or "") not in offer.segments:
        return False
    if offer.max_uses and snap.uses(offer.id) >= offer.max_uses:
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
    for offer in ruleset.offers:
        if not _offer_open(offer, snap, day):
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
                    f"پیشنهاد {offer.id}: خرید دست‌کم {th} ریال، {p}٪ اعتبار: {r} ریال = {pts} امتیاز", rial))
            else:
                th = en(threshold)
                suggestions.append(Suggestion(
                    offer.id, f"A purchase of at least {th} Rial earns {p}% credit",
                    f"خرید دست‌کم {th} ریال، {p}٪ اعتبار می‌گیرد"))
        elif offer.kind == "come_back":
            if since_last is not None and since_last <= timedelta(days=offer.within_days):
                points, rial = _credit(p, paid, point_value)
                r, pts = en(rial), en(points)
                lines.append(PlanLine(
                    offer.id, "offer", points,
                    f"Offer {offer.id}: back within {offer.within_days} days, {p}% credit: {r} Rial = {pts} points",
                    f"پیشنهاد {offer.id}: بازگشت در کمتر از {offer.within_days} روز، {p}٪ اعتبار: "
                    f"{r} ریال = {pts} امتیاز", rial))
            used_now = 1 if lines and lines[-1].rule_id == offer.id else 0
            if offer.max_uses == 0 or snap.uses(offer.id) + used_now < offer.max_uses:
                until = jalali(day + timedelta(days=offer.within_days))
                suggestions.append(Suggestion(
                    offer.id, f"Come back within {offer.within_days} days for {p}% credit",
                    (f"تا {offer.within_days} روز دیگر (تا {until}) برگردید و {p}٪ اعتبار بگیرید")))
        elif offer.kind == "win_back":
            if since_last is not None and since_last > timedelta(days=offer.inactive_days):
                lines.append(PlanLine(
                    offer.id, "offer", offer.points,
                    f"Offer {offer.id}: welcome back after {since_last.days} days: {offer.points:,} points",
                    f"پیشنهاد {offer.id}: خوش برگشتید پس از {since_last.days:,} روز: {offer.points:,} امتیاز"))
    return lines, suggestions


def _birthday(ruleset: Ruleset, snap: MemberSnapshot, day: date, at: datetime) -> PlanLine | None:
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
            return PlanLine("birthday", "bonus", b.birthday_points,
                            f"Happy birthday: {b.birthday_points:,} points",
                            f"تولدتان مبارک: {b.birthday_points:,} امتیاز")
    return None


def _streak(ruleset: Ruleset, snap: MemberSnapshot, at: datetime) -> PlanLine | None:
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
    return PlanLine("streak", "bonus", b.streak_points,
                    f"Visit {b.streak_every} within {b.streak_within_days} days: {b.streak_points:,} points",
                    (f"{b.streak_every}مین خرید در {b.streak_within_days} روز: ") + f"{b.streak_points:,} امتیاز")


def _apply_caps(ruleset: Ruleset, snap: MemberSnapshot, lines: list[PlanLine]) -> list[PlanLine]:
    """Trim points from the last rules first so the total respects the caps; the
    withheld points are explained on a zero-point `cap` line."""
    caps = ruleset.caps
    limits = []
    if caps.points_per_sale:
        limits.append((caps.points_per_sale, "per sale", "در هر خرید"))
    if caps.points_per_member_per_day:
        left = max(caps.points_per_member_per_day - snap.points_today, 0)
        limits.append((left, "per day", "در روز"))
    if not limits:
        return lines
    allowed, why_en, why_fa = min(limits, key=lambda x: x[0])
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
            out[i] = PlanLine(out[i].rule_id, out[i].kind, out[i].points - cut, out[i].explanation_en,
                              out[i].explanation_fa, out[i].rial)
            over -= cut
    withheld = total - allowed
    out.append(PlanLine("cap", "cap", 0, f"Capped at {allowed:,} points {why_en}: {withheld:,} points not credited",
                        f"سقف {allowed:,} امتیاز {why_fa}: {withheld:,} امتیاز منظور نشد"))
    return out


def qualifying_tier(ruleset: Ruleset, spend: int, points: int) -> str:
    metric = spend if ruleset.tier_policy.basis == "spend" else points
    best = ruleset.tiers[0].id
    for t in ruleset.tiers:
        if metric >= t.threshold:
            best = t.id
    return best


def evaluate(ruleset: Ruleset, snap: MemberSnapshot, basket: Basket, at: datetime) -> Plan:
    day = local_date(at, ruleset.utc_offset_minutes)
    season = season_at(ruleset, day)
    earn_rate = season.earn_rial_per_point if season else ruleset.earn.rial_per_point
    point_value = season.redeem_rial_per_point if season else ruleset.redemption.rial_per_point
    total, weighted, notes_en, notes_fa = _weighted_amount(ruleset, basket)

    redeem, most, most_rial, problem = _redemption(ruleset, snap, basket, total, point_value)
    redeem_rial = redeem * point_value
    paid = total - redeem_rial  # what the member pays in money: points do not earn points

    lines: list[PlanLine] = []
    # the share of the weighted amount paid in money, then the rate; floor once at the end
    eligible_x100 = weighted * paid // total if total else 0
    tier = ruleset.tier(snap.tier)
    season_en = f" ({season.name_en} season)" if season else ""
    season_fa = f" (فصل {season.name_fa})" if season else ""
    if total < ruleset.earn.minimum_purchase:
        lines.append(PlanLine("earn", "earn", 0,
                              f"Purchases under {ruleset.earn.minimum_purchase:,} Rial earn no points",
                              f"خرید کمتر از {ruleset.earn.minimum_purchase:,} ریال امتیازی ندارد"))
    else:
        base = eligible_x100 // (100 * earn_rate)
        extra_en, extra_fa = notes_en, notes_fa
        paid_en = f", {redeem_rial:,} Rial paid with points earns nothing" if redeem_rial else ""
        paid_fa = f"، {redeem_rial:,} ریال پرداخت با امتیاز امتیازی ندارد" if redeem_rial else ""
        lines.append(PlanLine(
            "earn", "earn", base,
            f"1 point per {earn_rate:,} Rial{season_en}{extra_en}{paid_en}: {base:,} points",
            f"هر {earn_rate:,} ریال یک امتیاز{season_fa}{extra_fa}{paid_fa}: {base:,} امتیاز"))
        if tier.earn_percent != 100:
            boosted = eligible_x100 * tier.earn_percent // (100 * 100 * earn_rate)
            lines.append(PlanLine(
                f"tier:{tier.id}", "bonus", boosted - base,
                f"{tier.name_en} tier earns {tier.earn_percent}%: {boosted - base:,} more points",
                (f"سطح {tier.name_fa}: {tier.earn_percent}٪ امتیاز: ") + f"{boosted - base:,} امتیاز بیشتر"))
        birthday = _birthday(ruleset, snap, day, at)
        if birthday:
            lines.append(birthday)
        streak = _streak(ruleset, snap, at)
        if streak:
            lines.append(streak)
    offer_lines, suggestions = _offers(ruleset, snap, total, at, day, paid, point_value)
    lines.extend(offer_lines)
    lines = _apply_caps(ruleset, snap, lines)

    discount = 0
    if tier.discount_percent:
        discount = paid * tier.discount_percent // 100
        lines.append(PlanLine(f"discount:{tier.id}", "discount", 0,
                              f"{tier.name_en} tier discount {tier.discount_percent}%: {discount:,} Rial",
                              (f"تخفیف سطح {tier.name_fa} {tier.discount_percent}٪: ") + f"{discount:,} ریال",
                              discount))

    total_points = sum(x.points for x in lines if x.kind != "discount")
    new_tier = None
    target = qualifying_tier(ruleset, snap.tier_window_spend + paid, snap.tier_window_points + total_points)
    if ruleset.rank(target) > ruleset.rank(snap.tier):  # upgrades at once; downgrades wait for the review day
        new_tier = target

    referrer_points = 0
    b = ruleset.bonuses
    if (b.referral_points and snap.has_referrer and snap.purchase_count == 0
            and paid >= b.referral_minimum_purchase):
        referrer_points = b.referral_points

    # Persian explanations are written with ASCII digits and converted once, here
    lines = [x._replace(explanation_fa=persian_numbers(x.explanation_fa)) for x in lines]
    suggestions = [x._replace(text_fa=persian_numbers(x.text_fa)) for x in suggestions]
    return Plan(
        lines=tuple(lines), total_points=total_points, redeem_points=redeem, redeem_rial=redeem_rial,
        max_redeem_points=most, max_redeem_rial=most_rial, redeem_problem=problem, discount_rial=discount,
        point_value_rial=point_value, new_tier=new_tier, referrer_points=referrer_points,
        referrer_rule_id="referral", suggestions=tuple(suggestions), ruleset_hash=ruleset.hash,
    )
