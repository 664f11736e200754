"""Receipt lines for a committed sale, in Persian or English. Pure formatting."""

from __future__ import annotations

from ledger.timefmt import parse_utc
from ledger.types import RefundResult, SaleResult
from terminal_agent.i18n import digits, local_date, rial


def sale_lines(result: SaleResult, locale: str, persian_digits: bool = True) -> list[str]:
    d = lambda n: digits(str(n), locale, persian_digits)  # noqa: E731
    when = local_date(parse_utc(result.created_at), locale, persian_digits)
    if locale == "fa":
        lines = [f"باشگاه مشتریان — {when}", f"رسید: {result.receipt_ref}",
                 f"مبلغ خرید: {rial(result.amount, locale, persian_digits)}",
                 f"امتیاز کسب‌شده: {d(result.earned_points)}"]
        if result.redeemed_points:
            lines.append(f"امتیاز خرج‌شده: {d(result.redeemed_points)} "
                         f"({rial(result.redeemed_rial, locale, persian_digits)})")
        lines += [f"مانده امتیاز: {d(result.balance)}", f"سطح: {result.tier}"]
        lines += [f"• {a.explanation_fa}" for a in result.awards if a.points]
        return lines
    lines = [f"Customer club — {when}", f"Receipt: {result.receipt_ref}",
             f"Purchase: {rial(result.amount, locale)}", f"Points earned: {result.earned_points}"]
    if result.redeemed_points:
        lines.append(f"Points redeemed: {result.redeemed_points} ({rial(result.redeemed_rial, locale)})")
    lines += [f"Balance: {result.balance} points", f"Tier: {result.tier}"]
    lines += [f"• {a.explanation_en}" for a in result.awards if a.points]
    return lines


def refund_lines(result: RefundResult, locale: str, persian_digits: bool = True) -> list[str]:
    d = lambda n: digits(str(n), locale, persian_digits)  # noqa: E731
    if locale == "fa":
        return [f"مرجوعی: {rial(result.amount, locale, persian_digits)}",
                f"امتیاز کسرشده: {d(result.reversed_points)}", f"امتیاز بازگشتی: {d(result.returned_points)}",
                f"مانده امتیاز: {d(result.balance)}"]
    return [f"Refund: {rial(result.amount, locale)}", f"Points reversed: {result.reversed_points}",
            f"Points returned: {result.returned_points}", f"Balance: {result.balance} points"]
