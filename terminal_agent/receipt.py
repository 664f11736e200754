"""Receipt lines for a committed sale, in Persian or English. Pure formatting."""

from __future__ import annotations

from collections.abc import Sequence

from ledger.rules.model import Tier
from ledger.timefmt import parse_utc
from ledger.types import RefundResult, SaleResult
from terminal_agent.i18n import digits, local_date, rial


def tier_name(tier_id: str, tiers: Sequence[Tier], locale: str) -> str:
    """The tier as the loyalty table names it; its id only if the table no longer has it."""
    for tier in tiers:
        if tier.id == tier_id:
            return tier.name_fa if locale == "fa" else tier.name_en
    return tier_id


def sale_lines(result: SaleResult, locale: str, persian_digits: bool = True,
               tiers: Sequence[Tier] = ()) -> list[str]:
    d = lambda n: digits(str(n), locale, persian_digits)  # noqa: E731
    tier = tier_name(result.tier, tiers, locale)
    when = local_date(parse_utc(result.created_at), locale, persian_digits)
    if locale == "fa":
        lines = [f"باشگاه مشتریان — {when}", f"رسید: {result.receipt_ref}",
                 f"مبلغ خرید: {rial(result.amount, locale, persian_digits)}",
                 f"امتیاز کسب‌شده: {d(result.earned_points)}"]
        if result.redeemed_points:
            lines.append(f"امتیاز خرج‌شده: {d(result.redeemed_points)} "
                         f"({rial(result.redeemed_rial, locale, persian_digits)})")
        lines += [f"مانده امتیاز: {d(result.balance)}", f"سطح: {tier}"]
        if result.debt_points:
            lines.append(f"بدهی امتیاز: {d(result.debt_points)} (از امتیاز خریدهای بعدی کسر می‌شود)")
        lines += [f"• {a.explanation_fa}" for a in result.awards if a.points]
        return lines
    lines = [f"Customer club — {when}", f"Receipt: {result.receipt_ref}",
             f"Purchase: {rial(result.amount, locale)}", f"Points earned: {result.earned_points}"]
    if result.redeemed_points:
        lines.append(f"Points redeemed: {result.redeemed_points} ({rial(result.redeemed_rial, locale)})")
    lines += [f"Balance: {result.balance} points", f"Tier: {tier}"]
    if result.debt_points:
        lines.append(f"Points owed: {result.debt_points} (paid from the points of later purchases)")
    lines += [f"• {a.explanation_en}" for a in result.awards if a.points]
    return lines


def refund_lines(result: RefundResult, locale: str, persian_digits: bool = True) -> list[str]:
    d = lambda n: digits(str(n), locale, persian_digits)  # noqa: E731
    if locale == "fa":
        lines = [f"مرجوعی: {rial(result.amount, locale, persian_digits)}",
                 f"امتیاز کسرشده: {d(result.reversed_points)}", f"امتیاز بازگشتی: {d(result.returned_points)}"]
        if result.deducted_rial:
            lines += [f"کسر بابت {d(result.settled_points)} امتیاز خرج‌شده: "
                      f"{rial(result.deducted_rial, locale, persian_digits)}",
                      f"مبلغ قابل پرداخت: {rial(result.cash_refund_rial, locale, persian_digits)}"]
        lines.append(f"مانده امتیاز: {d(result.balance)}")
        if result.debt_points:
            lines.append(f"بدهی امتیاز: {d(result.debt_points)} (از امتیاز خریدهای بعدی کسر می‌شود)")
        return lines
    lines = [f"Refund: {rial(result.amount, locale)}", f"Points reversed: {result.reversed_points}",
             f"Points returned: {result.returned_points}"]
    if result.deducted_rial:
        lines += [f"Kept for {result.settled_points} points already spent: {rial(result.deducted_rial, locale)}",
                  f"To pay back: {rial(result.cash_refund_rial, locale)}"]
    lines.append(f"Balance: {result.balance} points")
    if result.debt_points:
        lines.append(f"Points owed: {result.debt_points} (paid from the points of later purchases)")
    return lines
