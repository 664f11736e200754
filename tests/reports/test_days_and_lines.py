"""The report's pure parts: the days people type (Jalali or Gregorian, either
separator) and a sale's points shared among its lines."""

from __future__ import annotations

from datetime import date, timedelta

import jdatetime
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.reports.days import Days, days_of, parse_day
from ledger.reports.lines import shared_points

days = st.dates(min_value=date(1990, 1, 1), max_value=date(2090, 12, 31))


@given(days, st.sampled_from(["/", "-"]))
def test_every_jalali_day_reads_as_its_gregorian_day(day: date, sep: str) -> None:
    j = jdatetime.date.fromgregorian(date=day)
    assert parse_day(f"{j.year}{sep}{j.month:02d}{sep}{j.day:02d}") == day
    assert parse_day(f"{j.year}{sep}{j.month}{sep}{j.day}") == day
    assert parse_day(day.strftime(f"%Y{sep}%m{sep}%d")) == day


@given(st.text(max_size=14))
def test_anything_else_is_refused_with_a_reason_never_a_crash(text: str) -> None:
    try:
        parse_day(text)
    except ValueError as exc:
        assert str(exc)


@pytest.mark.parametrize("text,says", [
    ("1405/13/01", "a Jalali month is 1 to 12"), ("1405/07/31", "month 7 of 1405 has 30 days"),
    ("1405/12/30", "has 29 days"), ("1403/12/31", "has 30 days"), ("2026-02-29", "not a Gregorian calendar day"),
    ("22/11/2026", "write it like 1405/09/01"), ("", "write it like")])
def test_bad_days_say_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_day(text)


def test_a_period_and_the_one_before_it() -> None:
    d = days_of(date(2026, 3, 1), date(2026, 3, 10), date(2026, 12, 1))
    assert d.before() == Days(date(2026, 2, 19), date(2026, 2, 28)) and d.length == 10
    assert days_of(None, None, date(2026, 12, 1)) == Days(date(2026, 12, 1) - timedelta(days=29), date(2026, 12, 1))
    with pytest.raises(ValueError, match="is after the last"):
        days_of(date(2026, 3, 2), date(2026, 3, 1), date(2026, 12, 1))


@given(st.lists(st.lists(st.tuples(st.integers(1, 50), st.integers(0, 10**9)), min_size=1, max_size=8),
                min_size=1, max_size=5), st.data())
def test_a_sales_lines_add_up_to_exactly_its_points(sales: list[list[tuple[int, int]]], data: st.DataObject) -> None:
    rows, wanted = [], {}
    for s, lines in enumerate(sales):
        amount = sum(q * p for q, p in lines)
        earned, redeemed = data.draw(st.integers(-10**6, 10**9)), data.draw(st.integers(0, 10**6))
        wanted[s] = (earned, redeemed)
        rows += [(f"sale{s}", no, q, p, amount, earned, redeemed) for no, (q, p) in enumerate(lines, start=1)]
    out = list(shared_points(rows, sale=0, quantity=2, price=3, amount=4, earned=5, redeemed=6, line_no=1))
    i = 0
    for s, lines in enumerate(sales):
        part = out[i:i + len(lines)]
        i += len(lines)
        assert all(total == q * p for _no, q, p, total, _e, _r in part)
        assert (sum(r[4] for r in part), sum(r[5] for r in part)) == wanted[s]
